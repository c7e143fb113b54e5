"""COPY extraction into Polars and table lookups, against the real embedded PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import psycopg
import pytest

from passwork_assets.source.extract import ExtractError, copy_chunks, stream_frames
from passwork_assets.source.query import ExtractQuery
from passwork_assets.source.schema import TableNotFound, table_columns

pytestmark = pytest.mark.integration


@pytest.fixture
def source(fresh_database: str):
    with psycopg.connect(fresh_database, autocommit=True) as admin:
        admin.execute("""
            create table public.usage_events (
                id bigint primary key, contract_no text, usage_date date, metric varchar(40),
                quantity numeric(12, 4), ratio numeric, score double precision, active boolean,
                updated_at timestamptz, local_at timestamp, note text, tags text[])""")
        admin.execute("""
            insert into usage_events values
              (1, 'C-1', '2024-01-31', 'api', 1.5, 0.1, 2.5, true, '2024-03-31 23:30:00+09', '2024-01-01 10:00:00.123456',
               '', '{a,b}'),
              (2, '契約-2', '2024-02-29', 'seats', 1234.5678, 10, null, false, '2024-01-01 00:00:00+00', null,
               null, null),
              (3, 'C-3', null, 'x,"y"', null, null, -1e-5, null, null, null, E'line1\\nline2', '{}')""")
    with psycopg.connect(fresh_database) as conn:
        yield conn


@pytest.mark.dates
def test_types_nulls_and_text_survive_the_copy(source: psycopg.Connection) -> None:
    frames = list(stream_frames(source, ExtractQuery('SELECT * FROM "usage_events" ORDER BY "id"', {})))
    assert len(frames) == 1
    frame = frames[0]
    assert frame.schema == pl.Schema({
        "id": pl.Int64, "contract_no": pl.Utf8, "usage_date": pl.Date, "metric": pl.Utf8,
        "quantity": pl.Decimal(12, 4), "ratio": pl.Float64, "score": pl.Float64, "active": pl.Boolean,
        "updated_at": pl.Datetime("us", "UTC"), "local_at": pl.Datetime("us"), "note": pl.Utf8, "tags": pl.Utf8,
    })
    rows = frame.rows(named=True)
    assert rows[0]["usage_date"] == dt.date(2024, 1, 31)
    assert rows[0]["updated_at"] == dt.datetime(2024, 3, 31, 14, 30, tzinfo=dt.timezone.utc)
    assert rows[0]["local_at"] == dt.datetime(2024, 1, 1, 10, 0, 0, 123456)
    assert rows[0]["quantity"] == Decimal("1.5000") and rows[1]["quantity"] == Decimal("1234.5678")
    assert rows[0]["active"] is True and rows[1]["active"] is False and rows[2]["active"] is None
    assert rows[0]["note"] == "" and rows[1]["note"] is None and rows[2]["note"] == "line1\nline2"
    assert rows[1]["contract_no"] == "契約-2" and rows[2]["metric"] == 'x,"y"'
    assert rows[2]["score"] == -1e-5 and rows[0]["tags"] == "{a,b}"


def test_chunks_are_bounded_and_share_one_schema(source: psycopg.Connection) -> None:
    source.execute("insert into usage_events (id, contract_no, quantity) "
                   "select i, 'C-' || i, i / 3.0 from generate_series(10, 1009) i")
    source.commit()
    frames = list(stream_frames(source, ExtractQuery('SELECT * FROM usage_events ORDER BY id', {}), chunk_rows=300))
    assert [f.height for f in frames] == [300, 300, 300, 103]
    assert len({tuple(f.schema.items()) for f in frames}) == 1
    ids = pl.concat(frames).get_column("id").to_list()
    assert ids == sorted(ids) and len(set(ids)) == 1003


def test_bound_cursor_parameter_and_literal_percent(source: psycopg.Connection) -> None:
    query = ExtractQuery("SELECT * FROM (SELECT id, metric FROM usage_events WHERE metric LIKE '%%a%%') AS src "
                         "WHERE id > %(cursor)s ORDER BY id", {"cursor": "0"})
    [frame] = list(stream_frames(source, query))
    assert frame.get_column("id").to_list() == [1, 2]
    evil = ExtractQuery("SELECT id FROM usage_events WHERE contract_no > %(cursor)s ORDER BY id",
                        {"cursor": "'; drop table usage_events; --"})
    assert [f.height for f in stream_frames(source, evil)] == [3]
    assert source.execute("select count(*) from usage_events").fetchone() == (3,)


def test_an_empty_result_yields_nothing(source: psycopg.Connection) -> None:
    assert list(stream_frames(source, ExtractQuery("SELECT * FROM usage_events WHERE false", {}))) == []


def test_the_transaction_is_read_only(source: psycopg.Connection) -> None:
    source.execute("create sequence s")
    source.commit()
    with pytest.raises(ExtractError, match="tried to write"):
        list(stream_frames(source, ExtractQuery("SELECT nextval('s')", {})))
    assert source.execute("select last_value from s").fetchone() == (1,)


def test_statement_timeout_is_reported(source: psycopg.Connection) -> None:
    with pytest.raises(ExtractError, match="statement timeout of 0.2s"):
        list(stream_frames(source, ExtractQuery("SELECT pg_sleep(5)", {}), statement_timeout_s=0.2))


def test_duplicate_column_names_are_refused(source: psycopg.Connection) -> None:
    with pytest.raises(ExtractError, match="returns the column name.* id more than once"):
        list(stream_frames(source, ExtractQuery("SELECT id, id FROM usage_events", {})))


def test_a_value_the_type_cannot_hold_is_a_clear_error(source: psycopg.Connection) -> None:
    with pytest.raises(ExtractError, match="could not read rows"):
        list(stream_frames(source, ExtractQuery("SELECT 'infinity'::date AS d", {})))


def test_table_columns_and_close_names(source: psycopg.Connection) -> None:
    assert list(table_columns(source, "public.usage_events").items())[:5] == [
        ("id", "bigint"), ("contract_no", "text"), ("usage_date", "date"), ("metric", "character varying(40)"),
        ("quantity", "numeric(12,4)")]
    assert table_columns(source, "usage_events")["updated_at"] == "timestamp with time zone"
    with pytest.raises(TableNotFound, match=r"table usage_event not found .*did you mean public.usage_events\?"):
        table_columns(source, "usage_event")
    with pytest.raises(TableNotFound, match="table erp.partners not found"):
        table_columns(source, "erp.partners")


@pytest.mark.dates
def test_timestamps_keep_every_fraction_digit(source: psycopg.Connection) -> None:
    query = ExtractQuery("""
        SELECT * FROM (VALUES
          (1, timestamptz '2024-03-31 23:30:00.5+09', timestamp '1969-12-31 23:59:59.999999'),
          (2, timestamptz '2024-01-01 00:00:00+00', timestamp '2024-02-29 12:00:00.01'),
          (3, timestamptz '1900-06-30 12:34:56.000123+00', timestamp '2000-01-01 00:00:00.1234'),
          (4, null, null)) AS t(id, at, local_at) ORDER BY id""", {})
    [frame] = list(stream_frames(source, query))
    assert frame.schema["at"] == pl.Datetime("us", "UTC") and frame.schema["local_at"] == pl.Datetime("us")
    utc = dt.timezone.utc
    assert frame.get_column("at").to_list() == [
        dt.datetime(2024, 3, 31, 14, 30, 0, 500000, tzinfo=utc), dt.datetime(2024, 1, 1, tzinfo=utc),
        dt.datetime(1900, 6, 30, 12, 34, 56, 123, tzinfo=utc), None]
    assert frame.get_column("local_at").to_list() == [
        dt.datetime(1969, 12, 31, 23, 59, 59, 999999), dt.datetime(2024, 2, 29, 12, 0, 0, 10000),
        dt.datetime(2000, 1, 1, 0, 0, 0, 123400), None]


def test_timestamps_outside_the_usual_shape(source: psycopg.Connection) -> None:
    # A year before 1000 still has four digits; the general parser takes what the fast path does not.
    [frame] = list(stream_frames(source, ExtractQuery(
        "SELECT timestamptz '0999-01-02 03:04:05.6+00' AS at, timestamp '0999-01-02 03:04:05' AS local_at", {})))
    assert frame.row(0) == (dt.datetime(999, 1, 2, 3, 4, 5, 600000, tzinfo=dt.timezone.utc),
                            dt.datetime(999, 1, 2, 3, 4, 5))
    with pytest.raises(ExtractError, match="could not read rows 1.."):
        list(stream_frames(source, ExtractQuery("SELECT 'infinity'::timestamptz AS at", {})))
    with pytest.raises(ExtractError, match="could not read rows 1.."):
        list(stream_frames(source, ExtractQuery("SELECT timestamp '0044-03-15 12:00:00 BC' AS at", {})))


def test_copy_chunks_count_rows_and_can_stop_early(source: psycopg.Connection) -> None:
    statement = "COPY (SELECT i, 'a,' || i FROM generate_series(1, 1050) i) TO STDOUT (FORMAT csv)"
    with source.transaction():
        chunks = [(bytes(data), rows) for data, rows in copy_chunks(source, statement, {}, 100)]
    assert [rows for _, rows in chunks] == [100] * 10 + [50]
    text = b"".join(data for data, _ in chunks).decode()
    assert text.splitlines()[0] == '1,"a,1"' and text.splitlines()[-1] == '1050,"a,1050"'
    with source.transaction():
        reader = copy_chunks(source, statement, {}, 100)
        data, rows = next(reader)
        assert rows == 100 and bytes(data).count(b"\n") == 100
        reader.close()  # the rest of the COPY is cancelled and the connection is usable again
    assert source.execute("SELECT 1").fetchone() == (1,)


def test_a_bad_value_in_a_later_chunk_is_raised_with_that_chunk(source: psycopg.Connection) -> None:
    frames = stream_frames(source, ExtractQuery(
        "SELECT d FROM (VALUES (1, date '2024-01-01'), (2, 'infinity'::date)) AS t(i, d) ORDER BY i", {}),
        chunk_rows=1)
    assert next(frames).get_column("d").to_list() == [dt.date(2024, 1, 1)]
    with pytest.raises(ExtractError, match=r"could not read rows 2\.\."):
        next(frames)
