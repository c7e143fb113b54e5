"""Analytics assets (usage trends, contract profitability) and the assets that push them to Contract fields.

The analytics read the source databases with read-only SQL from the component's YAML (so a different
schema needs no Python change), compute with Polars, and keep their result in the state database (schema
`passwork_analytics`) where the push assets and auditors read it. The push assets depend on the analytics
and on `salesforce/Contract` and only update Contracts that exist (by Id), so the graph has no cycle and an
analytics value never creates a Contract.
"""


from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
import polars as pl
import psycopg
from psycopg import sql

from passwork_assets.analytics.chart import bar_chart_png, markdown_image
from passwork_assets.analytics.profitability import contract_profitability, latest_profitability
from passwork_assets.analytics.usage_trends import TrendThresholds, latest_signals, top_movers, usage_trends
from passwork_assets.defs.asset_graph import object_key
from passwork_assets.defs.key_sets import salesforce_frame
from passwork_assets.defs.resources import PassworkSyncResource, SalesforceResource
from passwork_assets.mapping.loader import load_mappings
from passwork_assets.mapping.models import MappingSet
from passwork_assets.salesforce.loader import KEY_COLUMN, LoadOptions, load_records
from passwork_assets.source.connect import open_connection
from passwork_assets.source.query import ExtractQuery, check_read_only_sql

ANALYTICS_SCHEMA = "passwork_analytics"


@dataclass(frozen=True)
class AnalyticsQuery:
    """A read-only SELECT against one of the mapping's connections."""

    connection: str
    sql: str


@dataclass(frozen=True)
class AnalyticsSettings:
    """The analytics part of the component's YAML."""

    usage: AnalyticsQuery
    prices: AnalyticsQuery
    contracts: AnalyticsQuery
    costs: AnalyticsQuery
    thresholds: TrendThresholds
    signal_values: dict[str, str]
    """Signal -> UsageTrend__c picklist value."""
    deps: tuple[dg.AssetKey, ...]
    usage_deps: tuple[dg.AssetKey, ...]
    trends_freshness: dg.FreshnessPolicy | None
    group_name: str
    owners: tuple[str, ...]
    top_movers: int = 10


def read_frame(mappings: MappingSet, query: AnalyticsQuery) -> pl.DataFrame:
    """Run an analytics query (checked as one read-only SELECT) and return all of its rows."""
    from passwork_assets.source.extract import stream_frames

    check_read_only_sql(query.sql)
    if query.connection not in mappings.connections:
        raise ValueError(f"analytics query names connection {query.connection!r}; mappings/connections.yaml "
                         f"defines: {', '.join(sorted(mappings.connections))}")
    connection = mappings.connections[query.connection]
    with open_connection(connection) as conn:
        frames = list(stream_frames(conn, ExtractQuery(sql=query.sql.replace("%", "%%")),
                                    statement_timeout_s=connection.statement_timeout_s))
    return pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame()


def store_table(state_url: str, table: str, frame: pl.DataFrame) -> None:
    """Replace `passwork_analytics.<table>` with `frame` (one transaction: readers see old or new, never half)."""
    types = {pl.String: "text", pl.Date: "date", pl.Float64: "double precision", pl.Int64: "bigint",
             pl.UInt32: "bigint"}
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(types.get(dtype.base_type(), "text")))
        for name, dtype in frame.schema.items()
    )
    target = sql.Identifier(ANALYTICS_SCHEMA, table)
    with psycopg.connect(state_url) as conn, conn.transaction():
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(ANALYTICS_SCHEMA)))
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
        conn.execute(sql.SQL("CREATE TABLE {} ({})").format(target, columns))
        with conn.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(target)) as copy:
            for row in frame.iter_rows():
                copy.write_row(row)


def load_table(state_url: str, table: str) -> pl.DataFrame:
    """Read back a table written by `store_table`; a clear error when the analytics never ran."""
    with psycopg.connect(state_url) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (f"{ANALYTICS_SCHEMA}.{table}",)).fetchone()
        if not exists or exists[0] is None:
            raise dg.Failure(f"{ANALYTICS_SCHEMA}.{table} does not exist yet: materialize the analytics asset first")
        cur = conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(ANALYTICS_SCHEMA, table)))
        names = [d.name for d in cur.description or []]
        return pl.DataFrame(cur.fetchall(), schema=names, orient="row")


def movers_metadata(movers: pl.DataFrame, value: str, title: str) -> dict[str, dg.MetadataValue]:
    """Top movers as a table and as a bar chart image (same order) for the materialization page."""
    records = [dg.TableRecord({k: (str(v) if v is not None else "") for k, v in row.items()})
               for row in movers.iter_rows(named=True)]
    schema = dg.TableSchema(columns=[dg.TableColumn(c, "string") for c in movers.columns])
    values = [float(v or 0.0) for v in movers.get_column(value).to_list()] if movers.height else []
    return {
        "top_movers": dg.MetadataValue.table(records=records, schema=schema),
        "top_movers_chart": dg.MetadataValue.md(
            f"**{title}** (top to bottom as in the table)\n\n" + markdown_image(bar_chart_png(values), title)
        ),
    }


def _percent(expr: pl.Expr) -> pl.Expr:
    # Salesforce percent fields hold 12.5 for 12.5 %; the analytics keep fractions.
    return (expr * 100).round(2).cast(pl.String)


def push_to_contracts(salesforce: SalesforceResource, values: pl.DataFrame, fields: list[str]) -> dict[str, dg.MetadataValue]:
    """Update `fields` of the Contracts named by `contract_key` (by Id; missing Contracts are counted, not created).

    Raises `dg.Failure` when Salesforce rejects any row, with the first errors in the message.
    """
    client = salesforce.client()
    existing = salesforce_frame(client, "Contract", ["Id", "ContractKey__c"]).filter(pl.col("ContractKey__c") != "")
    joined = values.join(existing.rename({"ContractKey__c": "contract_key"}), on="contract_key", how="inner")
    not_in_salesforce = values.height - joined.height
    frame = joined.select(pl.col("Id"), *(pl.col(f).cast(pl.String) for f in fields),
                          pl.col("contract_key").alias(KEY_COLUMN))
    result = load_records(client, "Contract", frame, LoadOptions(operation="update", external_id=None),
                          client.describe("Contract"))
    failed = result.failed
    meta = {
        "contracts_updated": dg.MetadataValue.int(result.updated),
        "contracts_not_in_salesforce": dg.MetadataValue.int(not_in_salesforce),
        "rows_rejected": dg.MetadataValue.int(len(failed)),
        "bulk_job_ids": dg.MetadataValue.json(result.bulk_job_ids),
        "api_calls_used": dg.MetadataValue.int(client.usage.calls),
    }
    if failed:
        sample = "; ".join(f"{o.key}: {o.code} {o.message}" for o in failed[:5])
        raise dg.Failure(f"Salesforce refused {len(failed)} Contract updates: {sample}", metadata=meta)
    return meta


def build_analytics_assets(mappings_dir: str, settings: AnalyticsSettings) -> list[dg.AssetsDefinition]:
    """usage_trends, contract_profitability, and their pushes to Salesforce Contract fields."""
    owners = list(settings.owners)
    loaded: Callable[[], MappingSet] = lambda: load_mappings(mappings_dir)  # noqa: E731 - read at run time

    @dg.asset(
        key="usage_trends",
        deps=list(settings.usage_deps),
        group_name=settings.group_name,
        kinds={"polars", "postgres"},
        owners=owners,
        freshness_policy=settings.trends_freshness,
    )
    def usage_trends_asset(passwork_sync: PassworkSyncResource) -> dg.MaterializeResult:
        """Per contract and month: usage, month-over-month change, 3-month trend and a signal (growing / stable /
        declining / churn_risk, thresholds in defs.yaml). Stored in passwork_analytics.usage_trends."""
        trends = usage_trends(read_frame(loaded(), settings.usage), settings.thresholds)
        store_table(passwork_sync.state_url, "usage_trends", trends)
        latest = latest_signals(trends)
        counts = dict(latest.group_by("signal").len().iter_rows()) if latest.height else {}
        movers = top_movers(trends, settings.top_movers).select(
            "contract_key", "month", "usage", "mom_change", "trend_3m", "signal")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": dg.MetadataValue.int(trends.height),
            "contracts": dg.MetadataValue.int(latest.height),
            "month": dg.MetadataValue.text(str(latest["month"].max()) if latest.height else ""),
            "signals": dg.MetadataValue.json({s: int(counts.get(s, 0)) for s in
                                              ("growing", "stable", "declining", "churn_risk")}),
            **movers_metadata(movers, "mom_change", "Usage change vs previous month"),
        })

    @dg.asset(
        key="contract_profitability",
        deps=list(settings.deps),
        group_name=settings.group_name,
        kinds={"polars", "postgres"},
        owners=owners,
    )
    def profitability_asset(passwork_sync: PassworkSyncResource) -> dg.MaterializeResult:
        """Per contract and month: revenue (usage x unit prices + monthly fee), cost (ERP cost lines), margin and
        margin rate. Stored in passwork_analytics.contract_profitability."""
        mappings = loaded()
        result = contract_profitability(
            read_frame(mappings, settings.usage), read_frame(mappings, settings.prices),
            read_frame(mappings, settings.contracts), read_frame(mappings, settings.costs),
        )
        store_table(passwork_sync.state_url, "contract_profitability", result.monthly)
        latest = latest_profitability(result.monthly)
        ranked = latest.filter(pl.col("margin_rate").is_not_null()).sort("margin", "contract_key")
        worst = ranked.head(settings.top_movers).select("contract_key", "month", "revenue", "cost", "margin",
                                                       "margin_rate")
        unpriced_rows = int(result.unpriced["rows"].sum()) if result.unpriced.height else 0
        return dg.MaterializeResult(metadata={
            "dagster/row_count": dg.MetadataValue.int(result.monthly.height),
            "month": dg.MetadataValue.text(str(latest["month"].max()) if latest.height else ""),
            "revenue": dg.MetadataValue.float(round(float(latest["revenue"].sum() or 0), 2)),
            "cost": dg.MetadataValue.float(round(float(latest["cost"].sum() or 0), 2)),
            "negative_margin_contracts": dg.MetadataValue.int(latest.filter(pl.col("margin") < 0).height),
            "unpriced_usage_rows": dg.MetadataValue.int(unpriced_rows),
            **movers_metadata(worst, "margin", "Lowest margins in the last month"),
        })

    contract = object_key("Contract")

    @dg.asset(
        key=["salesforce", "Contract_usage_signals"],
        deps=["usage_trends", contract],
        group_name=settings.group_name,
        kinds={"salesforce"},
        owners=owners,
        pool="passwork_sync_Contract_analytics",
    )
    def usage_signals_push(salesforce: SalesforceResource, passwork_sync: PassworkSyncResource) -> dg.MaterializeResult:
        """Writes each Contract's last-month usage signal to UsageTrend__c, UsageMoM__c, UsageTrend3M__c and
        UsageLastMonth__c (update by Id; Contracts missing in Salesforce are counted, never created)."""
        latest = latest_signals(load_table(passwork_sync.state_url, "usage_trends"))
        unknown = sorted(set(latest["signal"].to_list()) - set(settings.signal_values)) if latest.height else []
        if unknown:
            raise dg.Failure(f"no UsageTrend__c value configured for signal(s) {', '.join(unknown)}")
        values = latest.select(
            pl.col("contract_key"),
            pl.col("signal").replace_strict(settings.signal_values).alias("UsageTrend__c"),
            _percent(pl.col("mom_change")).fill_null("#N/A").alias("UsageMoM__c"),
            _percent(pl.col("trend_3m")).fill_null("#N/A").alias("UsageTrend3M__c"),
            pl.col("usage").round(4).cast(pl.String).alias("UsageLastMonth__c"),
        )
        return dg.MaterializeResult(metadata=push_to_contracts(
            salesforce, values, ["UsageTrend__c", "UsageMoM__c", "UsageTrend3M__c", "UsageLastMonth__c"]))

    @dg.asset(
        key=["salesforce", "Contract_profitability"],
        deps=["contract_profitability", contract],
        group_name=settings.group_name,
        kinds={"salesforce"},
        owners=owners,
        pool="passwork_sync_Contract_analytics",
    )
    def profitability_push(salesforce: SalesforceResource, passwork_sync: PassworkSyncResource) -> dg.MaterializeResult:
        """Writes each Contract's last-month revenue, cost, gross margin and margin rate to Revenue__c,
        TotalCost__c, GrossMargin__c and MarginRate__c (update by Id; never creates a Contract)."""
        latest = latest_profitability(load_table(passwork_sync.state_url, "contract_profitability"))
        values = latest.select(
            pl.col("contract_key"),
            pl.col("revenue").round(2).cast(pl.String).alias("Revenue__c"),
            pl.col("cost").round(2).cast(pl.String).alias("TotalCost__c"),
            pl.col("margin").round(2).cast(pl.String).alias("GrossMargin__c"),
            _percent(pl.col("margin_rate")).fill_null("#N/A").alias("MarginRate__c"),
        )
        return dg.MaterializeResult(metadata=push_to_contracts(
            salesforce, values, ["Revenue__c", "TotalCost__c", "GrossMargin__c", "MarginRate__c"]))

    return [usage_trends_asset, profitability_asset, usage_signals_push, profitability_push]
