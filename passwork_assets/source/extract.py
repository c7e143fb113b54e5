"""Rows out of a source database with `COPY (query) TO STDOUT`, into bounded Polars DataFrames.

The COPY runs in a READ ONLY, REPEATABLE READ transaction with a statement timeout and fixed output
settings (UTC, ISO dates), so what a custom SQL could not be checked for statically still cannot write, and
every chunk reads the same snapshot. While COPY streams, rows are cut into chunks of `chunk_rows` and each
chunk's CSV bytes go to a spool file; the transaction ends as soon as the server has sent the last row, and
chunks are parsed on a worker thread (the first while COPY streams, each next one while the caller works on
the current one) and handed out one at a time once the transaction has ended. Memory holds two chunks (not
the table), and the source's snapshot is not held open for however long Salesforce takes to load what was
read.
"""

from __future__ import annotations

import io
import selectors
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
from psycopg import errors as pg_errors

from passwork_assets.source.query import ExtractQuery
from passwork_assets.source.schema import ResultColumn, query_columns


class ExtractError(RuntimeError):
    """The extraction failed; the message says why in the user's terms (timeout, write attempt, bad value)."""


# PostgreSQL types read straight into a Polars type by the CSV reader; every other type stays text, as
# PostgreSQL prints it (uuid, json, arrays, intervals, enums...), which is what a Salesforce text field takes.
_DIRECT: dict[str, pl.DataType] = {
    "int2": pl.Int16(),
    "int4": pl.Int32(),
    "int8": pl.Int64(),
    "oid": pl.Int64(),
    "float4": pl.Float32(),
    "float8": pl.Float64(),
    "date": pl.Date(),
    "timestamp": pl.Datetime("us"),
    # With TimeZone = UTC PostgreSQL prints every timestamptz with +00; Polars reads it as a UTC instant.
    "timestamptz": pl.Datetime("us", "UTC"),
}
_MAX_DECIMAL_PRECISION = 38


def polars_dtype(column: ResultColumn) -> pl.DataType:
    """The Polars type a result column is read as (booleans and timestamps are read as text first, see `_finish`)."""
    if column.type_name in _DIRECT:
        return _DIRECT[column.type_name]
    if column.type_name == "numeric":
        if column.precision is not None and column.scale is not None and column.precision <= _MAX_DECIMAL_PRECISION:
            return pl.Decimal(column.precision, column.scale)
        # numeric without a declared precision has no fixed scale, so no single Decimal type fits every
        # chunk; Float64 keeps 15-17 significant digits, and the transform rounds to the field's scale.
        return pl.Float64()
    return pl.Utf8()


def frame_schema(columns: list[ResultColumn]) -> dict[str, pl.DataType]:
    """The schema every chunk of a query's extract shares."""
    names = [c.name for c in columns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ExtractError(
            f"the query returns the column name(s) {', '.join(dupes)} more than once; give each column a "
            "distinct name with AS"
        )
    return {c.name: polars_dtype(c) for c in columns}


def _read_schema(schema: dict[str, pl.DataType], columns: list[ResultColumn]) -> dict[str, pl.DataType]:
    """What the CSV reader reads: booleans and timestamps as text, converted by `_finish`."""
    text = {c.name for c in columns if c.type_name == "bool" or c.type_name in _STAMP_SUFFIX}
    return {name: (pl.Utf8() if name in text else dtype) for name, dtype in schema.items()}


# Timestamps as PostgreSQL prints them with DateStyle ISO and TimeZone UTC: `YYYY-MM-DD HH:MM:SS`, up to six
# fraction digits, and `+00` for timestamptz. Polars parses fractional seconds at about 300 ns a value (the
# largest single cost of reading a chunk), but `YYYY-MM-DD HH:MM:SS` on its fast path, so the fraction is
# added as an integer. Columns with any other spelling (years past 9999, BC, infinity) take the general parser.
_STAMP_SUFFIX = {"timestamp": "", "timestamptz": r"\+00"}
_STAMP_FORMAT = {"timestamp": "%Y-%m-%d %H:%M:%S%.f", "timestamptz": "%Y-%m-%d %H:%M:%S%.f%#z"}


def _stamp_shape(text: pl.Expr, type_name: str) -> pl.Expr:
    shape = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{1,6})?" + _STAMP_SUFFIX[type_name] + "$"
    return (text.is_null() | text.str.contains(shape)).all()


def _stamp(text: pl.Expr, type_name: str, fast: bool) -> pl.Expr:
    zone = "UTC" if type_name == "timestamptz" else None
    if not fast:
        return text.str.to_datetime(_STAMP_FORMAT[type_name], time_unit="us", time_zone=zone)
    seconds = text.str.slice(0, 19).str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us")
    fraction = text.str.slice(19).str.strip_suffix("+00").str.strip_prefix(".").str.pad_end(6, "0")
    stamp = seconds + pl.duration(microseconds=fraction.cast(pl.Int64, strict=False).fill_null(0))
    return stamp.dt.replace_time_zone(zone) if zone else stamp


def _finish(frame: pl.DataFrame, columns: list[ResultColumn]) -> pl.DataFrame:
    # PostgreSQL's CSV spells booleans t / f, which the CSV reader does not take as booleans.
    exprs = [(pl.col(c.name) == "t").alias(c.name) for c in columns if c.type_name == "bool"]
    stamps = [c for c in columns if c.type_name in _STAMP_SUFFIX]
    if stamps:
        fast = frame.select([_stamp_shape(pl.col(c.name), c.type_name).alias(c.name) for c in stamps]).row(0)
        exprs += [_stamp(pl.col(c.name), c.type_name, ok).alias(c.name) for c, ok in zip(stamps, fast)]
    return frame.with_columns(exprs) if exprs else frame


def _parse_chunk(data: bytes | Path, schema: dict[str, pl.DataType], columns: list[ResultColumn],
                 first_row: int) -> pl.DataFrame:
    try:
        frame = pl.read_csv(
            data if isinstance(data, Path) else io.BytesIO(data),
            has_header=False,
            new_columns=list(schema),
            schema=_read_schema(schema, columns),
            # PostgreSQL's CSV: NULL is an empty unquoted field, an empty string is "" (Polars keeps them apart).
            quote_char='"',
        )
        return _finish(frame, columns)
    except pl.exceptions.PolarsError as exc:
        raise ExtractError(
            f"could not read rows {first_row + 1}.. of the extract as the column types PostgreSQL reported: "
            f"{str(exc).splitlines()[0]}"
        ) from None


def _start(cur: psycopg.Cursor, statement_timeout_s: float) -> None:
    cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    # Output formats fixed for this transaction only, whatever the role's or database's defaults are.
    cur.execute(
        "SELECT set_config('statement_timeout', %s, true), set_config('TimeZone', 'UTC', true), "
        "set_config('DateStyle', 'ISO, YMD', true), set_config('IntervalStyle', 'iso_8601', true), "
        "set_config('extra_float_digits', '3', true), set_config('bytea_output', 'hex', true)",
        (str(int(statement_timeout_s * 1000)),),
    )


def _wait_readable(pgconn: psycopg.pq.abc.PGconn, selector: selectors.BaseSelector) -> None:
    selector.select()
    pgconn.consume_input()


def _end_of_copy(conn: psycopg.Connection, selector: selectors.BaseSelector) -> None:
    """Collect the COPY's final results, then raise the server's error (timeout, write attempt...) if any.

    Every result is read first, so that the connection is idle again whatever happened.
    """
    pgconn = conn.pgconn
    results = []
    while True:
        while pgconn.is_busy():
            _wait_readable(pgconn, selector)
        result = pgconn.get_result()
        if result is None:
            break
        results.append(result)
    for result in results:
        if result.status != psycopg.pq.ExecStatus.COMMAND_OK:
            raise psycopg.errors.error_from_result(result, encoding=conn.info.encoding)


def copy_chunks(conn: psycopg.Connection, statement: str, params: Mapping[str, Any], chunk_rows: int,
                ) -> Iterator[tuple[bytearray, int]]:
    """Run `COPY (...) TO STDOUT` and yield its output as (bytes, row count) of at most `chunk_rows` rows.

    The bytes object is reused: consume it before asking for the next chunk. psycopg's `Copy.read()` costs
    a generator round trip per row, which made reading the rows cost as much as everything done with them,
    so the rows are taken straight from libpq (psycopg's documented `pq` layer) while it has them buffered,
    waiting on the socket only when it has none; psycopg's own `Copy` still starts the COPY and cleans up.
    """
    # A selector, not select(): the socket's descriptor may be above select()'s limit of 1024.
    with conn.cursor() as cur, cur.copy(statement, params), selectors.DefaultSelector() as selector:
        pgconn = conn.pgconn
        selector.register(pgconn.socket, selectors.EVENT_READ)
        get_copy_data = pgconn.get_copy_data
        buffer = bytearray()
        rows = 0
        while True:
            # The server sends one COPY message per row, so counting messages counts rows.
            nbytes, data = get_copy_data(1)
            if nbytes > 0:
                buffer += data
                rows += 1
                if rows == chunk_rows:
                    yield buffer, rows
                    buffer.clear()
                    rows = 0
            elif nbytes == 0:
                _wait_readable(pgconn, selector)
            else:
                break
        _end_of_copy(conn, selector)
        if rows:
            yield buffer, rows


def _spool(conn: psycopg.Connection, query: ExtractQuery, chunk_rows: int, statement_timeout_s: float,
           folder: Path, on_first: Callable[[list[ResultColumn], Path], None]) -> tuple[list[ResultColumn], list[Path]]:
    """Run the COPY and write each chunk's CSV rows to its own file; returns the columns and the files.

    `on_first` is called with the columns and the first file as soon as that file is written.
    """
    files: list[Path] = []
    with conn.transaction(), conn.cursor() as cur:
        _start(cur, statement_timeout_s)
        columns = query_columns(conn, query)
        frame_schema(columns)  # refuse duplicate column names before reading any row
        # COPY cannot take server-side bind parameters, so psycopg binds `params` client-side here: each
        # value is rendered as a quoted literal by the connection's own adapters (the same escaping as
        # psycopg.sql.Literal), never pasted into the text by Passwork.
        statement = f"COPY ({query.sql}) TO STDOUT (FORMAT csv)"
        for data, _ in copy_chunks(conn, statement, query.params, chunk_rows):
            files.append(_write(folder, len(files), data))
            if len(files) == 1:
                on_first(columns, files[0])
    return columns, files


def _write(folder: Path, index: int, data: bytearray) -> Path:
    path = folder / f"chunk-{index:06d}.csv"
    path.write_bytes(data)
    return path


def stream_frames(conn: psycopg.Connection, query: ExtractQuery, *, chunk_rows: int = 200_000,
                  statement_timeout_s: float = 300) -> Iterator[pl.DataFrame]:
    """The rows of `query` as DataFrames of at most `chunk_rows` rows, all with the same schema.

    Types follow the query's result columns: integers and floats as such, numeric(p, s) as Decimal(p, s)
    (Float64 when unconstrained), date as Date, timestamp as naive Datetime, timestamptz as UTC Datetime,
    boolean as Boolean, everything else as text. A query that returns no rows yields nothing. Raises
    `ExtractError` on a timeout, a write attempt, or a value the declared type cannot read.
    """
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    if conn.autocommit:
        raise ExtractError("stream_frames needs a connection outside autocommit mode (it opens a READ ONLY transaction)")
    folder = Path(tempfile.mkdtemp(prefix="passwork-extract-"))
    # Chunks are parsed on a worker thread (Polars parses without the GIL): the first one while the COPY
    # still streams, each next one while the caller works on the current one. Memory holds at most two
    # parsed chunks; an error in a chunk is raised when that chunk is asked for.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="passwork-extract")
    try:
        pending: list[Future[pl.DataFrame]] = []

        def parse(columns: list[ResultColumn], path: Path, index: int) -> pl.DataFrame:
            frame = _parse_chunk(path, frame_schema(columns), columns, index * chunk_rows)
            path.unlink()
            return frame

        def first_written(columns: list[ResultColumn], path: Path) -> None:
            pending.append(pool.submit(parse, columns, path, 0))

        try:
            columns, files = _spool(conn, query, chunk_rows, statement_timeout_s, folder, first_written)
        except pg_errors.QueryCanceled as exc:
            raise ExtractError(
                f"the extraction query was cancelled after the statement timeout of {statement_timeout_s:g}s "
                f"(raise statement_timeout_s on the connection, or add an index on the cursor column): "
                f"{exc.diag.message_primary}"
            ) from None
        except pg_errors.ReadOnlySqlTransaction as exc:
            raise ExtractError(
                f"the extraction query tried to write, which a sync query may not do: {exc.diag.message_primary}"
            ) from None
        except psycopg.errors.Error as exc:
            raise ExtractError(f"the extraction query failed in the source database: {exc}") from None
        for index in range(len(files)):
            frame = pending.pop().result()
            if index + 1 < len(files):
                pending.append(pool.submit(parse, columns, files[index + 1], index + 1))
            yield frame
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(folder, ignore_errors=True)
