"""Materialize the assets against the embedded PostgreSQL and the emulator (over HTTPS, simple-salesforce).

One small seeded world per module: the product and ERP sample databases (with their planted dirty rows), a
state database, and a clean emulator org. The checks are run passing, then made to fail by changing
Salesforce behind the sync's back.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
import pytest

from passwork_assets.demo.sample_data import seed_erp, seed_product

pytestmark = pytest.mark.integration

OBJECTS = ["salesforce/Account", "salesforce/Contract", "salesforce/Usage__c", "salesforce/Cost__c"]


@dataclass
class World:
    defs: dg.Definitions
    instance: dg.DagsterInstance
    emulator: object


def build_defs() -> dg.Definitions:
    from passwork_assets.definitions import defs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return defs()


@pytest.fixture(scope="module")
def world(postgres, emulator) -> Iterator[World]:
    emulator.reset()
    suffix = uuid.uuid4().hex[:8]
    product = postgres.create_database(f"product_{suffix}")
    erp = postgres.create_database(f"erp_{suffix}")
    state = postgres.create_database(f"state_{suffix}")
    seed_product(product, accounts=4, contracts_per_account=1, usage_days=40)
    seed_erp(erp, accounts=4, contracts_per_account=1)
    env = {
        "PRODUCT_DATABASE_URL": product,
        "ERP_DATABASE_URL": erp,
        "PASSWORK_STATE_URL": state,
        "SALESFORCE_INSTANCE_URL": emulator.instance_url,
        "SALESFORCE_ACCESS_TOKEN": emulator.connection["access_token"],
        "SALESFORCE_CA_BUNDLE": emulator.ca_cert,
        "SALESFORCE_API_VERSION": str(emulator.connection["api_version"]),
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        with dg.DagsterInstance.ephemeral() as instance:
            yield World(defs=build_defs(), instance=instance, emulator=emulator)


def run(world: World, assets: list[str], *, checks: bool = True) -> dg.ExecuteInProcessResult:
    selection = dg.AssetSelection.assets(*[dg.AssetKey.from_user_string(a) for a in assets])
    if not checks:
        selection = selection.without_checks()
    return dg.materialize(
        [*(world.defs.assets or []), *(world.defs.asset_checks or [])],
        instance=world.instance,
        resources=world.defs.resources,
        selection=selection,
        raise_on_error=False,
    )


def checks_of(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.asset_check_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


def materialized(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {e.asset_key.to_user_string(): e.materialization.metadata
            for e in result.get_asset_materialization_events()}


def test_objects_sync_parents_first_with_audit_metadata_and_passing_checks(world: World) -> None:
    result = run(world, OBJECTS)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    meta = materialized(result)
    assert set(meta) == set(OBJECTS)
    usage = meta["salesforce/Usage__c"]
    assert usage["rows_created"].value > 0
    assert usage["product_usage/mapping_hash"].value
    assert "usage_events" in usage["product_usage/sql"].value
    assert usage["rows_rejected"].value >= 1  # the planted usage row of an unknown contract, and the bad keys
    codes = {r.data["code"] for r in usage["rejects"].records}
    assert codes, "the rejects preview names each reject's reason"
    order = [e.asset_key.to_user_string() for e in result.get_asset_materialization_events()]
    assert order.index("salesforce/Account") < order.index("salesforce/Contract") < order.index("salesforce/Usage__c")

    checks = checks_of(result)
    for obj in OBJECTS:
        assert checks[f"{obj}:reconciliation"].passed, checks[f"{obj}:reconciliation"].metadata
    for obj in ("salesforce/Contract", "salesforce/Usage__c", "salesforce/Cost__c"):
        assert checks[f"{obj}:no_orphans"].passed
    # The planted usage row for an unknown contract and the duplicate usage key are reported, not hidden.
    assert not checks["salesforce/Usage__c:source_parents_exist"].passed
    assert checks["salesforce/Usage__c:source_parents_exist"].severity == dg.AssetCheckSeverity.WARN
    assert not checks["salesforce/Usage__c:no_duplicate_external_ids"].passed


def test_reconciliation_and_orphan_checks_fail_when_salesforce_drifts(world: World) -> None:
    sf = world.emulator.salesforce()
    # A Cost__c created in Salesforce by hand: no Contract, and a key the source does not have.
    sf.Cost__c.create({"CostKey__c": "HAND-MADE-1", "CostDate__c": "2025-06-01", "Amount__c": 1})
    # A Usage__c deleted by hand: the sync believes it is there (its row hash is stored), so only the check sees it.
    victim = sf.query("SELECT Id, UsageKey__c FROM Usage__c LIMIT 1")["records"][0]
    sf.Usage__c.delete(victim["Id"])

    result = run(world, ["salesforce/Usage__c", "salesforce/Cost__c"])
    checks = checks_of(result)
    assert not checks["salesforce/Cost__c:no_orphans"].passed
    assert not checks["salesforce/Cost__c:reconciliation"].passed
    assert "HAND-MADE-1" in str(checks["salesforce/Cost__c:reconciliation"].metadata)
    usage = checks["salesforce/Usage__c:reconciliation"]
    assert not usage.passed
    assert victim["UsageKey__c"] in str(usage.metadata)
    assert not result.success  # blocking checks failed with severity ERROR


def test_analytics_reach_contract_fields(world: World) -> None:
    result = run(world, ["usage_trends", "salesforce/Contract_usage_signals", "contract_profitability",
                         "salesforce/Contract_profitability"], checks=False)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    meta = materialized(result)
    assert meta["usage_trends"]["top_movers_chart"].value.count("data:image/png;base64,") == 1
    assert meta["salesforce/Contract_usage_signals"]["contracts_updated"].value > 0
    sf = world.emulator.salesforce()
    rows = sf.query("SELECT ContractKey__c, UsageTrend__c, GrossMargin__c FROM Contract WHERE UsageTrend__c != null")
    assert rows["totalSize"] > 0
    assert {r["UsageTrend__c"] for r in rows["records"]} <= {"Growing", "Stable", "Declining", "Churn Risk"}


def test_a_failed_login_fails_the_materialization(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESFORCE_ACCESS_TOKEN", "not-a-valid-session")
    result = run(world, ["salesforce/Account"], checks=False)
    assert not result.success
    assert materialized(result) == {}
