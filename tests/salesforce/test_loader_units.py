"""Pure pieces of the loader and engine: Bulk error parsing, JSON records for Collections, SOQL literals."""

from __future__ import annotations

import pytest

from passwork_assets.salesforce.describe import ObjectDescribe
from passwork_assets.salesforce.loader import json_record, parse_bulk_error
from passwork_assets.sync.engine import _CursorTracker, soql_literal

import polars as pl


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --",
         ("REQUIRED_FIELD_MISSING", "Required fields are missing: [Name]", "Name")),
        ("UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record or 200 records: a00:--",
         ("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record or 200 records: a00", "")),
        ("INVALID_FIELD:Foreign key external ID: C-9 not found for field ContractKey__c in entity Contract:--",
         ("INVALID_FIELD", "Foreign key external ID: C-9 not found for field ContractKey__c in entity Contract", "")),
        ("garbled", ("UNKNOWN_ERROR", "garbled", "")),
    ],
)
def test_parse_bulk_error(text: str, expected: tuple[str, str, str]) -> None:
    assert parse_bulk_error(text) == expected


def _describe() -> ObjectDescribe:
    def f(name: str, type_: str, **extra: object) -> dict:
        return {"name": name, "label": name, "type": type_, "nillable": True, "createable": True,
                "updateable": True, **extra}
    return ObjectDescribe.from_json({"name": "Usage__c", "label": "Usage", "fields": [
        f("UsageKey__c", "string", externalId=True, length=80), f("Quantity__c", "double", precision=16, scale=4),
        f("Seats__c", "int"), f("Billable__c", "boolean"), f("Metric__c", "string", length=40),
        f("Contract__c", "reference", referenceTo=["Contract"], relationshipName="Contract__r"),
    ]})


def test_json_record_types_nulls_and_links() -> None:
    row = {"__key": "k1", "UsageKey__c": "k1", "Quantity__c": "12.5000", "Seats__c": "3", "Billable__c": "true",
           "Metric__c": "", "Contract__r.ContractKey__c": "C-1"}
    assert json_record(row, "Usage__c", _describe()) == {
        "attributes": {"type": "Usage__c"}, "UsageKey__c": "k1", "Quantity__c": 12.5, "Seats__c": 3,
        "Billable__c": True, "Contract__r": {"ContractKey__c": "C-1"},
    }
    cleared = json_record({"__key": "k1", "Metric__c": "#N/A"}, "Usage__c", _describe())
    assert cleared == {"attributes": {"type": "Usage__c"}, "Metric__c": None}


def test_soql_literal_escapes_quotes_and_backslashes() -> None:
    assert soql_literal("O'Brien\\x") == "'O\\'Brien\\\\x'"


def test_cursor_tracker_never_passes_rows_sharing_the_last_value() -> None:
    tracker = _CursorTracker("t")
    tracker.observe(pl.DataFrame({"t": [1, 2, 3, 3]}))
    assert (tracker.safe, tracker.last) == (2, 3)  # more rows with t=3 may follow in the next chunk
    tracker.observe(pl.DataFrame({"t": [3, 3, 4]}))
    assert (tracker.safe, tracker.last) == (3, 4)
    tracker.observe(pl.DataFrame({"t": [4]}))
    assert (tracker.safe, tracker.last) == (3, 4)
