"""`suggest_mapping`: drafts matched by name and label, External ID fields first, and drafts that load."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import yaml

from passwork_assets.mapping.loader import load_mappings
from passwork_assets.mapping.suggest import suggest_mapping
from passwork_assets.mapping.validate import validate_mappings
from passwork_assets.salesforce.describe import StaticDescribes

PROJECT_MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
FIXTURES = Path(__file__).parent / "fixtures" / "describe"

USAGE_COLUMNS = {"id": "bigint", "contract_no": "text", "usage_date": "date", "metric": "text",
                 "quantity": "numeric(16,4)", "unit_price": "numeric(12,4)", "updated_at": "timestamp with time zone"}


def _raw(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def _describes(*extra: dict) -> StaticDescribes:
    base = {n: _raw(n) for n in ("Account", "Contract", "Usage__c", "Cost__c")}
    for d in extra:
        base[d["name"]] = d
    return StaticDescribes(base.values())


def _field(name: str, label: str, ftype: str = "string", **attrs: object) -> dict:
    entry = copy.deepcopy(next(f for f in _raw("Account")["fields"] if f["name"] == "AccountKey__c"))
    entry.update(name=name, label=label, type=ftype, externalId=False, idLookup=False, unique=False)
    entry.update({k: v for k, v in attrs.items()})
    return entry


def test_usage_draft_matches_columns_and_links_the_parent_by_external_id() -> None:
    draft = suggest_mapping(USAGE_COLUMNS, _describes(), connection="product", table="public.usage_events", object="Usage__c")
    doc = yaml.safe_load(draft)
    assert doc["target"] == {"object": "Usage__c", "operation": "upsert", "external_id": "UsageKey__c"}
    assert doc["source"]["cursor"] == "updated_at"
    fields = doc["fields"]
    assert fields["Contract__r.ContractKey__c"] == "contract_no"
    assert fields["UsageDate__c"] == "usage_date"
    assert fields["Quantity__c"] == "quantity"
    assert fields["Metric__c"] == "metric"
    assert fields["UsageKey__c"] == "id"  # no column named like the key: the row's id is offered
    assert "Contract__c" not in fields and "Name" not in fields  # the lookup goes through the link; Name is auto-number
    assert set(doc["source"]["columns"]) == {"id", "contract_no", "usage_date", "metric", "quantity", "updated_at"}
    assert "# columns not mapped: unit_price" in draft


def test_draft_loads_and_validates_beside_the_project_flows(tmp_path: Path) -> None:
    mdir = tmp_path / "mappings"
    shutil.copytree(PROJECT_MAPPINGS, mdir)
    (mdir / "product_usage.yaml").write_text(
        suggest_mapping(USAGE_COLUMNS, _describes(), connection="product", table="public.usage_events", object="Usage__c"),
        encoding="utf-8",
    )
    mappings = load_mappings(mdir)
    flow = mappings.flows["product_usage_events"]
    assert flow.field("Contract__r.ContractKey__c").parent_object == "Contract"
    issues = validate_mappings(
        mappings, describe=_describes(),
    )
    assert issues == []



def test_japanese_column_names_match_japanese_labels() -> None:
    cols = {"コスト番号": "text", "契約番号": "text", "計上日": "date", "外注先": "text", "費目": "text", "金額": "numeric(14,2)",
            "更新日時": "timestamp with time zone"}
    draft = suggest_mapping(cols, _describes(), connection="erp", table="erp.原価明細", object="Cost__c")
    fields = yaml.safe_load(draft)["fields"]
    assert fields["CostDate__c"] == "計上日"
    assert fields["Vendor__c"] == "外注先"
    assert fields["Category__c"] == "費目"
    assert fields["Amount__c"] == "金額"


def test_external_id_fields_come_first_and_alternatives_are_listed() -> None:
    account = _raw("Account")
    account["fields"].append(_field("LegacyCode__c", "旧取引先コード", externalId=True, idLookup=True, unique=True))
    cols = {"legacy_code": "text", "name": "text", "updated_at": "timestamptz"}
    draft = suggest_mapping(cols, _describes(account), connection="erp", table="erp.partners", object="Account")
    doc = yaml.safe_load(draft)
    assert doc["target"]["external_id"] == "LegacyCode__c"
    assert doc["fields"]["LegacyCode__c"] == "legacy_code"
    assert "# other External ID fields of Account: AccountKey__c" in draft
    assert doc["fields"]["Name"] == "name"


def test_object_without_external_id_says_so() -> None:
    account = _raw("Account")
    for f in account["fields"]:
        f["externalId"] = False
    draft = suggest_mapping({"code": "text", "name": "text"}, _describes(account), connection="erp", table="t", object="Account")
    assert "Account has no External ID field: add one (Text, External ID, Unique)" in draft
    assert yaml.safe_load(draft)["target"]["external_id"] == "CHOOSE_AN_EXTERNAL_ID_FIELD"


def test_unmatched_parent_link_is_offered_as_a_comment_with_candidates() -> None:
    cols = {"contract_no": "text", "customer_code": "text", "start_date": "date", "updated_at": "timestamptz"}
    draft = suggest_mapping(cols, _describes(), connection="product", table="public.contracts", object="Contract")
    assert "  # Account.AccountKey__c: <column holding the Account's AccountKey__c>   # parent link (required); candidates: customer_code" in draft
    doc = yaml.safe_load(draft)
    assert doc["fields"]["ContractKey__c"] == "contract_no"
    assert doc["fields"]["StartDate"] == "start_date"


def test_types_must_fit_for_a_match() -> None:
    cols = {"usage_key": "text", "quantity": "text", "usage_date": "timestamp with time zone"}
    doc = yaml.safe_load(suggest_mapping(cols, _describes(), connection="p", table="t", object="Usage__c"))
    assert doc["fields"] == {"UsageKey__c": "usage_key"}  # text quantity and a timestamp "date" are not offered


def test_a_single_describe_drafts_parent_links_as_comments() -> None:
    usage = _describes().describe("Usage__c")
    draft = suggest_mapping(USAGE_COLUMNS, usage, connection="product", table="public.usage_events", object="Usage__c")
    assert "  # Contract__r.<External ID field of Contract>: <column>   # parent link (required)" in draft
    assert yaml.safe_load(draft)["fields"]["Quantity__c"] == "quantity"
