"""Source schemas read live for validation: one read-only connection per source, opened on first use."""

from __future__ import annotations

from contextlib import ExitStack
from types import TracebackType

import psycopg

from passwork_assets.mapping.issues import MappingError
from passwork_assets.mapping.issues import MappingIssue
from passwork_assets.mapping.models import ConnectionConfig
from passwork_assets.mapping.models import MappingSet
from passwork_assets.mapping.validate import SourceUnavailable, validate_mappings
from passwork_assets.salesforce.describe import DescribeProvider
from passwork_assets.source.connect import SourceConnectionError, open_connection
from passwork_assets.source.query import ExtractQuery, SqlRejected, check_read_only_sql
from passwork_assets.source.schema import query_columns, table_columns


class LiveSourceSchemas:
    """`table_columns` and `query_columns` for `validate_mappings`, against the real source databases.

    Use as a context manager; connections close on exit. A source that cannot be reached raises
    `SourceUnavailable` (the validation reports it once per connection and goes on with the others).
    """

    def __init__(self, connections: dict[str, ConnectionConfig]) -> None:
        self._configs = connections
        self._stack = ExitStack()
        self._open: dict[str, psycopg.Connection] = {}

    def __enter__(self) -> LiveSourceSchemas:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stack.close()

    def _conn(self, name: str) -> psycopg.Connection:
        if name not in self._open:
            try:
                conn = self._stack.enter_context(open_connection(self._configs[name]))
            except (SourceConnectionError, MappingError) as exc:
                raise SourceUnavailable(str(exc)) from None
            # Validation only reads the catalog; a read-only session makes that certain.
            conn.read_only = True
            conn.autocommit = True
            self._open[name] = conn
        return self._open[name]

    def table_columns(self, connection: str, table: str) -> dict[str, str]:
        """{column: type} of `table` in the source `connection`; raises source.schema.TableNotFound."""
        return table_columns(self._conn(connection), table)

    def query_columns(self, connection: str, sql: str) -> dict[str, str]:
        """{column: type} of the result of custom SQL (checked read-only first), read with LIMIT 0."""
        tree = check_read_only_sql(sql)
        probe = ExtractQuery(sql=tree.sql(dialect="postgres").replace("%", "%%"), params={})
        try:
            cols = query_columns(self._conn(connection), probe)
        except psycopg.Error as exc:
            raise SqlRejected(f"the SQL fails on the source: {str(exc).strip().splitlines()[0]}") from None
        return {c.name: c.type_name for c in cols}


def validate_live(mappings: MappingSet, *, describe: DescribeProvider) -> list[MappingIssue]:
    """`validate_mappings` against the live source databases of `mappings` and the given describe provider."""
    with LiveSourceSchemas(mappings.connections) as live:
        return validate_mappings(mappings, describe=describe, schema_for=live.table_columns, query_columns=live.query_columns)
