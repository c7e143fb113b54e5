"""Single-record REST through simple-salesforce: create, get, update, delete, upsert by External ID."""

from __future__ import annotations

import pytest
from simple_salesforce.exceptions import (
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceResourceNotFound,
)

from salesforce_emulator import ids

pytestmark = pytest.mark.integration


@pytest.fixture
def sf(emulator):
    emulator.reset()
    return emulator.salesforce()


def _account(sf, key: str = "A-1", name: str = "Acme") -> str:
    return sf.Account.create({"Name": name, "AccountKey__c": key})["id"]


def test_create_answers_201_with_location_and_jackson_json(sf, emulator) -> None:
    # create() returns only the body; the same POST through the session shows status and headers.
    response = sf.session.post(f"{sf.base_url}sobjects/Account/", headers=sf.headers, json={"Name": "Acme"})
    assert response.status_code == 201
    body = response.json()
    assert list(body) == ["id", "success", "errors"]
    assert response.headers["Location"] == f"/services/data/v59.0/sobjects/Account/{body['id']}"
    assert response.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert response.text == f'{{\n  "id" : "{body["id"]}",\n  "success" : true,\n  "errors" : [ ]\n}}'
    assert response.headers["Sforce-Limit-Info"].startswith("api-usage=")


def test_ids_are_18_characters_with_a_real_checksum(sf) -> None:
    record_id = _account(sf)
    assert len(record_id) == 18 and record_id.startswith("001")
    assert ids.to_18(record_id[:15]) == record_id
    # The 15-character form names the same record.
    assert sf.Account.get(record_id[:15])["Id"] == record_id


def test_get_has_attributes_then_every_field(sf) -> None:
    record_id = _account(sf)
    record = sf.Account.get(record_id)
    assert list(record)[:3] == ["attributes", "Id", "IsDeleted"]
    assert record["attributes"] == {"type": "Account", "url": f"/services/data/v59.0/sobjects/Account/{record_id}"}
    assert record["Name"] == "Acme" and record["Industry"] is None
    assert record["CreatedDate"].endswith(".000+0000")


def test_get_by_external_id_is_case_insensitive_for_unique_keys(sf) -> None:
    record_id = _account(sf, key="Key-ABC")
    assert sf.Account.get_by_custom_id("AccountKey__c", "key-abc")["Id"] == record_id


def test_get_unknown_and_malformed(sf) -> None:
    with pytest.raises(SalesforceResourceNotFound) as missing:
        sf.Account.get(ids.make_id("001", 999_999))
    assert missing.value.content == [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
    with pytest.raises(SalesforceResourceNotFound) as bad:
        sf.Account.get("not-an-id")
    assert bad.value.content[0]["message"] == ("Provided external ID field does not exist or is not accessible: "
                                               "not-an-id")


def test_unknown_object_is_not_found(sf) -> None:
    with pytest.raises(SalesforceResourceNotFound) as failure:
        sf.Opportunity.create({"Name": "x"})
    assert failure.value.content[0]["errorCode"] == "NOT_FOUND"


def test_update_is_204_and_changes_the_record(sf) -> None:
    record_id = _account(sf)
    before = sf.Account.get(record_id)
    assert sf.Account.update(record_id, {"Industry": "Technology", "Name": "Acme 2"}) == 204
    after = sf.Account.get(record_id)
    assert (after["Industry"], after["Name"]) == ("Technology", "Acme 2")
    assert after["CreatedDate"] == before["CreatedDate"]
    assert sf.Account.update(record_id, {"Industry": None}) == 204
    assert sf.Account.get(record_id)["Industry"] is None


def test_delete_then_entity_is_deleted(sf) -> None:
    record_id = _account(sf)
    assert sf.Account.delete(record_id) == 204
    for call in (lambda: sf.Account.get(record_id), lambda: sf.Account.delete(record_id),
                 lambda: sf.Account.update(record_id, {"Name": "x"})):
        with pytest.raises(SalesforceResourceNotFound) as failure:
            call()
        assert failure.value.content == [{"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED",
                                          "fields": []}]


def test_deleting_a_contract_deletes_its_usage(sf) -> None:
    _account(sf)
    contract = sf.Contract.create({"Account": {"AccountKey__c": "A-1"}, "ContractKey__c": "C-1"})["id"]
    usage = sf.Usage__c.create({"Contract__c": contract, "UsageDate__c": "2024-05-01", "Quantity__c": 1})["id"]
    cost = sf.Cost__c.create({"Contract__c": contract, "CostDate__c": "2024-05-01", "Amount__c": 5})["id"]
    sf.Contract.delete(contract)
    with pytest.raises(SalesforceResourceNotFound):
        sf.Usage__c.get(usage)
    assert sf.Cost__c.get(cost)["Contract__c"] is None


def test_upsert_creates_201_then_updates_200(sf) -> None:
    _account(sf)
    created = sf.Contract.upsert("ContractKey__c/C-1", {"Account": {"AccountKey__c": "A-1"}}, raw_response=True)
    assert created.status_code == 201
    body = created.json()
    assert list(body) == ["id", "success", "errors", "created"] and body["created"] is True
    updated = sf.Contract.upsert("ContractKey__c/C-1", {"Status": "Activated"}, raw_response=True)
    assert updated.status_code == 200
    assert updated.json() == {"id": body["id"], "success": True, "errors": [], "created": False}
    record = sf.Contract.get(body["id"])
    assert (record["Status"], record["ContractKey__c"]) == ("Activated", "C-1")


def test_upsert_update_is_204_up_to_api_45(emulator, sf) -> None:
    old = emulator.salesforce(version="45.0")
    assert old.Account.upsert("AccountKey__c/A-9", {"Name": "Old API"}) == 201
    response = old.Account.upsert("AccountKey__c/A-9", {"Name": "Old API 2"}, raw_response=True)
    assert response.status_code == 204 and response.text == ""


def test_upsert_with_several_matches_is_300(sf) -> None:
    _account(sf, key="A-1", name="Twin")
    _account(sf, key="A-2", name="Twin")
    with pytest.raises(SalesforceMoreThanOneRecord) as failure:
        sf.Account.upsert("Name/Twin", {"Industry": "Media"})
    assert failure.value.status == 300
    assert len(failure.value.content) == 2


def test_upsert_on_unknown_field_is_404(sf) -> None:
    with pytest.raises(SalesforceResourceNotFound) as failure:
        sf.Account.upsert("Nope__c/1", {"Name": "x"})
    assert failure.value.content == [{
        "message": "Provided external ID field does not exist or is not accessible: Nope__c", "errorCode": "NOT_FOUND"}]


def test_parent_by_external_id_not_found(sf) -> None:
    with pytest.raises(SalesforceMalformedRequest) as failure:
        sf.Contract.create({"Account": {"AccountKey__c": "missing"}, "ContractKey__c": "C-1"})
    assert failure.value.content == [{
        "message": "Foreign key external ID: missing not found for field AccountKey__c in entity Account",
        "errorCode": "INVALID_FIELD"}]


def test_parent_link_by_external_id_sets_the_reference(sf) -> None:
    account = _account(sf)
    contract = sf.Contract.upsert("ContractKey__c/C-1", {"Account": {"AccountKey__c": "A-1"}}, raw_response=True)
    usage = sf.Usage__c.upsert("UsageKey__c/U-1", {"Contract__r": {"ContractKey__c": "C-1"},
                                                    "UsageDate__c": "2024-05-31", "Quantity__c": 2.5},
                               raw_response=True).json()["id"]
    assert sf.Contract.get(contract.json()["id"])["AccountId"] == account
    record = sf.Usage__c.get(usage)
    assert record["Contract__c"] == contract.json()["id"]
    assert record["Name"].startswith("U-")


def test_update_with_malformed_id(sf) -> None:
    record_id = _account(sf)
    bad_checksum = record_id[:15] + ("AAB" if record_id[15:] != "AAB" else "AAC")
    with pytest.raises(SalesforceMalformedRequest) as failure:
        sf.Account.update(bad_checksum, {"Name": "x"})
    assert failure.value.content == [{"message": f"Record ID: id value of incorrect type: {bad_checksum}",
                                      "errorCode": "MALFORMED_ID", "fields": ["Id"]}]
    # An unknown field is reported first, as in the recorded answer.
    with pytest.raises(SalesforceMalformedRequest) as unknown:
        sf.Account.update(bad_checksum, {"Color__c": "Red"})
    assert unknown.value.content == [{"message": "No such column 'Color__c' on sobject of type Account",
                                      "errorCode": "INVALID_FIELD"}]


def test_malformed_reference_id(sf) -> None:
    with pytest.raises(SalesforceMalformedRequest) as failure:
        sf.Contract.create({"AccountId": "001xyz"})
    assert failure.value.content == [{"message": "Account ID: id value of incorrect type: 001xyz",
                                      "errorCode": "MALFORMED_ID", "fields": ["AccountId"]}]


def test_updated_and_deleted_replication(sf) -> None:
    kept = _account(sf, key="A-1")
    gone = _account(sf, key="A-2")
    sf.Account.delete(gone)
    window = ("2000-01-01T00:00:00+00:00", "2100-01-01T00:00:00+00:00")
    from datetime import datetime
    start, end = (datetime.fromisoformat(w) for w in window)
    assert sf.Account.updated(start, end)["ids"] == [kept]
    assert [r["id"] for r in sf.Account.deleted(start, end)["deletedRecords"]] == [gone]


@pytest.mark.parametrize("key", ["A 1", "A/1", "A+1", "100%", "顧客-1"])
def test_external_id_values_are_decoded_once(sf, key) -> None:
    from simple_salesforce.format import format_external_id

    assert sf.Account.upsert(format_external_id("AccountKey__c", key), {"Name": "Odd key"}) == 201
    record = sf.Account.get_by_custom_id("AccountKey__c", key)
    assert record["AccountKey__c"] == key
