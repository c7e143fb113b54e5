"""Validation against the emulator's real describe (over HTTPS, unmodified simple-salesforce) and a live source."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from simple_salesforce.exceptions import SalesforceResourceNotFound

from passwork_assets.demo.sample_data import seed_erp, seed_product
from passwork_assets.mapping.live_sources import validate_live
from passwork_assets.mapping.loader import load_mappings
from passwork_assets.mapping.validate import validate_mappings
from passwork_assets.salesforce.describe import CachedDescribes, ObjectNotFound

pytestmark = pytest.mark.integration

PROJECT_MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


def _org_describes(emulator) -> CachedDescribes:  # noqa: ANN001 - the session fixture
    sf = emulator.salesforce()

    def fetch(name: str) -> dict:
        try:
            return getattr(sf, name).describe()
        except SalesforceResourceNotFound:
            raise ObjectNotFound(name, (o["name"] for o in sf.describe()["sobjects"])) from None

    return CachedDescribes(fetch)


def test_project_mappings_are_valid_against_the_emulator_org(emulator, fresh_database: str,  # noqa: ANN001
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    seed_product(fresh_database, accounts=3, contracts_per_account=1, usage_days=2)
    seed_erp(fresh_database, accounts=3, contracts_per_account=1)
    monkeypatch.setenv("PRODUCT_DATABASE_URL", fresh_database)
    monkeypatch.setenv("ERP_DATABASE_URL", fresh_database)
    issues = validate_live(load_mappings(PROJECT_MAPPINGS), describe=_org_describes(emulator))
    assert issues == [], "\n".join(map(str, issues))


def test_org_answers_shape_the_messages(emulator, tmp_path: Path) -> None:  # noqa: ANN001
    mdir = tmp_path / "mappings"
    shutil.copytree(PROJECT_MAPPINGS, mdir)
    accounts = mdir / "product_accounts.yaml"
    accounts.write_text(accounts.read_text(encoding="utf-8").replace("saas: Technology", "saas: Tech"), encoding="utf-8")
    costs = mdir / "erp_costs.yaml"
    costs.write_text(costs.read_text(encoding="utf-8").replace("object: Cost__c", "object: Costs__c"), encoding="utf-8")
    usage = mdir / "product_usage.yaml"
    usage.write_text(
        usage.read_text(encoding="utf-8").replace(
            "Contract__r.ContractKey__c: contract_no", "Contract__r.ContractNumber: {column: contract_no, parent_object: Contract}"
        ),
        encoding="utf-8",
    )
    issues = {(Path(i.file).name, i.key): i.message for i in validate_mappings(load_mappings(mdir), describe=_org_describes(emulator))}
    industry = issues[("product_accounts.yaml", "fields.Industry.value_map.saas")]
    assert industry.startswith("'Tech' is not a value of the Industry picklist")
    assert "Technology" in industry and "Telecommunications" in industry  # the org's own values are listed
    assert issues[("erp_costs.yaml", "target.object")] == "Salesforce has no object Costs__c; did you mean Cost__c?"
    assert issues[("product_usage.yaml", "fields.Contract__r.ContractNumber")] == (
        "ContractNumber is not an External ID field on Contract; External ID fields: ContractKey__c"
    )
