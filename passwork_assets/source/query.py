"""The SQL a flow runs against its source database, built and checked with sqlglot.

Two modes (DESIGN.md section 4): table + columns, where Passwork writes the whole statement from quoted
identifiers, and custom SQL, where the user's statement must be one read-only SELECT. Either way the cursor
predicate is added by Passwork as a bound parameter and the rows come back in a deterministic order.
The static check is the first line of defence; the extraction also runs in a READ ONLY transaction with a
statement timeout (see `extract.py`), so a function this list does not know still cannot write.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

if TYPE_CHECKING:
    from passwork_assets.mapping.models import FlowMapping, SourceSpec

DIALECT = "postgres"

# Functions that write, signal other sessions, change settings, take locks or touch the server's files.
# Matched on the lowercase name, with or without a schema (pg_catalog.pg_read_file is the same function).
_FORBIDDEN_FUNCTIONS = frozenset(
    {
        "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "pg_ls_logdir", "pg_ls_waldir",
        "pg_ls_tmpdir", "pg_ls_archive_statusdir", "pg_ls_logicalsnapdir", "pg_ls_logicalmapdir",
        "pg_ls_replslotdir",
        "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile",
        "pg_switch_wal", "pg_create_restore_point", "pg_promote", "pg_logical_emit_message",
        "set_config", "nextval", "setval",
        # These run a query given as a string, which the static check cannot see.
        "query_to_xml", "query_to_xml_and_xmlschema", "query_to_xmlschema", "cursor_to_xml",
    }
)
_FORBIDDEN_PREFIXES = ("lo_", "dblink", "pg_advisory", "pg_file_", "pg_create_", "pg_drop_", "pg_replication_")

# Statement kinds that are never a plain read, reported by name in the rejection.
_WRITING_NODES: dict[type[exp.Expression], str] = {
    exp.Insert: "INSERT",
    exp.Update: "UPDATE",
    exp.Delete: "DELETE",
    exp.Merge: "MERGE",
    exp.Create: "CREATE",
    exp.Drop: "DROP",
    exp.Alter: "ALTER",
    exp.Copy: "COPY",
    exp.TruncateTable: "TRUNCATE",
    exp.Command: "a command",
}


class SqlRejected(ValueError):
    """The custom SQL of a flow is not one read-only SELECT; the message says what and where."""


@dataclass(frozen=True)
class ExtractQuery:
    """A statement and its bound parameters.

    `sql` uses psycopg's `%(name)s` placeholders and every literal `%` is doubled, so it must always be
    executed with `params` (even when empty): `cursor.execute(q.sql, q.params)` or `cursor.copy(...)`.
    """

    sql: str
    params: dict[str, Any] = field(default_factory=dict)


def _line_col(sql: str, offset: int) -> str:
    before = sql[:offset]
    line = before.count("\n") + 1
    return f"line {line}, column {offset - (before.rfind(chr(10)) + 1) + 1}"


def _position(sql: str, node: exp.Expression, keyword: str | None = None) -> str:
    """`line L, column C` where a node starts.

    sqlglot records positions on identifiers, literals and functions, not on clauses, so the earliest
    position inside the node is taken, moved back to the clause's own `keyword` (e.g. DELETE) if given.
    """
    starts = [n.meta["start"] for n in node.walk() if "start" in (n.meta or {})]
    parent = node.parent
    while not starts and parent is not None:
        if "start" in (parent.meta or {}):
            starts = [parent.meta["start"]]
        parent = parent.parent
    if not starts:
        return "the statement"
    offset = min(starts)
    if keyword:
        before = [t.start for t in _tokens(sql) if t.text.upper() == keyword and t.start <= offset]
        offset = before[-1] if before else offset
    return _line_col(sql, offset)


def _tokens(sql: str) -> list[Token]:
    return sqlglot.tokenize(sql, read=DIALECT)


def _function_name(func: exp.Func) -> str:
    if isinstance(func, exp.Anonymous):
        return func.name.lower()
    return func.sql_name().lower()


def _is_forbidden_function(name: str) -> bool:
    return name in _FORBIDDEN_FUNCTIONS or name.startswith(_FORBIDDEN_PREFIXES)


def _lock_positions(sql: str) -> list[str]:
    """Where each locking clause (FOR UPDATE / SHARE / NO KEY UPDATE / KEY SHARE) starts.

    sqlglot keeps no position on its Lock node, so the tokens are scanned for FOR followed by a lock word.
    """
    tokens = _tokens(sql)
    found = []
    for current, following in zip(tokens, tokens[1:]):
        if current.token_type == TokenType.FOR and following.text.upper() in {"UPDATE", "SHARE", "NO", "KEY"}:
            found.append(_line_col(sql, current.start))
    return found


def _second_statement(sql: str) -> str:
    tokens = _tokens(sql)
    for current, following in zip(tokens, tokens[1:]):
        if current.token_type == TokenType.SEMICOLON and following.token_type != TokenType.SEMICOLON:
            return _line_col(sql, following.start)
    return "the statement"


def _parse(sql: str) -> list[exp.Expression | None]:
    try:
        return sqlglot.parse(sql, read=DIALECT)
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" at line {first.get('line')}, column {first.get('col')}" if first.get("line") else ""
        reason = first.get("description") or str(exc)
        raise SqlRejected(f"the SQL could not be parsed{where}: {reason}") from None
    except TokenError as exc:
        raise SqlRejected(f"the SQL could not be read: {exc}") from None


def check_read_only_sql(sql: str) -> exp.Query:
    """Check that `sql` is exactly one read-only SELECT and return its sqlglot tree.

    Allowed: SELECT, WITH ... SELECT, UNION / INTERSECT / EXCEPT, and any function not known to
    write. Rejected with `SqlRejected` naming the problem and where it is: several statements, DDL/DML
    (also inside a WITH), SELECT INTO, locking clauses, functions that write, signal, lock or read the
    server's files, and bind placeholders (Passwork adds the only parameter, the cursor).
    """
    if not sql or not sql.strip():
        raise SqlRejected("the SQL is empty; write one SELECT statement")
    statements = [s for s in _parse(sql) if s is not None]
    if not statements:
        raise SqlRejected("the SQL holds no statement; write one SELECT statement")
    if len(statements) > 1:
        raise SqlRejected(
            f"the SQL holds {len(statements)} statements; write exactly one SELECT "
            f"(the second starts at {_second_statement(sql)})"
        )
    tree = statements[0]
    for node in tree.walk():
        for kind, label in _WRITING_NODES.items():
            if isinstance(node, kind):
                raise SqlRejected(
                    f"only a read-only SELECT is allowed, found {label} at {_position(sql, node, label)}"
                    if kind is not exp.Command
                    else f"only a read-only SELECT is allowed, found the command "
                    f"{str(node.this).upper()!r} at {_position(sql, node)}"
                )
    if not isinstance(tree, (exp.Select, exp.SetOperation)):
        raise SqlRejected(
            f"only a read-only SELECT is allowed, found a {tree.key.upper()} statement at {_position(sql, tree)}"
        )
    for select in tree.find_all(exp.Select):
        if select.args.get("into"):
            raise SqlRejected(
                f"SELECT INTO creates a table and is not allowed "
                f"(at {_position(sql, select.args['into'], 'INTO')}); remove the INTO clause"
            )
    if any(select.args.get("locks") for select in tree.find_all(exp.Select)):
        where = ", ".join(_lock_positions(sql)) or "the statement"
        raise SqlRejected(
            f"locking clauses (FOR UPDATE / FOR SHARE / FOR NO KEY UPDATE / FOR KEY SHARE) take row locks on "
            f"the source and are not allowed (at {where}); remove them"
        )
    for func in tree.find_all(exp.Func):
        name = _function_name(func)
        if _is_forbidden_function(name):
            raise SqlRejected(
                f"the function {name}() writes, takes locks, signals other sessions or touches the server's "
                f"files and is not allowed in a sync query (at {_position(sql, func)})"
            )
    for placeholder in tree.find_all(exp.Placeholder, exp.Parameter):
        raise SqlRejected(
            f"the SQL holds a parameter placeholder at {_position(sql, placeholder)}; custom SQL takes no "
            "parameters (Passwork adds the cursor condition itself)"
        )
    assert isinstance(tree, exp.Query)
    return tree


def _key_columns(spec: SourceSpec) -> list[str]:
    key: Any = getattr(spec, "key", None)
    if not key:
        return []
    return [key] if isinstance(key, str) else [str(k) for k in key]


def _quoted_table(name: str) -> exp.Table:
    """`schema.table` (or `table`) as quoted identifiers, spelled exactly as in the catalog."""
    parts = name.split(".")
    if len(parts) > 2 or not all(parts):
        raise SqlRejected(f"the table name {name!r} is not `table` or `schema.table`")
    if len(parts) == 1:
        return exp.table_(parts[0], quoted=True)
    return exp.table_(parts[1], db=parts[0], quoted=True)


def _source_select(spec: SourceSpec) -> tuple[exp.Query, list[str] | None, str | None]:
    """The flow's base SELECT, the column names it returns when known, and the alias its columns live under."""
    if spec.sql:
        user_query = check_read_only_sql(spec.sql)
        wrapped = exp.select(exp.Star()).from_(user_query.subquery("src", copy=True))
        return wrapped, None, "src"
    if not spec.table:
        raise SqlRejected("the source names neither a table nor SQL")
    columns = list(spec.columns or [])
    table = _quoted_table(spec.table)
    projection = [exp.column(c, quoted=True) for c in columns] or [exp.Star()]
    return exp.select(*projection).from_(table), columns or None, None


def build_extract_query(flow: FlowMapping, *, cursor_value: Any = None) -> ExtractQuery:
    """The statement that extracts a flow's rows, optionally only those past `cursor_value`.

    Table mode selects the listed columns as quoted identifiers; custom SQL mode wraps the checked query as
    a subquery. With a cursor value the predicate `cursor > %(cursor)s` is added with the value as a bound
    parameter, never pasted. Rows are ordered by the cursor, then the source key, then (table mode without
    either) every selected column, so two runs over the same data read the same order.
    """
    spec = flow.source
    query, columns, alias = _source_select(spec)

    def col(name: str) -> exp.Column:
        return exp.column(name, table=alias, quoted=True)

    order: list[str] = []
    if spec.cursor:
        order.append(spec.cursor)
    order += [k for k in _key_columns(spec) if k not in order]
    if not order and columns:
        order = columns
    if not order:
        raise SqlRejected(
            f"flow {flow.flow}: custom SQL needs a `cursor` or a `key` column so that rows are read in a "
            "deterministic order"
        )

    # A sentinel placeholder name that cannot occur in user SQL: every literal `%` is doubled after
    # rendering (psycopg would read `'50%'` as a placeholder), then the sentinel becomes `%(cursor)s`.
    sentinel = f"passwork_cursor_{uuid.uuid4().hex}"
    params: dict[str, Any] = {}
    if spec.cursor and cursor_value is not None:
        query = query.where(exp.GT(this=col(spec.cursor), expression=exp.Placeholder(this=sentinel)))
        params["cursor"] = cursor_value
    query = query.order_by(*[col(c) for c in order])
    rendered = query.sql(dialect=DIALECT).replace("%", "%%")
    rendered = rendered.replace(f"%%({sentinel})s", "%(cursor)s")
    return ExtractQuery(sql=rendered, params=params)
