"""Validation on the one write path: real error codes and messages through REST, and the Bulk CSV format."""

from __future__ import annotations

from pathlib import Path

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from salesforce_emulator.org import Org
from salesforce_emulator.schema import load_org_schema
from salesforce_emulator.store import Store


@pytest.fixture
def sf(emulator):
    emulator.reset()
    return emulator.salesforce()


def _error(call) -> dict:
    with pytest.raises(SalesforceMalformedRequest) as failure:
        call()
    assert failure.value.status == 400
    [error] = failure.value.content
    return error


@pytest.mark.integration
def test_required_field_missing(sf) -> None:
    assert _error(lambda: sf.Account.create({"Industry": "Media"})) == {
        "message": "Required fields are missing: [Name]", "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["Name"]}


@pytest.mark.integration
def test_required_fields_listed_together(sf) -> None:
    sf.Account.create({"Name": "A", "AccountKey__c": "A-1"})
    sf.Contract.create({"Account": {"AccountKey__c": "A-1"}, "ContractKey__c": "C-1"})
    error = _error(lambda: sf.Usage__c.create({"Contract__r": {"ContractKey__c": "C-1"}}))
    assert error["message"] == "Required fields are missing: [UsageDate__c, Quantity__c]"
    assert error["fields"] == ["UsageDate__c", "Quantity__c"]


@pytest.mark.integration
def test_clearing_a_required_field(sf) -> None:
    record_id = sf.Account.create({"Name": "A"})["id"]
    assert _error(lambda: sf.Account.update(record_id, {"Name": None}))["errorCode"] == "REQUIRED_FIELD_MISSING"


@pytest.mark.integration
def test_unknown_field(sf) -> None:
    assert _error(lambda: sf.Account.create({"Name": "A", "FavoritePet__c": "cat"})) == {
        "message": "No such column 'FavoritePet__c' on sobject of type Account", "errorCode": "INVALID_FIELD"}


@pytest.mark.integration
def test_field_not_writable(sf) -> None:
    error = _error(lambda: sf.Account.create({"Name": "A", "CreatedDate": "2024-01-01T00:00:00Z"}))
    assert error["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert error["message"].startswith("Unable to create/update fields: CreatedDate. Please check the security")
    assert error["fields"] == ["CreatedDate"]


@pytest.mark.integration
@pytest.mark.dates
@pytest.mark.parametrize("value", ["2024-02-30", "2024/05/01", "yesterday", 20240501])
def test_bad_dates(sf, value) -> None:
    sf.Account.create({"Name": "A", "AccountKey__c": "A-1"})
    error = _error(lambda: sf.Contract.create({"Account": {"AccountKey__c": "A-1"}, "StartDate": value}))
    assert error == {"message": f"Contract Start Date: value not of required type: {value}",
                     "errorCode": "INVALID_TYPE_ON_FIELD_IN_RECORD", "fields": ["StartDate"]}


@pytest.mark.integration
@pytest.mark.dates
def test_dates_are_stored_as_sent(sf) -> None:
    sf.Account.create({"Name": "A", "AccountKey__c": "A-1"})
    record_id = sf.Contract.create({"Account": {"AccountKey__c": "A-1"}, "StartDate": "2024-12-31"})["id"]
    assert sf.Contract.get(record_id)["StartDate"] == "2024-12-31"


@pytest.mark.integration
@pytest.mark.parametrize("field,value", [("Quantity__c", "many"), ("Quantity__c", True), ("Amount__c", [1])])
def test_bad_numbers(sf, field, value) -> None:
    sf.Account.create({"Name": "A", "AccountKey__c": "A-1"})
    sf.Contract.create({"Account": {"AccountKey__c": "A-1"}, "ContractKey__c": "C-1"})
    row = {"Contract__r": {"ContractKey__c": "C-1"}, "UsageDate__c": "2024-05-01", "Quantity__c": 1, field: value}
    error = _error(lambda: sf.Usage__c.create(row))
    assert error["errorCode"] == "INVALID_TYPE_ON_FIELD_IN_RECORD" and error["fields"] == [field]


@pytest.mark.integration
def test_string_length_counts_characters_not_bytes(sf) -> None:
    fits = "東" * 255  # 765 bytes in UTF-8, 255 characters
    assert sf.Account.create({"Name": fits})["success"] is True
    error = _error(lambda: sf.Account.create({"Name": fits + "京"}))
    assert error["errorCode"] == "STRING_TOO_LONG"
    assert error["message"] == f"Account Name: data value too large: {fits}京 (max length=255)"
    assert error["fields"] == ["Name"]


@pytest.mark.integration
def test_restricted_picklist(sf) -> None:
    sf.Account.create({"Name": "A", "AccountKey__c": "A-1"})
    error = _error(lambda: sf.Contract.create({"Account": {"AccountKey__c": "A-1"}, "Status": "Terrible"}))
    assert error == {"message": "Status: bad value for restricted picklist field: Terrible",
                     "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "fields": ["Status"]}


@pytest.mark.integration
def test_unrestricted_picklist_accepts_other_values(sf) -> None:
    record_id = sf.Account.create({"Name": "A", "Industry": "Space"})["id"]
    assert sf.Account.get(record_id)["Industry"] == "Space"


@pytest.mark.integration
def test_number_precision(sf) -> None:
    sf.Account.create({"Name": "A", "AccountKey__c": "A-1"})
    sf.Contract.create({"Account": {"AccountKey__c": "A-1"}, "ContractKey__c": "C-1"})
    base = {"Contract__r": {"ContractKey__c": "C-1"}, "UsageDate__c": "2024-05-01"}
    # Quantity__c is number(16, 4): 12 digits before the point.
    largest = sf.Usage__c.create({**base, "Quantity__c": 999_999_999_999.5})["id"]
    assert sf.Usage__c.get(largest)["Quantity__c"] == 999_999_999_999.5
    # Rounded half up to the scale in decimal (binary rounding would give 12.3456).
    rounded = sf.Usage__c.create({**base, "Quantity__c": 12.34565})["id"]
    assert sf.Usage__c.get(rounded)["Quantity__c"] == 12.3457
    error = _error(lambda: sf.Usage__c.create({**base, "Quantity__c": 1_000_000_000_000}))
    assert error == {"message": "Quantity: value outside of valid range on numeric field: 1000000000000",
                     "errorCode": "NUMBER_OUTSIDE_VALID_RANGE", "fields": ["Quantity__c"]}


@pytest.mark.integration
def test_duplicate_value_on_unique_external_id(sf) -> None:
    first = sf.Account.create({"Name": "A", "AccountKey__c": "A-1"})["id"]
    error = _error(lambda: sf.Account.create({"Name": "B", "AccountKey__c": "a-1"}))
    assert error == {"message": f"duplicate value found: AccountKey__c duplicates value on record with id: "
                                f"{first[:15]}", "errorCode": "DUPLICATE_VALUE", "fields": []}


@pytest.mark.integration
def test_malformed_id_in_body(sf) -> None:
    record_id = sf.Account.create({"Name": "A"})["id"]
    sf.Account.create({"Name": "B", "AccountKey__c": "A-2"})
    error = _error(lambda: sf.Contract.create({"AccountId": record_id[:14] + "!"}))
    assert error["errorCode"] == "MALFORMED_ID"
    error = _error(lambda: sf.Contract.create({"AccountId": record_id[:15] + "ZZZ"}))
    assert error["errorCode"] == "MALFORMED_ID"


# -- the Bulk (CSV) value format, on the write path directly ---------------------------------------------

@pytest.fixture
def org(tmp_path: Path) -> Org:
    schema = load_org_schema()
    org = Org(schema, Store(tmp_path / "org.sqlite3", schema))
    org.write_many("Account", "insert", [{"Name": "A", "AccountKey__c": "A-1"}])
    org.write_many("Contract", "insert", [{"Account": {"AccountKey__c": "A-1"}, "ContractKey__c": "C-1"}])
    return org


def _usage(**values: str) -> dict[str, str]:
    row = {"UsageKey__c": "U-1", "Contract__r.ContractKey__c": "C-1", "UsageDate__c": "2024-05-01",
           "Quantity__c": "1", "Metric__c": "api"}
    row.update(values)
    return row


def test_csv_empty_leaves_as_is_and_na_clears(org: Org) -> None:
    [created] = org.write_many("Usage__c", "upsert", [_usage()], external_id_field="UsageKey__c", value_format="csv")
    assert created.created and created.error is None
    [kept] = org.write_many("Usage__c", "upsert", [_usage(Metric__c="", Quantity__c="2")],
                            external_id_field="UsageKey__c", value_format="csv")
    assert kept.id == created.id and not kept.created
    record = org.get("Usage__c", created.id)
    assert (record["Metric__c"], record["Quantity__c"]) == ("api", 2.0)
    org.write_many("Usage__c", "upsert", [_usage(Metric__c="#N/A")], external_id_field="UsageKey__c",
                   value_format="csv")
    assert org.get("Usage__c", created.id)["Metric__c"] is None


def test_csv_type_error_names_the_column(org: Org) -> None:
    [outcome] = org.write_many("Usage__c", "insert", [_usage(UsageDate__c="2003-04-987")], value_format="csv")
    assert outcome.error is not None and outcome.id is None
    assert outcome.error.to_bulk() == ("INVALID_FIELD:Failed to deserialize field at col 2. Due to, '2003-04-987' is "
                                       "not a valid value for the type xsd:date:UsageDate__c --")


def test_csv_missing_parent_and_duplicate_keys(org: Org) -> None:
    outcomes = org.write_many("Usage__c", "upsert", [
        _usage(UsageKey__c="U-1", **{"Contract__r.ContractKey__c": "C-404"}),
        _usage(UsageKey__c="U-2"), _usage(UsageKey__c="u-2"), _usage(UsageKey__c="U-3"),
    ], external_id_field="UsageKey__c", value_format="csv")
    assert outcomes[0].error.message == "Foreign key external ID: C-404 not found for field ContractKey__c in entity " \
                                        "Contract"
    assert [o.error.status_code for o in outcomes[1:3]] == ["DUPLICATE_EXTERNAL_ID"] * 2
    assert outcomes[3].error is None and outcomes[3].created
    assert org.count("Usage__c") == 1


def test_all_or_none_writes_nothing_when_a_row_fails(org: Org) -> None:
    outcomes = org.write_many("Usage__c", "insert", [_usage(UsageKey__c="U-1"), _usage(UsageKey__c="U-2",
                                                                                      Quantity__c="x")],
                              all_or_none=True, value_format="csv")
    assert outcomes[0].error.status_code == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert outcomes[1].error.status_code == "INVALID_FIELD"
    assert org.count("Usage__c") == 0


def test_update_and_delete_need_an_existing_id(org: Org) -> None:
    [missing] = org.write_many("Account", "update", [{"Name": "x"}])
    assert missing.error.to_bulk() == "MISSING_ARGUMENT:Id not specified in an update call:--"
    [created] = org.write_many("Account", "insert", [{"Name": "B"}])
    org.write_many("Account", "delete", [{"Id": created.id}])
    [again] = org.write_many("Account", "delete", [{"Id": created.id}])
    assert again.error.status_code == "ENTITY_IS_DELETED"
    [hard] = org.write_many("Account", "hardDelete", [{"Id": created.id[:15]}])
    assert hard.error.status_code == "ENTITY_IS_DELETED"


def test_hard_delete_removes_the_record(org: Org) -> None:
    [created] = org.write_many("Account", "insert", [{"Name": "B"}])
    [gone] = org.write_many("Account", "hardDelete", [{"Id": created.id}])
    assert gone.error is None
    assert org.get("Account", created.id, include_deleted=True) is None
