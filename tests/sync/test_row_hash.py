"""The row fingerprint: pinned values, the definition in plain Python, and what must tell rows apart."""

from __future__ import annotations

import polars as pl
import pytest

from passwork_assets.transform import row_hash as row_hash_module
from passwork_assets.transform.row_hash import fingerprints, row_hash

_MASK = (1 << 64) - 1


def _finaliser(s1: int, m1: int, s2: int, m2: int, s3: int):
    def finalise(x: int) -> int:
        x ^= x >> s1
        x = (x * m1) & _MASK
        x ^= x >> s2
        x = (x * m2) & _MASK
        return x ^ (x >> s3)
    return finalise


# The definition, written out independently of the vectorised code (see the module docstring).
_REFERENCE_LANES = [
    (_finaliser(33, 0xFF51AFD7ED558CCD, 33, 0xC4CEB9FE1A85EC53, 33), 0x9E3779B97F4A7C15),
    (_finaliser(30, 0xBF58476D1CE4E5B9, 27, 0x94D049BB133111EB, 31), 0xD6E8FEB86659FD93),
]


def _reference_lanes(values: list[str | None], seeds: tuple[int, int]) -> tuple[int, int]:
    data = b"".join((v or "").encode() for v in values)
    lengths = [0 if v is None else len(v.encode()) + 1 for v in values]
    if len(lengths) % 2:
        lengths.append(0)
    packed = [lengths[j] + (lengths[j + 1] << 32) for j in range(0, len(lengths), 2)]
    words = [int.from_bytes(data[i:i + 8].ljust(8, b"\0"), "little") for i in range(0, len(data), 8)]
    out = []
    for (finalise, constant), seed in zip(_REFERENCE_LANES, seeds):
        chain = seed
        for word in packed:
            chain = finalise(chain ^ word)
        total = sum(finalise((w + finalise((k + constant) & _MASK)) & _MASK) for k, w in enumerate(words)) & _MASK
        out.append(finalise(total ^ chain))
    return out[0], out[1]


def _reference(columns: list[str], values: list[str | None]) -> str:
    first, second = _reference_lanes(values, _reference_lanes(list(columns), (0, 0)))
    return f"{first}-{second}"


def _hashes(frame: pl.DataFrame) -> list[str]:
    return frame.select(row_hash(frame.columns)).to_series().to_list()


def _frame(rows: list[tuple[str | None, ...]], columns: list[str]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={c: pl.Utf8 for c in columns}, orient="row")


ROWS = [
    ("x", "1"), ("", "2"), (None, "3"), ("é" * 20, "4"), ("y" * 3000, "5"), ("契約-2", ""), ("a\x00", None),
    ('x,"y"\n', "\x1f"), *[("z" * n, "w" * (n % 9)) for n in range(0, 40)],
]


def test_known_values_are_pinned() -> None:
    # A change here changes every stored fingerprint and re-sends every row once: do it on purpose only.
    assert _hashes(_frame([("x", "1"), ("", "2"), (None, "3")], ["a", "b"])) == [
        "12503815280497908475-7403505920920546937",
        "5533581959416051933-16599487846265522136",
        "6634457077226356315-3202175699128205903",
    ]


def test_matches_the_definition_for_every_length_and_kind_of_value() -> None:
    frame = _frame(ROWS, ["a", "b"])
    assert _hashes(frame) == [_reference(["a", "b"], list(row)) for row in ROWS]
    odd = _frame([("1", "22", "333"), (None, None, None)], ["p", "q", "r"])
    assert _hashes(odd) == [_reference(["p", "q", "r"], ["1", "22", "333"]), _reference(["p", "q", "r"], [None] * 3)]


def test_equal_rows_hash_equal_whatever_the_chunk() -> None:
    frame = _frame(ROWS, ["a", "b"])
    whole = _hashes(frame)
    assert _hashes(frame) == whole
    # alone, in other chunks, in another order, without the long row that groups rows by width
    assert [_hashes(frame.slice(i, 1))[0] for i in range(frame.height)] == whole
    assert _hashes(frame.slice(5, 20)) == whole[5:25]
    assert _hashes(frame.reverse()) == whole[::-1]
    short = frame.filter(pl.col("a").str.len_bytes().fill_null(0) < 100)
    assert _hashes(short) == [h for h, row in zip(whole, ROWS) if len((row[0] or "").encode()) < 100]


def test_slicing_a_large_chunk_gives_the_same_values(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = _frame(ROWS, ["a", "b"])
    whole = _hashes(frame)
    monkeypatch.setattr(row_hash_module, "_WORDS_PER_SLICE", 16)
    assert _hashes(frame) == whole


def test_rows_are_told_apart() -> None:
    cases = [
        [("ab", "c"), ("a", "bc")],  # where one value ends and the next begins
        [("", "x"), (None, "x")],  # null versus empty
        [("a", ""), ("a\x00", "")],  # a trailing NUL is not padding
        [("1", "2"), ("2", "1")],  # values in another order
        [("12345678", "x"), ("12345679", "x")],  # one bit in one word
    ]
    for rows in cases:
        first, second = _hashes(_frame(rows, ["a", "b"]))
        assert first != second, rows
    many = _frame([(f"C-{i:06d}", str(i % 7)) for i in range(20_000)], ["a", "b"])
    assert many.select(row_hash(["a", "b"])).to_series().n_unique() == 20_000


def test_the_column_names_are_part_of_the_fingerprint() -> None:
    values = [("x", "y")]
    assert _hashes(_frame(values, ["a", "b"])) != _hashes(_frame(values, ["b", "a"]))
    assert _hashes(_frame(values, ["a", "b"])) != _hashes(_frame(values, ["a", "c"]))


def test_empty_frame_and_direct_call() -> None:
    assert _hashes(_frame([], ["a"])) == []
    frame = _frame([("x", "1")], ["a", "b"])
    assert fingerprints(frame).to_list() == _hashes(frame)
