"""What a source table or query returns: column names and PostgreSQL types, read from the catalog."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import psycopg

from passwork_assets.source.query import ExtractQuery


class TableNotFound(LookupError):
    """The table is not in the database (or not visible to the connecting user); lists close names."""


@dataclass(frozen=True)
class ResultColumn:
    """One column of a query's result: its name, type OID, type name and, for numeric(p, s), p and s."""

    name: str
    type_oid: int
    type_name: str
    precision: int | None = None
    scale: int | None = None


_COLUMNS_SQL = """
SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND c.relname = %(table)s
  AND (n.nspname = %(schema)s OR (%(schema)s::text IS NULL AND n.nspname = ANY (current_schemas(false))))
  AND has_table_privilege(c.oid, 'SELECT')
ORDER BY array_position(current_schemas(false), n.nspname::name), a.attnum
"""

_TABLES_SQL = """
SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%%'
"""


def table_columns(conn: psycopg.Connection, table: str) -> dict[str, str]:
    """The columns of `table` (`schema.table`, or `table` found along the search path) -> PostgreSQL type.

    Types are spelled as PostgreSQL shows them (`numeric(12,2)`, `timestamp with time zone`). Raises
    `TableNotFound` naming the closest table names when the table does not exist or cannot be read.
    """
    schema, _, name = table.rpartition(".")
    rows = conn.execute(_COLUMNS_SQL, {"table": name, "schema": schema or None}).fetchall()
    if not rows:
        known = [f"{s}.{t}" for s, t in conn.execute(_TABLES_SQL).fetchall()]
        wanted = table if schema else f"public.{table}"
        close = difflib.get_close_matches(wanted, known, n=3, cutoff=0.5) or difflib.get_close_matches(
            name, [k.split(".", 1)[1] for k in known], n=3, cutoff=0.5
        )
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise TableNotFound(f"table {table} not found in the source database (or not readable){hint}")
    first_schema = rows[0][0]
    return {col: type_name for nsp, _, col, type_name in rows if nsp == first_schema}


def query_columns(conn: psycopg.Connection, query: ExtractQuery) -> list[ResultColumn]:
    """The result columns of `query`, found by running it with LIMIT 0 (PostgreSQL reads no rows for that)."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM ({query.sql}) AS passwork_probe LIMIT 0", query.params)
        assert cur.description is not None
        columns = []
        for col in cur.description:
            info = conn.adapters.types.get(col.type_code)
            columns.append(ResultColumn(name=col.name, type_oid=col.type_code,
                                        type_name=info.name if info else str(col.type_code),
                                        precision=col.precision, scale=col.scale))
        return columns
