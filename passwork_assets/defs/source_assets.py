"""Source tables as observable assets: each observation reports the row count and how far each cursor goes.

The data version is derived from those figures, so the UI marks the Salesforce objects downstream as stale
when a table grew or a cursor moved.
"""


import dagster as dg
from psycopg import sql

from passwork_assets.defs.asset_graph import SourceTable
from passwork_assets.defs.source_stats import read_stats
from passwork_assets.mapping.models import ConnectionConfig
from passwork_assets.source.connect import open_connection


def table_row_count(connection: ConnectionConfig, table: str) -> int:
    """`SELECT count(*)` of a table, its name quoted part by part."""
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*table.split(".")))
    with open_connection(connection) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def build_source_asset(table: SourceTable, connection: ConnectionConfig, *, group_name: str) -> dg.AssetsDefinition:
    """The observable asset of one source table."""
    readers = ", ".join(f.flow for f in table.flows)

    @dg.observable_source_asset(
        key=table.key,
        description=f"Table {table.table} of the {table.connection} database, read by {readers}.",
        group_name=group_name,
        tags={"dagster/kind/postgres": ""},
        metadata={"passwork/connection": table.connection, "passwork/table": table.table},
    )
    def _observe() -> dg.ObserveResult:
        rows = table_row_count(connection, table.table)
        metadata: dict[str, object] = {"dagster/row_count": dg.MetadataValue.int(rows)}
        version = [str(rows)]
        for flow in table.flows:
            if flow.source.cursor:
                top = read_stats(connection, flow).max_cursor
                metadata[f"max_{flow.source.cursor} ({flow.flow})"] = dg.MetadataValue.text(top or "")
                version.append(top or "")
        return dg.ObserveResult(metadata=metadata, data_version=dg.DataVersion("|".join(version)))

    return _observe
