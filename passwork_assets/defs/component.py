"""`PassworkComponent`: the mapping folder becomes the asset graph, its checks, sensors and schedule.

Declared in `passwork_assets/defs/passwork/defs.yaml`. `dg.Model` forbids unknown keys, so a typo in the YAML
fails at load with the key's name. Adding a mapping file adds (or extends) an asset with no Python change.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dagster as dg

from passwork_assets.analytics.usage_trends import TrendThresholds
from passwork_assets.defs.analytics_assets import AnalyticsQuery, AnalyticsSettings, build_analytics_assets
from passwork_assets.defs.asset_graph import ObjectGraphSettings, object_key, object_spec, tables_of
from passwork_assets.defs.checks import CheckSettings, build_object_checks
from passwork_assets.defs.object_assets import build_object_asset
from passwork_assets.defs.resources import PassworkSyncResource, SalesforceResource
from passwork_assets.defs.sensors import build_flow_sensor
from passwork_assets.defs.source_assets import build_source_asset
from passwork_assets.mapping.loader import load_mappings
from passwork_assets.mapping.models import MappingSet


class Freshness(dg.Model):
    """A time-window freshness policy: warn after `warn_minutes`, fail after `fail_minutes` without an update."""

    fail_minutes: int
    warn_minutes: int | None = None

    def policy(self) -> dg.FreshnessPolicy:
        warn = timedelta(minutes=self.warn_minutes) if self.warn_minutes else None
        return dg.FreshnessPolicy.time_window(fail_window=timedelta(minutes=self.fail_minutes), warn_window=warn)


class Query(dg.Model):
    """A read-only SELECT on one of the connections of `mappings/connections.yaml`."""

    connection: str
    sql: str


class Analytics(dg.Model):
    """Inputs and thresholds of the usage trends and the contract profitability."""

    usage: Query
    prices: Query
    contracts: Query
    costs: Query
    deps: list[str]
    """Source-table assets the profitability reads (`product/usage_events`, ...)."""
    usage_deps: list[str]
    growing_min: float = 0.10
    declining_max: float = -0.05
    churn_risk_max: float = -0.30
    signal_values: dict[str, str] = {
        "growing": "Growing", "stable": "Stable", "declining": "Declining", "churn_risk": "Churn Risk",
    }
    freshness: Freshness | None = None
    group_name: str = "analytics"
    top_movers: int = 10


class PassworkComponent(dg.Component, dg.Model, dg.Resolvable):
    """Salesforce objects synced from the flows in `mappings_dir`, with checks, sensors and a daily reconciliation."""

    mappings_dir: str = "mappings"
    """The mapping folder, relative to the project root unless absolute."""
    group_name: str = "salesforce"
    source_group_name: str = "sources"
    owners: list[str] = []
    freshness: dict[str, Freshness] = {}
    """Freshness policy per Salesforce object (e.g. Usage__c)."""
    max_reject_rate: float = 0.01
    sensor_interval_seconds: int = 30
    sensors_running_by_default: bool = True
    reconciliation_cron: str = "0 3 * * *"
    reconciliation_timezone: str = "UTC"
    analytics: Analytics | None = None

    def mappings_path(self, context: dg.ComponentLoadContext) -> Path:
        path = Path(self.mappings_dir)
        return path if path.is_absolute() else context.project_root / path

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        directory = self.mappings_path(context)
        mappings = load_mappings(directory)
        return build_passwork_defs(self, mappings, directory)


def _ancestors(mappings: MappingSet, object_name: str) -> list[str]:
    found: list[str] = []
    pending = [object_name]
    while pending:
        for parent in sorted(mappings.parent_objects(pending.pop())):
            if parent not in found:
                found.append(parent)
                pending.append(parent)
    return found


def build_passwork_defs(component: PassworkComponent, mappings: MappingSet, directory: Path) -> dg.Definitions:
    """Everything the component contributes, from a loaded mapping set."""
    owners = list(component.owners)
    graph = ObjectGraphSettings(
        group_name=component.group_name,
        owners=tuple(owners),
        freshness={name: f.policy() for name, f in component.freshness.items()},
    )
    assets: list[dg.AssetsDefinition] = []
    checks: list[dg.AssetChecksDefinition] = []
    for table in tables_of(mappings.flows):
        assets.append(build_source_asset(table, mappings.connections[table.connection],
                                         group_name=component.source_group_name))
    objects = mappings.object_order()
    for name in objects:
        flows = mappings.flows_for_object(name)
        if not flows:
            continue
        spec = object_spec(name, flows, mappings.parent_objects(name), graph)
        assets.append(build_object_asset(spec, name, directory))
        checks.append(build_object_checks(name, mappings, CheckSettings(max_reject_rate=component.max_reject_rate)))

    sensors = []
    for flow in mappings.flows.values():
        if flow.source.cursor:
            keys = [object_key(flow.target.object)] + [object_key(p) for p in _ancestors(mappings, flow.target.object)]
            sensors.append(build_flow_sensor(flow, mappings.connections[flow.source.connection], keys,
                                             interval_s=component.sensor_interval_seconds,
                                             default_running=component.sensors_running_by_default))

    if component.analytics is not None:
        a = component.analytics
        assets.extend(build_analytics_assets(str(directory), AnalyticsSettings(
            usage=AnalyticsQuery(a.usage.connection, a.usage.sql),
            prices=AnalyticsQuery(a.prices.connection, a.prices.sql),
            contracts=AnalyticsQuery(a.contracts.connection, a.contracts.sql),
            costs=AnalyticsQuery(a.costs.connection, a.costs.sql),
            thresholds=TrendThresholds(growing_min=a.growing_min, declining_max=a.declining_max,
                                       churn_risk_max=a.churn_risk_max),
            signal_values=dict(a.signal_values),
            deps=tuple(dg.AssetKey.from_user_string(d) for d in a.deps),
            usage_deps=tuple(dg.AssetKey.from_user_string(d) for d in a.usage_deps),
            trends_freshness=a.freshness.policy() if a.freshness else None,
            group_name=a.group_name,
            owners=tuple(owners),
            top_movers=a.top_movers,
        )))

    object_keys = [object_key(n) for n in objects if mappings.flows_for_object(n)]
    salesforce_objects = dg.AssetSelection.assets(*object_keys)
    reconciliation_job = dg.define_asset_job(
        "daily_reconciliation",
        selection=salesforce_objects | dg.AssetSelection.checks_for_assets(*object_keys),
        description="Every Salesforce object synced parents first, then every check, reconciliation included.",
        tags={"passwork/trigger": "schedule"},
    )
    schedule = dg.ScheduleDefinition(
        name="daily_reconciliation_schedule",
        job=reconciliation_job,
        cron_schedule=component.reconciliation_cron,
        execution_timezone=component.reconciliation_timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        sensors=sensors,
        schedules=[schedule],
        jobs=[reconciliation_job],
        resources={
            "salesforce": SalesforceResource.from_environment_variables(),
            "passwork_sync": PassworkSyncResource.from_environment_variables(),
        },
    )
