"""The typed describe model over real-shaped describe JSON (`tests/sync/fixtures/describe/*.json`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from passwork_assets.salesforce.describe import (
    CachedDescribes,
    DescribeError,
    ObjectDescribe,
    ObjectNotFound,
    StaticDescribes,
)

FIXTURES = Path(__file__).parent / "fixtures" / "describe"


def _raw(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def test_fields_are_read_with_their_attributes() -> None:
    usage = ObjectDescribe.from_json(_raw("Usage__c"))
    assert usage.name == "Usage__c"
    assert usage.label == "利用実績"
    assert usage.key_prefix == "a01"
    qty = usage.fields["Quantity__c"]
    assert (qty.type, qty.precision, qty.scale, qty.nillable) == ("double", 16, 4, False)
    key = usage.fields["UsageKey__c"]
    assert key.external_id and key.id_lookup and key.unique and key.length == 80


def test_field_and_relationship_lookup_ignore_case() -> None:
    usage = ObjectDescribe.from_json(_raw("Usage__c"))
    assert usage.field("usagekey__C").name == "UsageKey__c"
    assert usage.field("NoSuchField__c") is None
    rel = usage.relationship("contract__R")
    assert rel is not None and rel.name == "Contract__c" and rel.reference_to == ("Contract",)
    assert usage.relationship("Contract__c") is None  # a field name is not a relationship name


def test_external_id_fields_exclude_id_and_autonumber() -> None:
    contract = ObjectDescribe.from_json(_raw("Contract"))
    # Id and ContractNumber have idLookup but are not External ID fields.
    assert [f.name for f in contract.external_id_fields()] == ["ContractKey__c"]


def test_required_on_create() -> None:
    contract = ObjectDescribe.from_json(_raw("Contract"))
    assert contract.fields["AccountId"].required_on_create
    assert not contract.fields["Status"].required_on_create  # defaulted to Draft
    assert not contract.fields["ContractNumber"].required_on_create  # auto number, not createable
    assert not contract.fields["StartDate"].required_on_create  # nillable


def test_picklist_keeps_only_active_values() -> None:
    account = ObjectDescribe.from_json(_raw("Account"))
    industry = account.fields["Industry"]
    assert "Technology" in industry.picklist_values
    assert "Legacy" not in industry.picklist_values
    status = ObjectDescribe.from_json(_raw("Contract")).fields["Status"]
    assert status.restricted_picklist and status.picklist_values == ("Draft", "In Approval Process", "Activated")


def test_not_a_describe_is_a_clear_error() -> None:
    with pytest.raises(DescribeError, match="missing fields"):
        ObjectDescribe.from_json({"name": "Account"})
    with pytest.raises(DescribeError, match="'type'"):
        ObjectDescribe.from_json({"name": "Account", "fields": [{"name": "Name"}]})


def test_static_provider_names_known_objects_for_unknown() -> None:
    provider = StaticDescribes(_raw(n) for n in ("Account", "Contract"))
    assert provider.describe("account").name == "Account"
    with pytest.raises(ObjectNotFound) as info:
        provider.describe("Acount")
    assert info.value.known == ["Account", "Contract"]


def test_cached_provider_fetches_once() -> None:
    calls: list[str] = []

    def fetch(name: str) -> dict:
        calls.append(name)
        return _raw(name)

    provider = CachedDescribes(fetch)
    assert provider.describe("Cost__c").fields["CostKey__c"].external_id
    provider.describe("cost__c")
    assert calls == ["Cost__c"]
