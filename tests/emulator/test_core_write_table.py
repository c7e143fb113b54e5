"""``Org.write_table`` (rows as lists, the Bulk path) gives exactly what ``write_many`` gives for the same rows
as mappings: outcomes, stored records and, through a Bulk 2.0 job, byte-identical result files."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from salesforce_emulator.bulk2 import Bulk2
from salesforce_emulator.faults import Faults, FaultSettings
from salesforce_emulator.limits import Limits
from salesforce_emulator.org import CONVERTED_MEMO_SIZE, Org, WriteOutcome
from salesforce_emulator.schema import load_org_schema
from salesforce_emulator.store import Store

HEADER = ["UsageKey__c", "Contract__r.ContractKey__c", "UsageDate__c", "Metric__c", "Quantity__c", "Amount__c"]
# Timestamps depend on the clock, not on the path taken.
CLOCK_FIELDS = ("CreatedDate", "LastModifiedDate", "SystemModstamp")


class _MappingOrg(Org):
    """An org whose list-row entry point goes through the mapping form (the general path)."""

    def write_table(self, obj, operation, header, rows, *, value_format="csv", **kwargs):  # type: ignore[no-untyped-def]
        return self.write_many(obj, operation, [dict(zip(header, row)) for row in rows], value_format=value_format,
                               **kwargs)


def _org(path: Path, cls: type[Org], lock_rate: float = 0.0) -> Org:
    path.mkdir(parents=True, exist_ok=True)
    schema = load_org_schema()
    faults = Faults()
    faults.configure(FaultSettings(seed=7, lock_rate=lock_rate, lock_objects=["Usage__c"]))
    org = cls(schema, Store(path / "org.sqlite3", schema), faults)
    org.write_many("Account", "insert", [{"Name": "A", "AccountKey__c": "A-1"}])
    org.write_many("Contract", "insert", [{"Account": {"AccountKey__c": "A-1"}, "ContractKey__c": f"C-{i}"}
                                          for i in (1, 2, 3)])
    return org


def _mixed_rows() -> list[list[str]]:
    """Creates, updates of the first batch, and one row per kind of error."""
    rows = [[f"U-{i}", f"C-{1 + i % 3}", "2024-05-01", "api", f"{i}.5", "10"] for i in range(40)]
    rows += [
        ["u-3", "C-2", "2024-05-02", "#N/A", "7", ""],  # update, key in another case, Metric cleared, Amount kept
        ["U-100", "C-9", "2024-05-01", "api", "1", "1"],  # unknown parent key
        ["U-101", "", "2024-05-01", "api", "1", "1"],  # new record without its required parent
        ["U-102", "C-1", "2024-02-30", "api", "1", "1"],  # no such date
        ["U-103", "C-1", "2024-05-01", "x" * 41, "1", "1"],  # too long
        ["U-104", "C-1", "2024-05-01", "api", "many", "1"],  # not a number
        ["U-105", "C-1", "2024-05-01", "api", "1e20", "1"],  # out of range
        ["U-106", "C-1", "2024-05-01", "api", "1.23456", "1.005"],  # rounded half up
        ["U-107", "C-1", "2024-05-01", "api", "1", "1"],
        ["u-107", "C-2", "2024-05-01", "api", "2", "2"],  # duplicate key in the batch
        ["", "C-1", "2024-05-01", "api", "1", "1"],  # no key
        ["U-108", "C-3", "", "api", "1", "1"],  # required date missing
        ["U-5", "C-3", "", "", "#N/A", ""],  # update clearing a required number
        ["U-6", "#N/A", "2024-05-03", "api", "3", "3"],  # update clearing the master-detail link
    ]
    return rows


def _snapshot(org: Org) -> list[dict]:
    return [{k: v for k, v in record.items() if k not in CLOCK_FIELDS}
            for record in org.iter_records("Usage__c", include_deleted=True)]


def _key(outcome: WriteOutcome) -> tuple:
    return (outcome.id, outcome.created, outcome.error.to_bulk() if outcome.error else None)


@pytest.mark.parametrize("lock_rate", [0.0, 0.2])
def test_write_table_matches_write_many(tmp_path: Path, lock_rate: float) -> None:
    fast = _org(tmp_path / "fast", Org, lock_rate)
    general = _org(tmp_path / "general", Org, lock_rate)
    rows = _mixed_rows()
    first, rest = rows[:40], rows[40:]
    for batch in (first, first[:10] + rest):
        by_table = fast.write_table("Usage__c", "upsert", HEADER, batch, external_id_field="UsageKey__c")
        by_mapping = general.write_many("Usage__c", "upsert", [dict(zip(HEADER, row)) for row in batch],
                                        external_id_field="UsageKey__c", value_format="csv")
        assert [_key(o) for o in by_table] == [_key(o) for o in by_mapping]
    errors = {o.error.status_code for o in by_table if o.error}
    assert {"INVALID_FIELD", "REQUIRED_FIELD_MISSING", "STRING_TOO_LONG", "NUMBER_OUTSIDE_VALID_RANGE",
            "DUPLICATE_EXTERNAL_ID", "MISSING_ARGUMENT"} <= errors
    assert ("UNABLE_TO_LOCK_ROW" in errors) == (lock_rate > 0)
    assert any(o.created for o in by_table) and any(not o.created and o.error is None for o in by_table)
    assert _snapshot(fast) == _snapshot(general)


@pytest.mark.parametrize("operation", ["insert", "update", "delete"])
def test_write_table_matches_write_many_by_id(tmp_path: Path, operation: str) -> None:
    fast = _org(tmp_path / "fast", Org)
    general = _org(tmp_path / "general", Org)
    seed = [[f"U-{i}", "C-1", "2024-05-01", "api", "1", "1"] for i in range(5)]
    created = [o.id for o in fast.write_table("Usage__c", "insert", HEADER, seed)]
    assert created == [o.id for o in general.write_many("Usage__c", "insert",
                                                        [dict(zip(HEADER, r)) for r in seed], value_format="csv")]
    header = ["Id", "Metric__c", "Quantity__c"]
    rows = [[created[0], "web", "2"], [created[1][:15], "", "#N/A"], ["001000000000000", "web", "2"],
            ["not-an-id", "web", "2"], ["", "web", "2"], [created[2], "web", "x"]]
    if operation == "delete":
        header, rows = ["Id"], [[r[0]] for r in rows]
    by_table = fast.write_table("Usage__c", operation, header, rows)
    by_mapping = general.write_many("Usage__c", operation, [dict(zip(header, r)) for r in rows], value_format="csv")
    assert [_key(o) for o in by_table] == [_key(o) for o in by_mapping]
    assert any(o.error for o in by_table)
    assert _snapshot(fast) == _snapshot(general)


def test_write_table_refuses_ragged_rows(tmp_path: Path) -> None:
    org = _org(tmp_path, Org)
    with pytest.raises(ValueError, match="row 1 has 2 values, the header has 6"):
        org.write_table("Usage__c", "insert", HEADER, [HEADER, ["a", "b"]])


def _bulk_results(folder: Path, cls: type[Org], upload: str) -> dict[str, bytes]:
    org = _org(folder, cls, lock_rate=0.1)
    bulk = Bulk2(org, folder / "bulk2", Limits(1_000_000), Faults(), "0055g00000Emu01AAA")
    job = bulk.create_ingest({"operation": "upsert", "object": "Usage__c", "externalIdFieldName": "UsageKey__c"},
                             "60.0")
    (bulk.jobs.folder(job.id) / "upload.csv").write_text(upload, encoding="utf-8")
    job.uploaded = True
    bulk.change_state(job, {"state": "UploadComplete"})
    deadline = time.monotonic() + 30
    while job.state != "JobComplete":
        assert job.state in ("UploadComplete", "InProgress") and time.monotonic() < deadline, job.state
        time.sleep(0.02)
    names = ("successfulResults.csv", "failedResults.csv", "unprocessedRecords.csv")
    return {name: (bulk.jobs.folder(job.id) / name).read_bytes() for name in names}


def test_bulk_results_identical_to_the_general_path(tmp_path: Path) -> None:
    rows = _mixed_rows()
    lines = [",".join(HEADER)] + [",".join(row) for row in rows]
    upload = "\n".join(lines) + "\n"
    fast = _bulk_results(tmp_path / "fast", Org, upload)
    general = _bulk_results(tmp_path / "general", _MappingOrg, upload)
    assert fast == general
    assert fast["failedResults.csv"].count(b"\n") > 10 and fast["successfulResults.csv"].count(b"\n") > 30


def test_repeated_cells_convert_alike_and_refused_ones_fail_every_time(tmp_path: Path) -> None:
    org = _org(tmp_path, Org)
    # More distinct amounts than a column remembers, so the memory of converted values starts again midway.
    rows = [[f"U-{i}", "C-1", "2024-05-01", "api", "1.00005", f"{i}.005"] for i in range(CONVERTED_MEMO_SIZE + 50)]
    rows += [[f"V-{i}", "C-1", "2024-02-30", "api", "many", "1"] for i in range(3)]
    rows += [[f"W-{i}", "C-1", "2024-05-01", "api", "many", "1"] for i in range(3)]
    outcomes = org.write_table("Usage__c", "insert", HEADER, rows)
    assert [o.error.to_bulk() for o in outcomes if o.error] == [
        "INVALID_FIELD:Failed to deserialize field at col 2. Due to, '2024-02-30' is not a valid value for the type "
        "xsd:date:UsageDate__c --"] * 3 + [
        "INVALID_FIELD:Failed to deserialize field at col 4. Due to, 'many' is not a valid value for the type "
        "xsd:double:Quantity__c --"] * 3
    records = {r["UsageKey__c"]: r for r in org.iter_records("Usage__c")}
    assert len(records) == CONVERTED_MEMO_SIZE + 50
    assert {r["Quantity__c"] for r in records.values()} == {1.0001}
    assert all(records[f"U-{i}"]["Amount__c"] == round(i + 0.01, 2) for i in range(CONVERTED_MEMO_SIZE + 50))
