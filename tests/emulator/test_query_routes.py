"""REST query against the running emulator over HTTPS, through unmodified simple-salesforce."""

from __future__ import annotations

import re

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

pytestmark = pytest.mark.integration

INVALID_FIELD_MESSAGE = (
    "\nSELECT Bacon__c FROM Account LIMIT 2\n       ^\nERROR at Row:1:Column:8\n"
    "No such column 'Bacon__c' on entity 'Account'. If you are attempting to use a custom field, be sure to "
    "append the '__c' after the custom field name. Please reference your WSDL or the describe call for the "
    "appropriate names."
)


@pytest.fixture
def sf(emulator):
    emulator.reset()
    return emulator.salesforce()


def _seed_usage(sf, rows: int) -> None:
    """Two accounts, two contracts and ``rows`` Usage__c rows, written with Bulk 2.0."""
    sf.bulk2.Account.upsert(records=[{"AccountKey__c": "A-1", "Name": "Acme"}, {"AccountKey__c": "A-2", "Name": "Beta"}],
                            external_id_field="AccountKey__c", wait=0.1)
    sf.bulk2.Contract.upsert(
        records=[{"ContractKey__c": f"C-{i}", "Account.AccountKey__c": f"A-{i}", "Status": "Draft"} for i in (1, 2)],
        external_id_field="ContractKey__c", wait=0.1)
    usage = [{"UsageKey__c": f"U-{i:05d}", "Contract__r.ContractKey__c": f"C-{1 + i % 2}",
              "UsageDate__c": "2024-05-01", "Quantity__c": str(i)} for i in range(rows)]
    [job] = sf.bulk2.Usage__c.upsert(records=usage, external_id_field="UsageKey__c", wait=0.1)
    assert job["numberRecordsFailed"] == 0


def test_query_shape_with_parent_paths(sf) -> None:
    _seed_usage(sf, 3)
    result = sf.query("SELECT Id, UsageKey__c, Contract__r.ContractKey__c, Contract__r.Account.Name FROM Usage__c "
                      "WHERE Quantity__c >= 1 ORDER BY UsageKey__c")
    assert list(result) == ["totalSize", "done", "records"]
    assert result["totalSize"] == 2 and result["done"] is True
    record = result["records"][0]
    assert list(record) == ["attributes", "Id", "UsageKey__c", "Contract__r"]
    assert record["attributes"] == {"type": "Usage__c", "url": f"/services/data/v59.0/sobjects/Usage__c/{record['Id']}"}
    contract = record["Contract__r"]
    assert contract["attributes"]["type"] == "Contract"
    assert contract["ContractKey__c"] == "C-2"
    assert contract["Account"]["Name"] == "Beta"
    assert contract["Account"]["attributes"]["url"].startswith("/services/data/v59.0/sobjects/Account/001")


def test_null_parent_is_json_null(sf) -> None:
    sf.Cost__c.create({"CostKey__c": "K-1", "CostDate__c": "2024-05-01", "Amount__c": 10})
    [record] = sf.query("SELECT CostKey__c, Contract__r.ContractKey__c FROM Cost__c")["records"]
    assert record["Contract__r"] is None


def test_empty_result_is_answered_like_salesforce(sf, emulator) -> None:
    response = sf.session.get(f"{sf.base_url}query/", params={"q": "SELECT Id FROM Account"}, headers=sf.headers)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json;charset=UTF-8"
    assert response.text == '{\n  "totalSize" : 0,\n  "done" : true,\n  "records" : [ ]\n}'


def test_paging_query_more_and_query_all(sf) -> None:
    _seed_usage(sf, 2500)
    first = sf.query("SELECT Id, UsageKey__c FROM Usage__c")
    assert first["totalSize"] == 2500 and first["done"] is False
    assert len(first["records"]) == 2000
    assert list(first) == ["totalSize", "done", "nextRecordsUrl", "records"]
    assert re.fullmatch(r"/services/data/v59\.0/query/01g[0-9A-Za-z]{15}-2000", first["nextRecordsUrl"])
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert second["done"] is True and "nextRecordsUrl" not in second
    assert len(second["records"]) == 500
    keys = {r["UsageKey__c"] for r in first["records"]} | {r["UsageKey__c"] for r in second["records"]}
    assert len(keys) == 2500
    everything = sf.query_all("SELECT UsageKey__c FROM Usage__c WHERE Contract__r.ContractKey__c = 'C-1'")
    assert everything["totalSize"] == 1250 and len(everything["records"]) == 1250
    # A used-up locator is gone, as in Salesforce.
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert info.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_count_and_query_all_with_deleted(sf) -> None:
    kept = sf.Account.create({"Name": "Kept", "AccountKey__c": "K"})
    gone = sf.Account.create({"Name": "Gone", "AccountKey__c": "G"})
    sf.Account.delete(gone["id"])
    count = sf.query("SELECT COUNT() FROM Account")
    assert count["totalSize"] == 1 and count["records"] == []
    live = sf.query_all("SELECT Id FROM Account")
    assert [r["Id"] for r in live["records"]] == [kept["id"]]
    both = sf.query_all("SELECT Id, IsDeleted FROM Account ORDER BY Name", include_deleted=True)
    assert [(r["Id"], r["IsDeleted"]) for r in both["records"]] == [(gone["id"], True), (kept["id"], False)]


@pytest.mark.parametrize(
    ("soql", "code", "message"),
    [
        ("SELEKT Name FROM Account", "MALFORMED_QUERY", "unexpected token: SELEKT"),
        ("SELECT Bacon__c FROM Account LIMIT 2", "INVALID_FIELD", INVALID_FIELD_MESSAGE),
        ("SELECT Id FROM XYZZY", "INVALID_TYPE", None),
    ],
)
def test_query_errors(sf, soql: str, code: str, message: str | None) -> None:
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query(soql)
    assert info.value.status == 400
    [error] = info.value.content
    assert error["errorCode"] == code
    if message is not None:
        assert error["message"] == message
    else:
        assert error["message"].endswith(
            "sObject type 'XYZZY' is not supported. If you are attempting to use a custom object, be sure to "
            "append the '__c' after the entity name. Please reference your WSDL or the describe call for the "
            "appropriate names.")
