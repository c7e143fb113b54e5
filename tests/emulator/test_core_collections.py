"""sObject Collections through simple-salesforce's restful(): create, update, delete, retrieve, upsert."""

from __future__ import annotations

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

pytestmark = pytest.mark.integration

ROLLED_BACK = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
               "message": "Record rolled back because not all records were valid and the request was using AllOrNone "
                          "header", "fields": []}


@pytest.fixture
def sf(emulator):
    emulator.reset()
    return emulator.salesforce()


def _accounts(*names: str) -> list[dict]:
    return [{"attributes": {"type": "Account"}, "Name": n, "AccountKey__c": f"K-{n}"} for n in names]


def test_create_results_in_order(sf) -> None:
    results = sf.restful("composite/sobjects", method="POST",
                         json={"allOrNone": False, "records": _accounts("a", "b") + [
                             {"attributes": {"type": "Account"}, "Industry": "Media"}]})
    assert [list(r) for r in results[:2]] == [["id", "success", "errors"]] * 2
    assert all(r["success"] for r in results[:2])
    # A failed record has no "id" and per-record errors use statusCode.
    assert results[2] == {"success": False, "errors": [{"statusCode": "REQUIRED_FIELD_MISSING",
                                                        "message": "Required fields are missing: [Name]",
                                                        "fields": ["Name"]}]}
    assert sf.Account.get(results[0]["id"])["Name"] == "a"


def test_create_all_or_none_rolls_back(sf, emulator) -> None:
    results = sf.restful("composite/sobjects", method="POST",
                         json={"allOrNone": True, "records": _accounts("a") + [
                             {"attributes": {"type": "Account"}, "Industry": "Media"}]})
    assert results[0] == {"success": False, "errors": [ROLLED_BACK]}
    assert results[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert emulator.operator("records/Account") == []


def test_mixed_types_all_or_none(sf, emulator) -> None:
    sf.Account.create({"Name": "Parent", "AccountKey__c": "P"})
    records = [
        {"attributes": {"type": "Contract"}, "Account": {"AccountKey__c": "P"}, "ContractKey__c": "C-1"},
        {"attributes": {"type": "Cost__c"}, "CostKey__c": "K-1", "CostDate__c": "not a date", "Amount__c": 1},
    ]
    results = sf.restful("composite/sobjects", method="POST", json={"allOrNone": True, "records": records})
    assert results[0] == {"success": False, "errors": [ROLLED_BACK]}
    assert results[1]["errors"][0]["statusCode"] == "INVALID_TYPE_ON_FIELD_IN_RECORD"
    assert emulator.operator("records/Contract") == []


def test_update_and_delete(sf, emulator) -> None:
    created = sf.restful("composite/sobjects", method="POST", json={"records": _accounts("a", "b")})
    ids = [r["id"] for r in created]
    updated = sf.restful("composite/sobjects", method="PATCH", json={"records": [
        {"attributes": {"type": "Account"}, "Id": ids[0], "Industry": "Media"},
        {"attributes": {"type": "Account"}, "Industry": "Media"},
    ]})
    assert updated[0] == {"id": ids[0], "success": True, "errors": []}
    assert updated[1]["errors"][0] == {"statusCode": "MISSING_ARGUMENT", "message": "Id not specified in an update call",
                                       "fields": []}
    deleted = sf.restful("composite/sobjects", method="DELETE", params={"ids": ",".join(ids), "allOrNone": "false"})
    assert [r["success"] for r in deleted] == [True, True]
    again = sf.restful("composite/sobjects", method="DELETE", params={"ids": ids[0]})
    assert again == [{"id": ids[0], "success": False, "errors": [{"statusCode": "ENTITY_IS_DELETED",
                                                                  "message": "entity is deleted", "fields": []}]}]


def test_retrieve(sf) -> None:
    created = sf.restful("composite/sobjects", method="POST", json={"records": _accounts("a")})
    records = sf.restful("composite/sobjects/Account", params={"ids": created[0]["id"], "fields": "Name,AccountKey__c"})
    assert records == [{"attributes": {"type": "Account",
                                       "url": f"/services/data/v59.0/sobjects/Account/{created[0]['id']}"},
                        "Name": "a", "AccountKey__c": "K-a"}]


def test_upsert_created_then_updated(sf) -> None:
    first = sf.restful("composite/sobjects/Account/AccountKey__c", method="PATCH",
                       json={"allOrNone": False, "records": _accounts("a", "b")})
    assert [list(r) for r in first] == [["id", "success", "errors", "created"]] * 2
    assert [r["created"] for r in first] == [True, True]
    second = sf.restful("composite/sobjects/Account/AccountKey__c", method="PATCH",
                        json={"records": _accounts("a", "c")})
    assert [r["created"] for r in second] == [False, True]
    assert second[0]["id"] == first[0]["id"]


def test_upsert_duplicate_external_id_in_one_request(sf) -> None:
    results = sf.restful("composite/sobjects/Account/AccountKey__c", method="PATCH",
                         json={"records": _accounts("a", "a", "b")})
    assert [r["success"] for r in results] == [False, False, True]
    assert results[0]["errors"][0]["statusCode"] == "DUPLICATE_EXTERNAL_ID"
    assert results[0]["errors"][0]["message"] == "Duplicate external id specified: K-a"


def test_upsert_with_parent_links(sf) -> None:
    sf.Account.create({"Name": "A", "AccountKey__c": "A-1"})
    sf.Contract.create({"Account": {"AccountKey__c": "A-1"}, "ContractKey__c": "C-1"})
    usage = [{"attributes": {"type": "Usage__c"}, "UsageKey__c": f"U-{i}", "Contract__r": {"ContractKey__c": "C-1"},
              "UsageDate__c": "2024-05-01", "Quantity__c": i} for i in range(3)]
    usage.append({"attributes": {"type": "Usage__c"}, "UsageKey__c": "U-x", "Contract__r": {"ContractKey__c": "C-9"},
                  "UsageDate__c": "2024-05-01", "Quantity__c": 1})
    results = sf.restful("composite/sobjects/Usage__c/UsageKey__c", method="PATCH", json={"records": usage})
    assert [r["success"] for r in results] == [True, True, True, False]
    assert results[3]["errors"][0]["message"] == ("Foreign key external ID: C-9 not found for field ContractKey__c in "
                                                  "entity Contract")


def test_request_level_errors(sf) -> None:
    with pytest.raises(SalesforceMalformedRequest) as empty:
        sf.restful("composite/sobjects", method="POST", json={"records": []})
    assert empty.value.content == [{"message": "At least 1 record is required", "errorCode": "REQUIRED_FIELD_MISSING"}]
    with pytest.raises(SalesforceMalformedRequest) as too_many:
        sf.restful("composite/sobjects", method="POST", json={"records": _accounts(*map(str, range(201)))})
    assert too_many.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    with pytest.raises(SalesforceMalformedRequest) as not_json:
        sf.restful("composite/sobjects", method="POST", data="{not json")
    assert not_json.value.content[0]["errorCode"] == "JSON_PARSER_ERROR"
