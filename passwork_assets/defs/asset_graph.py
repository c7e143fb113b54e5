"""The asset graph of the mappings: one spec per Salesforce object and per source table a flow reads.

One small translator turns the mapping set into `AssetSpec`s (keys, deps, kinds, group, owners, description,
metadata) so that a new mapping file adds or extends an asset without a Python change. Parent objects become
deps of their children, so Dagster itself runs parents before children.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import dagster as dg
from sqlglot import exp

from passwork_assets.mapping.models import FlowMapping
from passwork_assets.source.query import check_read_only_sql

SALESFORCE_PREFIX = "salesforce"


def object_key(object_name: str) -> dg.AssetKey:
    """`salesforce/<Object>`."""
    return dg.AssetKey([SALESFORCE_PREFIX, object_name])


def table_key(connection: str, table: str) -> dg.AssetKey:
    """`<connection>/<table>`, the schema left out (`public.usage_events` -> `product/usage_events`)."""
    return dg.AssetKey([connection, table.split(".")[-1]])


def source_tables(flow: FlowMapping) -> list[str]:
    """The tables a flow reads: its table, or every table its custom SQL names (CTE names excluded)."""
    if flow.source.table is not None:
        return [flow.source.table]
    assert flow.source.sql is not None
    query = check_read_only_sql(flow.source.sql)
    ctes = {cte.alias_or_name for cte in query.find_all(exp.CTE)}
    tables: list[str] = []
    for table in query.find_all(exp.Table):
        name = ".".join(part for part in (table.db, table.name) if part)
        if table.name not in ctes and name not in tables:
            tables.append(name)
    return sorted(tables)


def flow_table_keys(flow: FlowMapping) -> list[dg.AssetKey]:
    """The source-table assets a flow depends on."""
    return [table_key(flow.source.connection, t) for t in source_tables(flow)]


@dataclass(frozen=True)
class SourceTable:
    """One source table and the flows that read it."""

    key: dg.AssetKey
    connection: str
    table: str
    flows: tuple[FlowMapping, ...]


def tables_of(flows: Mapping[str, FlowMapping]) -> list[SourceTable]:
    """Every source table read by any flow, with its readers."""
    found: dict[dg.AssetKey, tuple[str, str, list[FlowMapping]]] = {}
    for flow in flows.values():
        for table in source_tables(flow):
            key = table_key(flow.source.connection, table)
            found.setdefault(key, (flow.source.connection, table, []))[2].append(flow)
    return [SourceTable(key, conn, table, tuple(readers)) for key, (conn, table, readers) in sorted(found.items())]


@dataclass(frozen=True)
class ObjectGraphSettings:
    """Presentation of the object assets, from the component's YAML."""

    group_name: str = "salesforce"
    owners: tuple[str, ...] = ()
    freshness: Mapping[str, dg.FreshnessPolicy] = field(default_factory=dict)


def object_spec(
    object_name: str,
    flows: list[FlowMapping],
    parents: set[str],
    settings: ObjectGraphSettings,
) -> dg.AssetSpec:
    """The spec of `salesforce/<object_name>`, fed by `flows`, depending on its tables and parent objects."""
    deps: list[dg.AssetKey] = []
    for flow in flows:
        deps.extend(k for k in flow_table_keys(flow) if k not in deps)
    deps.extend(object_key(p) for p in sorted(parents))
    lines = [
        f"Salesforce {object_name}, upserted by External ID from {len(flows)} flow(s); parents first "
        "(the parent objects are upstream assets), only changed rows are sent, and every row is either written "
        "or kept as a reject with its reason.",
        "",
    ]
    for flow in flows:
        source = flow.source.table or "custom SQL"
        lines.append(
            f"- `{flow.flow}`: {flow.source.connection} {source} -> {object_name}.{flow.target.external_id}"
            + (f" ({flow.description})" if flow.description else "")
        )
    return dg.AssetSpec(
        key=object_key(object_name),
        deps=deps,
        description="\n".join(lines),
        group_name=settings.group_name,
        kinds={"salesforce", "polars"},
        owners=list(settings.owners),
        tags={"passwork/object": object_name},
        metadata={
            "passwork/flows": dg.MetadataValue.json([f.flow for f in flows]),
            "passwork/mapping_files": dg.MetadataValue.json([str(f.path) for f in flows]),
            "passwork/external_ids": dg.MetadataValue.json(sorted({f.target.external_id for f in flows})),
        },
        freshness_policy=settings.freshness.get(object_name),
    )
