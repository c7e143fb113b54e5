"""The code location loads from the project's mappings and has the asset graph auditors rely on."""

from __future__ import annotations

import warnings
from datetime import timedelta

import dagster as dg
import pytest

from passwork_assets.defs.object_assets import pool_for


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    from passwork_assets.definitions import defs as build

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build()


def key(text: str) -> dg.AssetKey:
    return dg.AssetKey.from_user_string(text)


def parents(defs: dg.Definitions, asset: str) -> set[str]:
    graph = defs.resolve_asset_graph()
    return {k.to_user_string() for k in graph.get(key(asset)).parent_keys}


def test_one_asset_per_salesforce_object_with_tables_and_parents_upstream(defs: dg.Definitions) -> None:
    assert parents(defs, "salesforce/Account") == {"product/customers", "erp/business_partners"}
    assert parents(defs, "salesforce/Contract") == {"product/contracts", "erp/contracts", "salesforce/Account"}
    assert parents(defs, "salesforce/Usage__c") == {"product/usage_events", "salesforce/Contract"}
    assert parents(defs, "salesforce/Cost__c") == {"erp/cost_lines", "salesforce/Contract"}


def test_source_tables_are_observable(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    for table in ("product/usage_events", "product/customers", "erp/cost_lines", "erp/business_partners"):
        node = graph.get(key(table))
        assert node.is_observable and not node.is_materializable, table


def test_analytics_push_downstream_without_cycles(defs: dg.Definitions) -> None:
    assert parents(defs, "usage_trends") == {"product/usage_events"}
    assert parents(defs, "salesforce/Contract_usage_signals") == {"usage_trends", "salesforce/Contract"}
    assert parents(defs, "salesforce/Contract_profitability") == {"contract_profitability", "salesforce/Contract"}
    graph = defs.resolve_asset_graph()
    # Topological order exists only without cycles; the push comes after the Contract sync.
    order = [k.to_user_string() for level in graph.toposorted_asset_keys_by_level for k in level]
    assert order.index("salesforce/Contract") < order.index("salesforce/Contract_usage_signals")


def test_kinds_groups_owners_and_descriptions(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    usage = graph.get(key("salesforce/Usage__c"))
    assert usage.group_name == "salesforce"
    assert "salesforce" in usage.kinds
    assert usage.owners == ["team:revops"]
    assert "product_usage" in (usage.description or "")
    assert graph.get(key("usage_trends")).group_name == "analytics"


def test_freshness_policies(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    for asset in ("salesforce/Usage__c", "usage_trends"):
        policy = graph.get(key(asset)).freshness_policy
        assert isinstance(policy, dg.FreshnessPolicy), asset
    usage_policy = graph.get(key("salesforce/Usage__c")).freshness_policy
    assert usage_policy.fail_window.to_timedelta() == timedelta(minutes=1440)
    assert graph.get(key("salesforce/Cost__c")).freshness_policy is None


def test_checks_and_blocking(defs: dg.Definitions) -> None:
    graph = defs.resolve_asset_graph()
    checks = {k.to_user_string() for k in graph.asset_check_keys}
    for obj in ("Usage__c", "Cost__c", "Contract"):
        for name in ("no_orphans", "source_parents_exist", "no_duplicate_external_ids", "rejects_below_threshold",
                     "reconciliation"):
            assert f"salesforce/{obj}:{name}" in checks
    assert "salesforce/Account:no_orphans" not in checks  # Account has no parent
    assert "salesforce/Account:reconciliation" in checks
    blocking = {spec.key.to_user_string(): spec.blocking for ad in defs.asset_checks or []
                for spec in ad.check_specs}
    assert blocking["salesforce/Usage__c:no_orphans"] is True
    assert blocking["salesforce/Usage__c:reconciliation"] is True
    assert blocking["salesforce/Usage__c:source_parents_exist"] is False


def test_each_object_has_its_own_pool(defs: dg.Definitions) -> None:
    pools = {}
    for assets_def in defs.assets or []:
        if isinstance(assets_def, dg.AssetsDefinition) and assets_def.is_executable:
            for k in assets_def.keys:
                pools[k.to_user_string()] = assets_def.op.pool
    assert pools["salesforce/Usage__c"] == pool_for("Usage__c")
    assert pools["salesforce/Cost__c"] == pool_for("Cost__c")
    assert pools["salesforce/Usage__c"] != pools["salesforce/Cost__c"]


def test_sensors_and_schedule(defs: dg.Definitions) -> None:
    sensors = {s.name: s for s in defs.sensors or []}
    assert set(sensors) == {f"{flow}_new_rows" for flow in (
        "product_accounts", "product_contracts", "product_usage", "erp_partners", "erp_contracts", "erp_costs")}
    schedules = {s.name: s for s in defs.schedules or []}
    schedule = schedules["daily_reconciliation_schedule"]
    assert schedule.cron_schedule == "0 3 * * *"
    job = defs.resolve_job_def("daily_reconciliation")
    selected = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert selected == {"salesforce/Account", "salesforce/Contract", "salesforce/Usage__c", "salesforce/Cost__c"}
    unresolved = next(j for j in defs.jobs or [] if j.name == "daily_reconciliation")
    checks = {k.to_user_string() for k in unresolved.selection.resolve_checks(defs.resolve_asset_graph())}
    assert "salesforce/Usage__c:reconciliation" in checks


def test_unknown_key_in_component_yaml_fails_loudly(tmp_path) -> None:
    from passwork_assets.defs.component import PassworkComponent

    with pytest.raises(Exception, match="mapings_dir"):
        PassworkComponent.model_validate({"mapings_dir": "mappings"})
