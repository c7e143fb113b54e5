"""Unit tests of the SOQL parser/evaluator (pure: the default org schema and an in-test record store)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone

import pytest

from salesforce_emulator.errors import SalesforceError
from salesforce_emulator.schema import OrgSchema, load_org_schema
from salesforce_emulator.soql import relative_date_range, run_query

TODAY = datetime.now(timezone.utc).date()


class RecordStore:
    """Just the two read methods run_query uses, over dicts (only for these pure unit tests)."""

    def __init__(self, schema: OrgSchema, records: dict[str, list[dict]]) -> None:
        self.schema = schema
        self.records = records
        self.get_calls = 0

    def iter_records(self, obj: str, *, include_deleted: bool = False) -> Iterator[dict]:
        for record in self.records.get(obj, []):
            if include_deleted or not record.get("IsDeleted"):
                yield record

    def get(self, obj: str, record_id: str, *, include_deleted: bool = False) -> dict | None:
        self.get_calls += 1
        for record in self.records.get(obj, []):
            if record["Id"] == record_id:
                return record
        return None


def _record(record_id: str, **values: object) -> dict:
    base = {"Id": record_id, "IsDeleted": False, "CreatedDate": "2024-01-01T00:00:00.000+0000",
            "LastModifiedDate": "2024-01-01T00:00:00.000+0000", "SystemModstamp": "2024-01-01T00:00:00.000+0000"}
    base.update(values)
    return base


@pytest.fixture(scope="module")
def org() -> RecordStore:
    schema = load_org_schema()
    accounts = [
        _record("001000000000001AAA", Name="Acme", AccountKey__c="A-1", Industry="Banking"),
        _record("001000000000002AAA", Name="beta", AccountKey__c="A-2", Industry=None),
        _record("001000000000003AAA", Name="Gamma", AccountKey__c="A-3", Industry="Retail", IsDeleted=True),
    ]
    contracts = [
        _record("800000000000001AAA", ContractKey__c="C-1", AccountId="001000000000001AAA", Status="Activated",
                StartDate="2024-03-01"),
        _record("800000000000002AAA", ContractKey__c="C-2", AccountId="001000000000002AAA", Status="Draft",
                StartDate=None),
    ]
    usages = [
        _record(f"a01000000000{i:03d}AAA", UsageKey__c=f"U-{i}", Contract__c=contracts[i % 2]["Id"],
                UsageDate__c=(TODAY - timedelta(days=i)).isoformat(), Quantity__c=float(i), Metric__c=m,
                CreatedDate=f"2024-05-{i + 1:02d}T12:00:00.000+0000")
        for i, m in enumerate(["api", "API", "storage", None, "seats"])
    ]
    usages.append(_record("a01000000000099AAA", UsageKey__c="U-orphan", Contract__c=None,
                          UsageDate__c="2020-01-01", Quantity__c=1.5, Metric__c="it's"))
    return RecordStore(schema, {"Account": accounts, "Contract": contracts, "Usage__c": usages})


def keys(result, api_version: str = "59.0") -> list[str]:
    return [r["UsageKey__c"] for r in result.records(api_version)]


def test_plain_fields_and_attributes(org: RecordStore) -> None:
    result = run_query(org, "SELECT Id, Name FROM Account ORDER BY Name")
    assert result.columns == ["Id", "Name"]
    assert result.total_size == 2  # the deleted one only through queryAll
    first = result.records("59.0")[0]
    assert list(first) == ["attributes", "Id", "Name"]
    assert first["attributes"] == {"type": "Account", "url": "/services/data/v59.0/sobjects/Account/001000000000001AAA"}
    # Text sorts case-insensitively.
    assert [r["Name"] for r in result.records("59.0")] == ["Acme", "beta"]


def test_include_deleted(org: RecordStore) -> None:
    result = run_query(org, "SELECT Name, IsDeleted FROM Account WHERE IsDeleted = true", include_deleted=True)
    assert [r["Name"] for r in result.records("59.0")] == ["Gamma"]


def test_parent_paths_nest_with_attributes_and_null_parent(org: RecordStore) -> None:
    result = run_query(
        org, "SELECT UsageKey__c, Contract__r.ContractKey__c, contract__r.Account.Name FROM Usage__c ORDER BY UsageKey__c"
    )
    assert result.columns == ["UsageKey__c", "Contract__r.ContractKey__c", "Contract__r.Account.Name"]
    records = result.records("60.0")
    first = records[0]
    assert first["Contract__r"] == {
        "attributes": {"type": "Contract", "url": "/services/data/v60.0/sobjects/Contract/800000000000001AAA"},
        "ContractKey__c": "C-1",
        "Account": {
            "attributes": {"type": "Account", "url": "/services/data/v60.0/sobjects/Account/001000000000001AAA"},
            "Name": "Acme",
        },
    }
    orphan = [r for r in records if r["UsageKey__c"] == "U-orphan"][0]
    assert orphan["Contract__r"] is None
    rows = list(result.csv_rows())
    assert ["U-orphan", "", ""] in rows
    assert ["U-0", "C-1", "Acme"] in rows
    dated = run_query(org, "SELECT CreatedDate, Quantity__c FROM Usage__c WHERE UsageKey__c = 'U-1'")
    assert list(dated.csv_rows()) == [["2024-05-02T12:00:00.000Z", "1.0"]]
    assert dated.records("59.0")[0]["CreatedDate"] == "2024-05-02T12:00:00.000+0000"


def test_parent_lookups_are_cached_per_query(org: RecordStore) -> None:
    org.get_calls = 0
    result = run_query(org, "SELECT Id FROM Usage__c WHERE Contract__r.ContractKey__c = 'C-1'")
    assert result.total_size == 3
    assert org.get_calls == 2  # five usages with a parent, two distinct contracts: one lookup each


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Metric__c = 'api'", ["U-0", "U-1"]),  # text equality is case-insensitive
        ("Metric__c != 'api'", ["U-2", "U-3", "U-4", "U-orphan"]),  # null is "not equal"
        ("Metric__c = null", ["U-3"]),
        ("Metric__c != null", ["U-0", "U-1", "U-2", "U-4", "U-orphan"]),
        ("Metric__c IN ('storage', 'SEATS')", ["U-2", "U-4"]),
        ("Metric__c NOT IN ('storage', 'seats')", ["U-0", "U-1", "U-3", "U-orphan"]),
        ("Metric__c LIKE 'ap%'", ["U-0", "U-1"]),
        ("Metric__c LIKE '_tor%'", ["U-2"]),
        ("Metric__c = 'it\\'s'", ["U-orphan"]),
        ("Quantity__c > 2", ["U-3", "U-4"]),
        ("Quantity__c >= 2 AND Quantity__c < 4", ["U-2", "U-3"]),
        ("Quantity__c <= 1.5", ["U-0", "U-1", "U-orphan"]),
        ("Quantity__c = -1", []),
        ("NOT Quantity__c > 1", ["U-0", "U-1"]),
        ("(Quantity__c = 0 OR Quantity__c = 4) AND Metric__c != null", ["U-0", "U-4"]),
        ("UsageDate__c = 2020-01-01", ["U-orphan"]),
        ("UsageDate__c < 2021-01-01", ["U-orphan"]),
        ("UsageDate__c = TODAY", ["U-0"]),
        ("UsageDate__c = YESTERDAY", ["U-1"]),
        ("UsageDate__c = LAST_N_DAYS:2", ["U-0", "U-1", "U-2"]),
        ("UsageDate__c < LAST_N_DAYS:2", ["U-3", "U-4", "U-orphan"]),
        ("CreatedDate > 2024-05-03T00:00:00Z", ["U-2", "U-3", "U-4"]),
        ("CreatedDate >= 2024-05-02T21:00:00+09:00", ["U-1", "U-2", "U-3", "U-4"]),
        ("Contract__r.Account.AccountKey__c = 'A-2'", ["U-1", "U-3"]),
        ("Contract__c = null", ["U-orphan"]),
        ("Contract__c = '800000000000002'", ["U-1", "U-3"]),  # 15-character Id literal
    ],
)
@pytest.mark.dates
def test_where(org: RecordStore, where: str, expected: list[str]) -> None:
    result = run_query(org, f"SELECT UsageKey__c FROM Usage__c WHERE {where} ORDER BY UsageKey__c")
    assert keys(result) == expected


def test_order_by_nulls_limit_offset(org: RecordStore) -> None:
    asc = run_query(org, "SELECT UsageKey__c FROM Usage__c ORDER BY Metric__c, UsageKey__c")
    assert keys(asc)[0] == "U-3"  # ASC puts nulls first by default
    desc = run_query(org, "SELECT UsageKey__c FROM Usage__c ORDER BY Metric__c DESC, UsageKey__c")
    assert keys(desc)[-1] == "U-3"  # DESC puts them last
    desc_first = run_query(org, "SELECT UsageKey__c FROM Usage__c ORDER BY Metric__c DESC NULLS FIRST")
    assert keys(desc_first)[0] == "U-3"
    page = run_query(org, "SELECT UsageKey__c FROM Usage__c ORDER BY Quantity__c DESC LIMIT 2 OFFSET 1")
    assert keys(page) == ["U-3", "U-2"]
    assert page.total_size == 2


def test_count_and_aggregates(org: RecordStore) -> None:
    count = run_query(org, "SELECT COUNT() FROM Usage__c WHERE Quantity__c > 1")
    assert count.total_size == 4
    assert count.records("59.0") == []
    grouped = run_query(
        org, "SELECT Contract__c, COUNT(Id), SUM(Quantity__c) total FROM Usage__c GROUP BY Contract__c "
        "ORDER BY Contract__c NULLS LAST"
    )
    assert grouped.columns == ["Contract__c", "expr0", "total"]
    assert grouped.records("59.0") == [
        {"attributes": {"type": "AggregateResult"}, "Contract__c": "800000000000001AAA", "expr0": 3, "total": 6.0},
        {"attributes": {"type": "AggregateResult"}, "Contract__c": "800000000000002AAA", "expr0": 2, "total": 4.0},
        {"attributes": {"type": "AggregateResult"}, "Contract__c": None, "expr0": 1, "total": 1.5},
    ]
    overall = run_query(org, "SELECT MAX(Quantity__c), COUNT_DISTINCT(Metric__c) FROM Usage__c")
    assert overall.records("59.0") == [{"attributes": {"type": "AggregateResult"}, "expr0": 4.0, "expr1": 4}]


def _error(org: RecordStore, soql: str) -> SalesforceError:
    with pytest.raises(SalesforceError) as info:
        run_query(org, soql)
    assert info.value.status == 400
    return info.value


def test_malformed_query(org: RecordStore) -> None:
    error = _error(org, "SELEKT Name FROM Account")
    assert (error.error_code, error.message) == ("MALFORMED_QUERY", "unexpected token: SELEKT")
    assert _error(org, "SELECT Id FROM").error_code == "MALFORMED_QUERY"
    assert _error(org, "SELECT Id FROM Account WHERE Name = 'x").error_code == "MALFORMED_QUERY"
    assert _error(org, "SELECT COUNT(*) FROM Account").error_code == "MALFORMED_QUERY"
    assert _error(org, "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contract)").error_code == (
        "MALFORMED_QUERY"
    )


def test_invalid_field_has_the_real_caret_message(org: RecordStore) -> None:
    error = _error(org, "SELECT Bacon__c FROM Account LIMIT 2")
    assert error.error_code == "INVALID_FIELD"
    assert error.message == (
        "\nSELECT Bacon__c FROM Account LIMIT 2\n       ^\nERROR at Row:1:Column:8\n"
        "No such column 'Bacon__c' on entity 'Account'. If you are attempting to use a custom field, be sure to "
        "append the '__c' after the custom field name. Please reference your WSDL or the describe call for the "
        "appropriate names."
    )
    where = _error(org, "SELECT Id FROM Account WHERE Nmae = 'x'")
    assert "ERROR at Row:1:Column:30\nNo such column 'Nmae' on entity 'Account'" in where.message
    relation = _error(org, "SELECT Contrakt__r.Name FROM Usage__c")
    assert "Didn't understand relationship 'Contrakt__r' in field path" in relation.message
    parent_field = _error(org, "SELECT Contract__r.Nope FROM Usage__c")
    assert "No such column 'Nope' on entity 'Contract'" in parent_field.message


def test_invalid_type(org: RecordStore) -> None:
    error = _error(org, "SELECT Id FROM XYZZY")
    assert error.error_code == "INVALID_TYPE"
    assert error.message.endswith(
        "sObject type 'XYZZY' is not supported. If you are attempting to use a custom object, be sure to append "
        "the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."
    )


def test_filter_value_of_the_wrong_type(org: RecordStore) -> None:
    error = _error(org, "SELECT Id FROM Usage__c WHERE Quantity__c = '5'")
    assert error.error_code == "INVALID_FIELD"
    assert "value of filter criterion for field 'Quantity__c' must be of type double" in error.message
    assert "must be of type string and should be enclosed in quotes" in _error(
        org, "SELECT Id FROM Account WHERE Name = 5").message


@pytest.mark.dates
def test_relative_date_ranges() -> None:
    wednesday = date(2024, 5, 15)
    assert relative_date_range("THIS_WEEK", None, wednesday) == (date(2024, 5, 12), date(2024, 5, 18))
    assert relative_date_range("LAST_MONTH", None, wednesday) == (date(2024, 4, 1), date(2024, 4, 30))
    assert relative_date_range("THIS_QUARTER", None, wednesday) == (date(2024, 4, 1), date(2024, 6, 30))
    assert relative_date_range("NEXT_N_DAYS", 3, wednesday) == (date(2024, 5, 16), date(2024, 5, 18))
    assert relative_date_range("LAST_N_MONTHS", 2, wednesday) == (date(2024, 3, 1), date(2024, 4, 30))
