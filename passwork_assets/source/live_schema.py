"""The live source schemas `passwork validate` checks mappings against, one connection per database."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import psycopg

from passwork_assets.mapping.models import ConnectionConfig
from passwork_assets.mapping.validate import SourceUnavailable
from passwork_assets.source.connect import SourceConnectionError, open_connection
from passwork_assets.source.query import ExtractQuery, SqlRejected
from passwork_assets.source.schema import query_columns, table_columns


class LiveSourceSchemas:
    """Answers a table's columns or a custom query's result columns, opening each connection once.

    Use as a context manager; `table` and `query` match `validate_mappings`' `schema_for` and
    `query_columns` callbacks.
    """

    def __init__(self, connections: dict[str, ConnectionConfig]) -> None:
        self.connections = connections
        self._stack = ExitStack()
        self._open: dict[str, psycopg.Connection] = {}

    def _conn(self, name: str) -> psycopg.Connection:
        if name not in self._open:
            try:
                self._open[name] = self._stack.enter_context(open_connection(self.connections[name]))
            except SourceConnectionError as exc:
                raise SourceUnavailable(str(exc)) from None
        return self._open[name]

    def table(self, connection: str, table: str) -> dict[str, str]:
        """Column name -> PostgreSQL type of `table` in the named connection."""
        return table_columns(self._conn(connection), table)

    def query(self, connection: str, sql: str) -> dict[str, str]:
        """Column name -> type name of the result of custom SQL (run with LIMIT 0, in a rolled-back read).

        A literal `%` is doubled because the probe runs with (empty) bound parameters."""
        conn = self._conn(connection)
        try:
            return {c.name: c.type_name for c in query_columns(conn, ExtractQuery(sql=sql.replace("%", "%%"), params={}))}
        except psycopg.Error as exc:
            raise SqlRejected(f"the source database rejects the SQL: {str(exc).strip()}") from None
        finally:
            conn.rollback()

    def __enter__(self) -> "LiveSourceSchemas":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()
