"""Metadata: versions, describeGlobal, sObject describe with the real key sets, and describe-file orgs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from salesforce_emulator.schema import SchemaError, load_org_schema
from salesforce_emulator.testing import EmulatorProcess

# The key sets of real describe output (wire notes 2.1, 2.2), alphabetical as Salesforce prints them.
FIELD_KEYS = (
    "aggregatable aiPredictionField autoNumber byteLength calculated calculatedFormula cascadeDelete caseSensitive "
    "compoundFieldName controllerName createable custom defaultValue defaultValueFormula defaultedOnCreate "
    "dependentPicklist deprecatedAndHidden digits displayLocationInDecimal encrypted externalId extraTypeInfo "
    "filterable filteredLookupInfo formulaTreatNullNumberAsZero groupable highScaleNumber htmlFormatted idLookup "
    "inlineHelpText label length mask maskType name nameField namePointing nillable permissionable picklistValues "
    "polymorphicForeignKey precision queryByDistance referenceTargetField referenceTo relationshipName "
    "relationshipOrder restrictedDelete restrictedPicklist scale searchPrefilterable soapType sortable type unique "
    "updateable writeRequiresMasterRead"
).split()
OBJECT_KEYS = (
    "actionOverrides activateable associateEntityType associateParentEntity childRelationships compactLayoutable "
    "createable custom customSetting deepCloneable defaultImplementation deletable deprecatedAndHidden extendedBy "
    "extendsInterfaces feedEnabled fields hasSubtypes implementedBy implementsInterfaces isInterface isSubtype "
    "keyPrefix label labelPlural layoutable listviewable lookupLayoutable mergeable mruEnabled name namedLayoutInfos "
    "networkScopeFieldName queryable recordTypeInfos replicateable retrieveable searchLayoutable searchable "
    "sobjectDescribeOption supportedScopes triggerable undeletable updateable urls"
).split()
GLOBAL_KEYS = (
    "activateable associateEntityType associateParentEntity createable custom customSetting deepCloneable deletable "
    "deprecatedAndHidden feedEnabled hasSubtypes isInterface isSubtype keyPrefix label labelPlural layoutable "
    "mergeable mruEnabled name queryable replicateable retrieveable searchable triggerable undeletable updateable urls"
).split()


@pytest.fixture
def sf(emulator):
    return emulator.salesforce()


@pytest.mark.integration
def test_describe_global(sf) -> None:
    body = sf.describe()
    assert list(body) == ["encoding", "maxBatchSize", "sobjects"]
    names = [o["name"] for o in body["sobjects"]]
    assert names == ["Account", "Contract", "Usage__c", "Cost__c"]
    assert list(body["sobjects"][0]) == GLOBAL_KEYS
    assert body["sobjects"][0]["urls"]["rowTemplate"] == "/services/data/v59.0/sobjects/Account/{ID}"


@pytest.mark.integration
def test_describe_key_sets(sf) -> None:
    describe = sf.Contract.describe()
    assert list(describe) == OBJECT_KEYS
    for field in describe["fields"]:
        assert list(field) == FIELD_KEYS, field["name"]


@pytest.mark.integration
def test_describe_field_values(sf) -> None:
    fields = {f["name"]: f for f in sf.Usage__c.describe()["fields"]}
    assert [fields["Id"][k] for k in ("type", "soapType", "length", "byteLength", "idLookup", "createable")] == [
        "id", "tns:ID", 18, 18, True, False]
    key = fields["UsageKey__c"]
    assert (key["externalId"], key["idLookup"], key["unique"], key["length"], key["byteLength"]) == (
        True, True, True, 80, 240)
    parent = fields["Contract__c"]
    assert (parent["type"], parent["referenceTo"], parent["relationshipName"], parent["nillable"],
            parent["cascadeDelete"], parent["relationshipOrder"]) == ("reference", ["Contract"], "Contract__r", False,
                                                                      True, 0)
    quantity = fields["Quantity__c"]
    assert (quantity["type"], quantity["soapType"], quantity["precision"], quantity["scale"], quantity["nillable"]) == (
        "double", "xsd:double", 16, 4, False)
    name = fields["Name"]
    assert (name["autoNumber"], name["nameField"], name["createable"]) == (True, True, False)
    status = {f["name"]: f for f in sf.Contract.describe()["fields"]}["Status"]
    assert status["restrictedPicklist"] is True
    assert [(p["value"], p["defaultValue"]) for p in status["picklistValues"]] == [
        ("Draft", True), ("In Approval Process", False), ("Activated", False)]


@pytest.mark.integration
def test_child_relationships(sf) -> None:
    children = {(c["childSObject"], c["field"]): c for c in sf.Contract.describe()["childRelationships"]}
    assert children[("Usage__c", "Contract__c")]["relationshipName"] == "Usages__r"
    assert children[("Usage__c", "Contract__c")]["cascadeDelete"] is True
    assert children[("Cost__c", "Contract__c")]["cascadeDelete"] is False
    account_children = sf.Account.describe()["childRelationships"]
    assert [(c["childSObject"], c["relationshipName"]) for c in account_children] == [("Contract", "Contracts")]


@pytest.mark.integration
def test_sobject_basic_info_and_unknown_version(sf, emulator) -> None:
    basic = sf.Account.metadata()
    assert list(basic) == ["objectDescribe", "recentItems"]
    assert basic["objectDescribe"]["keyPrefix"] == "001"
    response = emulator.requests_session().get(f"{emulator.instance_url}/services/data/v12.0/sobjects",
                                               headers={"Authorization": f"Bearer {emulator.connection['access_token']}"})
    assert response.status_code == 404
    assert response.json() == [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]


@pytest.mark.integration
def test_org_from_describe_files(sf, tmp_path: Path) -> None:
    folder = tmp_path / "describe"
    folder.mkdir()
    for name in ("Account", "Contract"):
        describe = sf.restful(f"sobjects/{name}/describe")
        (folder / f"{name}.json").write_text(json.dumps(describe), encoding="utf-8")
    process = EmulatorProcess(tmp_path / "data", org_schema=folder).start()
    try:
        other = process.salesforce()
        assert [o["name"] for o in other.describe()["sobjects"]] == ["Account", "Contract"]
        assert other.Account.describe()["fields"] == sf.Account.describe()["fields"]
        other.Account.create({"Name": "From describe", "AccountKey__c": "D-1"})
        assert other.Contract.upsert("ContractKey__c/C-1", {"Account": {"AccountKey__c": "D-1"}}) == 201
    finally:
        process.stop()


def test_schema_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "org.yaml"
    bad.write_text("objects:\n  Thing__c:\n    key_prefix: a09\n    fields:\n      Size__c: {type: bignum}\n")
    with pytest.raises(SchemaError, match=r"org.yaml: objects.Thing__c.fields.Size__c: type 'bignum' is not one of"):
        load_org_schema(bad)
    not_describe = tmp_path / "x.json"
    not_describe.write_text('{"hello": 1}')
    with pytest.raises(SchemaError, match="item 0: not an sObject describe"):
        load_org_schema(not_describe)
