"""Record Ids: the batch generator used by Bulk inserts gives the same Ids as the one-by-one form."""

from __future__ import annotations

import pytest

from salesforce_emulator import ids


@pytest.mark.parametrize("first", [0, 62**3 - 5, 62**5, 62**6 - 7, 62**6 + 62**3 - 10])
def test_make_ids_matches_make_id_across_runs(first: int) -> None:
    made = ids.make_ids("a01", first, 300)
    assert made == [ids.make_id("a01", first + i) for i in range(300)]
    assert all(ids.normalize(i[:15]) == i for i in made)
    assert [ids.serial_of(i, "a01") for i in made] == list(range(first, first + 300))
