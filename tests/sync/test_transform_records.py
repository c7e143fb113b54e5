"""build_records: field values, Salesforce type coercion, pre-validation, keys and hashes."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from passwork_assets.mapping.models import FieldSpec, FlowMapping, SourceSpec, TargetSpec
from passwork_assets.salesforce.describe import ObjectDescribe
from passwork_assets.transform import CLEAR, HASH_COLUMN, KEY_COLUMN, TransformError, build_records
from passwork_assets.transform.row_hash import fingerprints

FIXTURES = Path(__file__).parent / "fixtures" / "describe"


def _describe(name: str) -> ObjectDescribe:
    return ObjectDescribe.from_json(json.loads((FIXTURES / f"{name}.json").read_text()))


USAGE = _describe("Usage__c")
CONTRACT = _describe("Contract")
ACCOUNT = _describe("Account")


def _flow(fields: list[FieldSpec], *, obj: str = "Usage__c", key: str = "UsageKey__c",
          operation: str = "upsert") -> FlowMapping:
    return FlowMapping(
        flow="product_usage", description="", path=Path("mappings/product_usage.yaml"), content_hash="x",
        source=SourceSpec(connection="product", table="public.usage_events", columns=["id"]),
        target=TargetSpec(object=obj, operation=operation, external_id=key), fields=fields,
    )


USAGE_FIELDS = [
    FieldSpec("UsageKey__c", expr="contract_no || ':' || usage_date || ':' || metric", line=15),
    FieldSpec("Contract__r.ContractKey__c", column="contract_no", parent_object="Contract", line=16),
    FieldSpec("UsageDate__c", column="usage_date", line=17),
    FieldSpec("Metric__c", column="metric", line=18),
    FieldSpec("Quantity__c", column="quantity", line=19),
    FieldSpec("Amount__c", expr="quantity * unit_price", on_null="clear", line=20),
]


def _usage_frame(**overrides: list) -> pl.DataFrame:
    data = {
        "id": [1, 2, 3],
        "contract_no": ["C-1", "C-1", "C-2"],
        "usage_date": [dt.date(2024, 1, 31), dt.date(2024, 2, 1), dt.date(2024, 2, 29)],
        "metric": ["api_calls", "api_calls", "storage_gb"],
        "quantity": [Decimal("1.5"), Decimal("1234.5678"), Decimal("0")],
        "unit_price": [Decimal("2.00"), None, Decimal("0.10")],
    }
    data.update(overrides)
    return pl.DataFrame(data, schema_overrides={"quantity": pl.Decimal(12, 4), "unit_price": pl.Decimal(12, 2)})


def _build(frame: pl.DataFrame, fields: list[FieldSpec] = USAGE_FIELDS, **kwargs):
    return build_records(frame, _flow(fields, **kwargs), USAGE, {"Contract": CONTRACT})


@pytest.mark.dates
def test_usage_rows_become_bulk_csv_records() -> None:
    result = _build(_usage_frame())
    assert result.rejects == []
    records = result.records
    assert records.columns == ["UsageKey__c", "Contract__r.ContractKey__c", "UsageDate__c", "Metric__c",
                               "Quantity__c", "Amount__c", KEY_COLUMN, HASH_COLUMN]
    assert all(dtype == pl.Utf8 for dtype in records.dtypes)
    assert records.drop(HASH_COLUMN).rows() == [
        ("C-1:2024-01-31:api_calls", "C-1", "2024-01-31", "api_calls", "1.5000", "3.00",
         "C-1:2024-01-31:api_calls"),
        ("C-1:2024-02-01:api_calls", "C-1", "2024-02-01", "api_calls", "1234.5678", CLEAR,
         "C-1:2024-02-01:api_calls"),
        ("C-2:2024-02-29:storage_gb", "C-2", "2024-02-29", "storage_gb", "0.0000", "0.00",
         "C-2:2024-02-29:storage_gb"),
    ]


@pytest.mark.dates
def test_datetimes_are_utc_with_z_and_dates_never_shift() -> None:
    """A JST timestamp is written in UTC; a date stays the same date whatever TZ the process runs in."""
    desc = ObjectDescribe.from_json({"name": "Event__c", "fields": [
        {"name": "Key__c", "type": "string", "length": 20, "externalId": True, "createable": True,
         "nillable": True},
        {"name": "At__c", "type": "datetime", "createable": True, "nillable": True},
        {"name": "Day__c", "type": "date", "createable": True, "nillable": True},
        {"name": "DayOf__c", "type": "date", "createable": True, "nillable": True},
    ]})
    tokyo = dt.timezone(dt.timedelta(hours=9))
    frame = pl.DataFrame({
        "k": ["a", "b", "c"],
        "at": [dt.datetime(2024, 4, 1, 8, 30, tzinfo=tokyo), dt.datetime(2024, 4, 1, 9, 0, tzinfo=tokyo),
               dt.datetime(2023, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)],
        "naive": [dt.datetime(2024, 4, 1, 0, 0), dt.datetime(2024, 4, 1, 23, 59), dt.datetime(2024, 1, 1, 0, 0)],
        "day": [dt.date(2024, 4, 1), dt.date(1999, 12, 31), dt.date(2024, 1, 1)],
        "text_day": ["2024-04-01", " 2024-02-29 ", "2024-13-01"],
    })
    fields = [FieldSpec("Key__c", column="k"), FieldSpec("At__c", column="at"),
              FieldSpec("Day__c", column="day"), FieldSpec("DayOf__c", column="text_day")]
    flow = _flow(fields, obj="Event__c", key="Key__c")
    result = build_records(frame, flow, desc, {})
    assert result.records.select("At__c", "Day__c", "DayOf__c").rows() == [
        ("2024-03-31T23:30:00Z", "2024-04-01", "2024-04-01"),
        ("2024-04-01T00:00:00Z", "1999-12-31", "2024-02-29"),
    ]
    [bad] = result.rejects
    assert (bad.code, bad.field, bad.value) == ("INVALID_TYPE_ON_FIELD_IN_RECORD", "DayOf__c", "2024-13-01")
    # Naive timestamps are UTC, and a datetime mapped to a date field takes its UTC date.
    fields = [FieldSpec("Key__c", column="k"), FieldSpec("At__c", column="naive"), FieldSpec("Day__c", column="at")]
    result = build_records(frame, _flow(fields, obj="Event__c", key="Key__c"), desc, {})
    assert result.records.select("At__c", "Day__c").rows() == [
        ("2024-04-01T00:00:00Z", "2024-03-31"),
        ("2024-04-01T23:59:00Z", "2024-04-01"),
        ("2024-01-01T00:00:00Z", "2023-12-31"),
    ]


def test_nulls_leave_or_clear_per_field() -> None:
    fields = [FieldSpec("UsageKey__c", column="k"), FieldSpec("Metric__c", column="metric"),
              FieldSpec("Amount__c", column="amount", on_null="clear")]
    frame = pl.DataFrame({"k": ["a", "b", "c"], "metric": [None, "", "m"], "amount": [None, 1.0, 2.5]})
    records = _build(frame, fields).records
    assert records.get_column("Metric__c").to_list() == ["", "", "m"]  # null: leave as is
    assert records.get_column("Amount__c").to_list() == [CLEAR, "1.00", "2.50"]  # null: clear


def test_a_null_in_a_required_field_is_rejected_even_with_clear() -> None:
    """Quantity__c is required on create: clearing it would fail in Salesforce, so the row is held back."""
    fields = [FieldSpec("UsageKey__c", column="k"), FieldSpec("Quantity__c", column="q", on_null="clear")]
    frame = pl.DataFrame({"k": ["a", "b"], "q": [None, 1.0]})
    result = _build(frame, fields)
    assert [(r.key, r.code, r.field) for r in result.rejects] == [("a", "REQUIRED_FIELD_MISSING", "Quantity__c")]
    assert result.rejects[0].message == "Required fields are missing: [Quantity__c]"


def test_null_empty_and_duplicate_external_ids_are_all_rejected() -> None:
    frame = _usage_frame(contract_no=["C-1", None, "C-9"], metric=["m", "m", "m"],
                         usage_date=[dt.date(2024, 1, 1), dt.date(2024, 1, 1), dt.date(2024, 1, 1)])
    frame = pl.concat([frame, frame.slice(0, 1).with_columns(pl.lit(9, dtype=frame.schema["id"]).alias("id"))])
    result = _build(frame)
    codes = sorted((r.code, r.key, r.row["id"]) for r in result.rejects)
    assert codes == [
        ("DUPLICATE_EXTERNAL_ID", "C-1:2024-01-01:m", 1),
        ("DUPLICATE_EXTERNAL_ID", "C-1:2024-01-01:m", 9),
        ("MISSING_EXTERNAL_ID", None, 2),
    ]
    assert result.records.get_column(KEY_COLUMN).to_list() == ["C-9:2024-01-01:m"]
    dupe = next(r for r in result.rejects if r.code == "DUPLICATE_EXTERNAL_ID")
    assert "appears 2 times" in dupe.message and dupe.field == "UsageKey__c"


def test_empty_key_text_is_missing() -> None:
    fields = [FieldSpec("UsageKey__c", column="k"), FieldSpec("Metric__c", column="metric")]
    frame = pl.DataFrame({"k": ["", "  ", "ok"], "metric": ["a", "b", "c"]})
    result = _build(frame, fields)
    assert [r.code for r in result.rejects] == ["MISSING_EXTERNAL_ID", "MISSING_EXTERNAL_ID"]
    assert result.records.height == 1


def test_length_is_counted_in_characters() -> None:
    """Metric__c holds 40 characters: 40 Japanese characters (120 UTF-8 bytes) fit, 41 do not."""
    fields = [FieldSpec("UsageKey__c", column="k"), FieldSpec("Metric__c", column="metric")]
    frame = pl.DataFrame({"k": ["a", "b"], "metric": ["従" * 40, "量" * 41]})
    result = _build(frame, fields)
    assert result.records.get_column("Metric__c").to_list() == ["従" * 40]
    [reject] = result.rejects
    assert reject.code == "STRING_TOO_LONG" and reject.key == "b" and reject.field == "Metric__c"
    assert "max length=40, value has 41 characters" in reject.message
    assert reject.row == {"k": "b", "metric": "量" * 41}


def test_restricted_picklist_names_the_allowed_values_and_value_maps_apply() -> None:
    desc = ObjectDescribe.from_json({"name": "Contract", "fields": [
        {"name": "ContractKey__c", "type": "string", "length": 40, "externalId": True, "createable": True,
         "nillable": True},
        {"name": "Status", "type": "picklist", "createable": True, "nillable": False, "defaultedOnCreate": True,
         "restrictedPicklist": True, "picklistValues": [
             {"value": "Draft", "active": True}, {"value": "Activated", "active": True},
             {"value": "Old", "active": False}]},
    ]})
    fields = [FieldSpec("ContractKey__c", column="k"),
              FieldSpec("Status", column="state", value_map={"1": "Activated", "0": "Draft"})]
    frame = pl.DataFrame({"k": ["a", "b", "c", "d"], "state": [1, 0, 7, None]})
    result = build_records(frame, _flow(fields, obj="Contract", key="ContractKey__c"), desc, {})
    assert result.records.select("ContractKey__c", "Status").rows() == [("a", "Activated"), ("b", "Draft"),
                                                                       ("d", "")]
    [reject] = result.rejects
    assert reject.code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" and reject.value == "7"
    assert reject.message == "Status: bad value for restricted picklist field: 7 (allowed: Draft, Activated)"


def test_numbers_are_rounded_to_scale_and_range_checked() -> None:
    """Quantity__c is double(16, 4): 12 integer digits."""
    fields = [FieldSpec("UsageKey__c", column="k"), FieldSpec("Quantity__c", column="q")]
    frame = pl.DataFrame({"k": ["a", "b", "c", "d", "e"],
                          "q": [1.23456, -0.00004, 999_999_999_999.0, 1e12, float("nan")]})
    result = _build(frame, fields)
    assert result.records.select("UsageKey__c", "Quantity__c").rows() == [
        ("a", "1.2346"), ("b", "0.0000"), ("c", "999999999999.0000")]
    assert [(r.key, r.code) for r in result.rejects] == [("d", "NUMBER_OUTSIDE_VALID_RANGE"),
                                                         ("e", "NUMBER_OUTSIDE_VALID_RANGE")]
    assert "(precision 16, scale 4)" in result.rejects[0].message
    text = pl.DataFrame({"k": ["a", "b"], "q": ["12.5", "twelve"]})
    result = _build(text, fields)
    assert result.records.get_column("Quantity__c").to_list() == ["12.5000"]
    assert [(r.code, r.value) for r in result.rejects] == [("INVALID_TYPE_ON_FIELD_IN_RECORD", "twelve")]


def test_required_on_create_is_checked_for_upsert_not_update() -> None:
    """Usage__c.Contract__c is master-detail (required); it is written through the parent link."""
    fields = [FieldSpec("UsageKey__c", column="metric"), FieldSpec("Contract__r.ContractKey__c", column="cn",
                                                                   parent_object="Contract")]
    frame = pl.DataFrame({"metric": ["a", "b"], "cn": ["C-1", None]})
    result = _build(frame, fields)
    [reject] = result.rejects
    assert (reject.code, reject.key, reject.field) == ("REQUIRED_FIELD_MISSING", "b", "Contract__r.ContractKey__c")
    assert reject.message == "Required fields are missing: [Contract__c]"
    assert _build(frame, fields, operation="update").rejects == []


def test_booleans_and_constants() -> None:
    desc = ObjectDescribe.from_json({"name": "Account", "fields": [
        {"name": "AccountKey__c", "type": "string", "length": 40, "externalId": True, "createable": True,
         "nillable": True},
        {"name": "Active__c", "type": "boolean", "createable": True, "nillable": False, "defaultedOnCreate": True},
        {"name": "Flag__c", "type": "boolean", "createable": True, "nillable": False, "defaultedOnCreate": True},
        {"name": "Source__c", "type": "string", "length": 20, "createable": True, "nillable": True},
    ]})
    fields = [FieldSpec("AccountKey__c", column="k"), FieldSpec("Active__c", column="active"),
              FieldSpec("Flag__c", column="flag"), FieldSpec("Source__c", const="product")]
    frame = pl.DataFrame({"k": ["a", "b", "c"], "active": [True, False, None], "flag": ["Yes", "0", "maybe"]})
    result = build_records(frame, _flow(fields, obj="Account", key="AccountKey__c"), desc, {})
    assert result.records.select("Active__c", "Flag__c", "Source__c").rows() == [
        ("true", "true", "product"), ("false", "false", "product")]
    assert [(r.key, r.code, r.value) for r in result.rejects] == [("c", "INVALID_TYPE_ON_FIELD_IN_RECORD", "maybe")]


def test_hash_is_stable_and_changes_with_any_value() -> None:
    first = _build(_usage_frame()).records
    again = _build(_usage_frame()).records
    assert first.get_column(HASH_COLUMN).to_list() == again.get_column(HASH_COLUMN).to_list()
    # The same row hashes the same in another chunk, alone or in another order.
    alone = _build(_usage_frame().slice(2, 1)).records
    assert alone.get_column(HASH_COLUMN).to_list() == first.get_column(HASH_COLUMN).to_list()[2:]
    changed = _build(_usage_frame(quantity=[Decimal("1.5"), Decimal("1234.5679"), Decimal("0")])).records
    same = [a == b for a, b in zip(first.get_column(HASH_COLUMN), changed.get_column(HASH_COLUMN))]
    assert same == [True, False, True]
    # The hash is the row fingerprint of the record's columns, pinned (tests/sync/test_row_hash.py) so that
    # a Polars upgrade does not change every hash and re-send every row.
    columns = [c for c in first.columns if not c.startswith("__")]
    assert first.get_column(HASH_COLUMN).to_list() == fingerprints(first.select(columns)).to_list()
    assert first.get_column(HASH_COLUMN)[0] == "12832307759673786345-10893677793924595603"


def test_expression_errors_name_file_line_field_and_expression() -> None:
    fields = [FieldSpec("UsageKey__c", column="metric", line=15),
              FieldSpec("Quantity__c", expr="quantity * no_such_column", line=22)]
    with pytest.raises(TransformError) as info:
        _build(_usage_frame(), fields)
    message = str(info.value)
    assert message.startswith("mappings/product_usage.yaml:22: fields.Quantity__c: evaluating")
    assert "quantity * no_such_column" in message and "no_such_column" in message
    fields = [FieldSpec("UsageKey__c", column="metric", line=15), FieldSpec("Quantity__c", expr="(((", line=23)]
    with pytest.raises(TransformError, match=r"product_usage.yaml:23: fields.Quantity__c: the expression '\(\(\(' "):
        _build(_usage_frame(), fields)
    fields = [FieldSpec("UsageKey__c", column="nope", line=15)]
    with pytest.raises(TransformError, match="column 'nope' is not in the extracted rows"):
        _build(_usage_frame(), fields)


def test_rejects_carry_the_source_row_and_other_rows_still_go() -> None:
    frame = _usage_frame(metric=["api_calls", "x" * 41, "storage_gb"])
    result = _build(frame)
    assert result.records.height == 2
    [reject] = result.rejects
    assert reject.row["id"] == 2 and reject.row["quantity"] == Decimal("1234.5678")
    assert reject.flow == "product_usage"


def test_unknown_target_field_is_a_mapping_error() -> None:
    fields = [FieldSpec("UsageKey__c", column="metric"), FieldSpec("Nope__c", column="metric", line=30)]
    with pytest.raises(TransformError, match=r":30: fields.Nope__c: Usage__c has no field Nope__c"):
        _build(_usage_frame(), fields)
