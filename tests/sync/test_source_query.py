"""Read-only enforcement of custom SQL and the extraction statement built around it."""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
import pytest

from passwork_assets.source.query import ExtractQuery, SqlRejected, build_extract_query, check_read_only_sql


@dataclass
class _Source:
    table: str | None = None
    columns: list[str] = field(default_factory=list)
    sql: str | None = None
    cursor: str | None = None
    key: str | list[str] | None = None
    connection: str = "product"


@dataclass
class _Flow:
    source: _Source
    flow: str = "product_usage"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id, name FROM public.customers",
        "with recent as (select * from usage where d > now() - interval '1 day') select * from recent",
        "SELECT a FROM t UNION ALL SELECT b FROM u",
        "SELECT a FROM t EXCEPT SELECT b FROM u",
        "select txid_current(), pg_current_xact_id()",
        "select name from t where name like '50%' order by 1 limit 10;",
        "select coalesce(x, 'lo_import') from t",
    ],
)
def test_read_only_selects_pass(sql: str) -> None:
    assert check_read_only_sql(sql) is not None


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("select 1; select 2", "2 statements"),
        ("select 1;\n   delete from t", "line 2, column 4"),
        ("delete from t", "found DELETE at line 1, column 1"),
        ("update t set a = 1", "found UPDATE"),
        ("insert into t values (1)", "found INSERT"),
        ("create table x (a int)", "found CREATE"),
        ("drop table t", "found DROP"),
        ("truncate t", "TRUNCATE"),
        ("copy t to stdout", "found COPY"),
        ("with d as (delete from t returning *) select * from d", "found DELETE at line 1, column 12"),
        ("select * into backup from t", "SELECT INTO"),
        ("select * from t for update", "locking clauses"),
        ("select * from t\nfor share", "line 2, column 1"),
        ("select * from t for no key update", "locking clauses"),
        ("select * from t for key share", "locking clauses"),
        ("select pg_read_file('/etc/passwd')", "pg_read_file()"),
        ("select pg_catalog.pg_read_binary_file('x')", "pg_read_binary_file()"),
        ("select * from pg_ls_dir('.')", "pg_ls_dir()"),
        ("select pg_stat_file('x')", "pg_stat_file()"),
        ("select lo_import('/etc/passwd')", "lo_import()"),
        ("select lo_export(1, '/tmp/x')", "lo_export()"),
        ("select lo_get(1)", "lo_get()"),
        ("select dblink_exec('conn', 'delete from t')", "dblink_exec()"),
        ("select * from dblink('c', 'select 1') as t(a int)", "dblink()"),
        ("select pg_terminate_backend(1)", "pg_terminate_backend()"),
        ("select pg_cancel_backend(1)", "pg_cancel_backend()"),
        ("select set_config('search_path', 'x', false)", "set_config()"),
        ("select pg_reload_conf()", "pg_reload_conf()"),
        ("select nextval('s')", "nextval()"),
        ("select setval('s', 1)", "setval()"),
        ("select pg_advisory_lock(1)", "pg_advisory_lock()"),
        ("select pg_advisory_xact_lock_shared(1)", "pg_advisory_xact_lock_shared()"),
        ("select a from t where id = %(id)s", "parameter placeholder"),
        ("select a frm t", "could not be parsed at line 1"),
        ("", "empty"),
        ("explain analyze delete from t", "EXPLAIN"),
        ("values (1)", "VALUES"),
    ],
)
def test_writing_or_unsafe_sql_is_rejected_with_where(sql: str, expected: str) -> None:
    with pytest.raises(SqlRejected) as info:
        check_read_only_sql(sql)
    assert expected in str(info.value)


def test_function_position_points_at_the_call() -> None:
    with pytest.raises(SqlRejected, match=r"nextval\(\) .* \(at line 2, column 3\)"):
        check_read_only_sql("select id,\n  nextval('s') from t")


def test_table_mode_quotes_identifiers_and_orders_by_cursor_then_key() -> None:
    flow = _Flow(_Source(table="public.UsageEvents", columns=["id", "contract no", "updated_at"],
                         cursor="updated_at", key="id"))
    q = build_extract_query(flow)
    assert q == ExtractQuery(
        'SELECT "id", "contract no", "updated_at" FROM "public"."UsageEvents" ORDER BY "updated_at", "id"', {}
    )
    q = build_extract_query(flow, cursor_value="2024-05-01 00:00:00+00")
    assert q.sql == (
        'SELECT "id", "contract no", "updated_at" FROM "public"."UsageEvents" '
        'WHERE "updated_at" > %(cursor)s ORDER BY "updated_at", "id"'
    )
    assert q.params == {"cursor": "2024-05-01 00:00:00+00"}


def test_table_mode_without_cursor_or_key_orders_by_every_column() -> None:
    q = build_extract_query(_Flow(_Source(table="customers", columns=["code", "name"])))
    assert q.sql == 'SELECT "code", "name" FROM "customers" ORDER BY "code", "name"'


def test_table_name_with_injection_stays_an_identifier() -> None:
    q = build_extract_query(_Flow(_Source(table='t"; drop table x; --', columns=["a"])))
    assert q.sql == 'SELECT "a" FROM "t""; drop table x; --" ORDER BY "a"'


def test_custom_sql_is_checked_and_wrapped() -> None:
    flow = _Flow(_Source(sql="select id, updated_at from t for update", cursor="updated_at"))
    with pytest.raises(SqlRejected):
        build_extract_query(flow)
    flow = _Flow(_Source(sql="select id, name, updated_at from t where name like '5%'", cursor="updated_at",
                         key=["id"]))
    q = build_extract_query(flow, cursor_value=7)
    assert q.sql == (
        "SELECT * FROM (SELECT id, name, updated_at FROM t WHERE name LIKE '5%%') AS src "
        'WHERE "src"."updated_at" > %(cursor)s ORDER BY "src"."updated_at", "src"."id"'
    )
    assert q.params == {"cursor": 7}


def test_custom_sql_without_cursor_or_key_is_refused() -> None:
    with pytest.raises(SqlRejected, match="deterministic order"):
        build_extract_query(_Flow(_Source(sql="select 1 as a")))


@pytest.mark.integration
def test_cursor_value_is_bound_not_pasted(fresh_database: str) -> None:
    """A cursor value carrying SQL stays a value: the table survives and no row matches it."""
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        conn.execute("create table t (id int, name text, updated_at text)")
        conn.execute("insert into t values (1, '50% off', 'a'), (2, 'x', 'b')")
        flow = _Flow(_Source(sql="select id, name, updated_at from t where name like '50%'",
                             cursor="updated_at", key="id"))
        evil = "a' ; drop table t; --"
        q = build_extract_query(flow, cursor_value=evil)
        assert conn.execute(q.sql, q.params).fetchall() == []
        q = build_extract_query(flow, cursor_value="")
        assert conn.execute(q.sql, q.params).fetchall() == [(1, "50% off", "a")]
        assert conn.execute("select count(*) from t").fetchone() == (2,)
