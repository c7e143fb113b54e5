"""Check rules on small key sets (each passing and failing) and the success rule of a materialization."""

from __future__ import annotations

import dagster as dg
import pytest

from passwork_assets.defs.integrity import duplicates, orphans, reconcile, reject_rate
from passwork_assets.defs.run_metadata import run_metadata, run_problems
from passwork_assets.sync.results import FlowRunResult


def test_reconciliation_passes_when_keys_match_or_are_held_as_rejects() -> None:
    outcome = reconcile({"U-1", "U-2", "U-3"}, {"U-1", "U-2"}, rejected_keys={"U-3"})
    assert outcome.passed
    assert (outcome.source, outcome.salesforce, outcome.rejected_missing) == (3, 2, 1)


def test_reconciliation_fails_on_a_lost_row_and_on_an_extra_record() -> None:
    lost = reconcile({"U-1", "U-2"}, {"U-1"}, rejected_keys=set())
    assert not lost.passed and lost.missing == ["U-2"]
    extra = reconcile({"U-1"}, {"U-1", "U-9"}, rejected_keys=set())
    assert not extra.passed and extra.extra == ["U-9"]


def test_duplicates() -> None:
    assert duplicates(["A", "B", "C"]) == {}
    assert duplicates(["A", "B", "A", "A"]) == {"A": 3}


def test_orphans() -> None:
    assert orphans({"U-1": "800A", "U-2": "800B"}, ["800A", "800B"]) == {}
    assert orphans({"U-1": "800A", "U-2": "800X", "U-3": None}, ["800A"]) == {"U-2": "800X", "U-3": None}


def test_reject_rate() -> None:
    assert reject_rate(0, 0) == 0.0
    assert reject_rate(1, 200) == pytest.approx(0.005)


def result(**kw: object) -> FlowRunResult:
    base = dict(flow="product_usage", object="Usage__c", mapping_file="mappings/product_usage.yaml",
                mapping_hash="abc123", sql="SELECT 1", extracted=10, changed=5, sent=5, created=3, updated=1,
                rejected=1, bulk_job_ids=["750x"], rejects_preview=[{"key": "U-9", "code": "PARENT_NOT_FOUND",
                                                                     "message": "no Contract C-404"}])
    base.update(kw)
    return FlowRunResult(**base)  # type: ignore[arg-type]


def test_every_row_accounted_for_is_a_success() -> None:
    assert run_problems([result()]) == []


def test_a_failed_flow_or_an_unaccounted_row_is_never_a_success() -> None:
    failed = run_problems([result(status="failed", error="Salesforce: login refused")])
    assert failed == ["flow product_usage failed: Salesforce: login refused"]
    lost = run_problems([result(created=2)])
    assert lost and "1 of 5 rows sent were neither written nor rejected" in lost[0]


def test_run_metadata_for_auditors() -> None:
    meta = run_metadata([result(), result(flow="erp_costs", object="Cost__c", bulk_job_ids=["750y"], rejects_preview=[])])
    assert meta["rows_extracted"] == dg.MetadataValue.int(20)
    assert meta["rows_rejected"] == dg.MetadataValue.int(2)
    assert meta["bulk_job_ids"].value == ["750x", "750y"]
    assert meta["product_usage/mapping_hash"].value == "abc123"
    assert "SELECT 1" in meta["product_usage/sql"].value
    table = meta["rejects"]
    assert [r.data["code"] for r in table.records] == ["PARENT_NOT_FOUND"]
    assert table.records[0].data["message"] == "no Contract C-404"
