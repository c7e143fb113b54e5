"""Row counts and cursor positions of a flow's source, read with the flow's own extraction statement.

The observation of a source table and the sensor of a flow both ask the same question ("how many rows, and
how far does the cursor go, past this value?"), and both must ask it of exactly the rows the sync would
extract, so the flow's extraction statement (built and checked in `passwork_assets.source.query`) is wrapped
rather than rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from passwork_assets.mapping.models import FlowMapping
from passwork_assets.source.connect import open_connection
from passwork_assets.mapping.models import ConnectionConfig
from passwork_assets.source.query import build_extract_query


@dataclass(frozen=True)
class SourceStats:
    """How many rows a flow would extract and the largest cursor value among them (as PostgreSQL prints it)."""

    rows: int
    max_cursor: str | None


def stats_sql(flow: FlowMapping, *, after: str | None = None) -> tuple[str, dict[str, Any]]:
    """The statement (and parameters) counting the flow's rows past `after` and their largest cursor value."""
    query = build_extract_query(flow, cursor_value=after)
    cursor = flow.source.cursor
    # The cursor is printed by PostgreSQL (`::text`) so that the value goes back into the next comparison at
    # full precision (a timestamptz keeps its microseconds and offset) whatever the column's type.
    top = f'max(q."{cursor}")::text' if cursor else "NULL::text"
    return f"SELECT count(*), {top} FROM ({query.sql}) AS q", query.params


def read_stats(connection: ConnectionConfig, flow: FlowMapping, *, after: str | None = None) -> SourceStats:
    """Count the flow's rows past `after` (all rows when None) in its source database."""
    sql, params = stats_sql(flow, after=after)
    with open_connection(connection) as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None  # an aggregate without GROUP BY always returns one row
    return SourceStats(rows=int(row[0]), max_cursor=row[1])
