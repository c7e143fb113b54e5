"""Passwork's memory between runs, in the `passwork` schema of a PostgreSQL database (`PASSWORK_STATE_URL`).

Cursors say how far each flow has read; row hashes say what Salesforce last accepted per External ID, so
only new or changed rows are sent; rejects keep every held-back row with its reason until it clears; runs
and their Bulk job ids are the audit trail. Large key sets move with COPY into temporary tables and one
join, never one query per key.
"""

from __future__ import annotations

import contextlib

import datetime as dt
import hashlib
import json
import os
import socket
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import polars as pl
import psycopg
from psycopg.rows import dict_row

from passwork_assets.state.migrations import MIGRATIONS, SCHEMA
from passwork_assets.transform.result import Reject

# Advisory lock keys are one bigint space shared by every application on the server; namespacing the
# flow name keeps Passwork's locks apart from others' (hashtextextended is stable across servers).
_LOCK_NAMESPACE = "passwork:flow:"
_MIGRATION_LOCK = "passwork:migrate"


class FlowLocked(RuntimeError):
    """Another run of the flow holds its lock; the message says since when and which server process."""


class StateError(RuntimeError):
    """The state database cannot be used (unreachable, or a run id that does not exist)."""


def _cursor_text(value: Any) -> str:
    """A cursor value as text PostgreSQL reads back as the same value of the column's type."""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _key_hash_frame(keys: Sequence[str] | pl.Series, hashes: Sequence[str] | pl.Series) -> pl.DataFrame:
    frame = pl.DataFrame(
        {"key": pl.Series(keys, dtype=pl.Utf8), "hash": pl.Series(hashes, dtype=pl.Utf8)}
    )
    if frame["key"].null_count() or frame["hash"].null_count():
        raise ValueError("row hashes need a key and a hash for every row (found a null)")
    return frame


class StateStore:
    """The state of every flow in one PostgreSQL database; one instance per process, not shared by threads."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: psycopg.Connection | None = None

    # -- connection -------------------------------------------------------------------------------------

    def _connect(self, *, autocommit: bool = False) -> psycopg.Connection:
        try:
            return psycopg.connect(self._url, autocommit=autocommit, connect_timeout=10)
        except psycopg.OperationalError as exc:
            info = psycopg.conninfo.conninfo_to_dict(self._url)
            where = f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"
            # libpq's message names host and port but never the password; the URL itself is not shown.
            raise StateError(f"cannot connect to the state database at {where}: {exc}") from None

    @property
    def conn(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection]:
        conn = self.conn
        with conn.transaction():
            yield conn

    # -- schema ----------------------------------------------------------------------------------------

    def migrate(self) -> list[int]:
        """Create or upgrade the `passwork` schema; returns the versions applied now (empty when current).

        Safe to call on every start and from concurrent processes: a transaction-level advisory lock
        serialises migrators and each version is applied once.
        """
        applied: list[int] = []
        with self._tx() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (_MIGRATION_LOCK,))
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_version ("
                "version integer PRIMARY KEY, description text NOT NULL, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute(f"SELECT version FROM {SCHEMA}.schema_version")}
            for version, description, statements in MIGRATIONS:
                if version in done:
                    continue
                conn.execute(statements)
                conn.execute(
                    f"INSERT INTO {SCHEMA}.schema_version (version, description) VALUES (%s, %s)",
                    (version, description),
                )
                applied.append(version)
        return applied

    # -- locks -----------------------------------------------------------------------------------------

    @contextmanager
    def flow_lock(self, flow: str) -> Iterator[None]:
        """Hold the flow's lock for the block; raises `FlowLocked` at once if another run holds it.

        A session-level advisory lock on a dedicated connection: it is released when the block ends, and
        by the server if this process dies, so a crashed run never leaves the flow locked.
        """
        conn = self._connect(autocommit=True)
        try:
            got = conn.execute(
                "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (_LOCK_NAMESPACE + flow,)
            ).fetchone()
            if not got or not got[0]:
                holder = conn.execute(
                    f"SELECT l.since, l.backend_pid, l.holder FROM {SCHEMA}.flow_locks l "
                    "JOIN pg_locks pl ON pl.pid = l.backend_pid AND pl.locktype = 'advisory' AND pl.granted "
                    "WHERE l.flow = %s LIMIT 1",
                    (flow,),
                ).fetchone()
                since = (
                    f"since {holder[0].astimezone(dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC, "
                    f"{holder[2]}, server pid {holder[1]}"
                    if holder
                    else "since an unknown time"
                )
                raise FlowLocked(f"flow {flow} is already running ({since}); wait for it to finish")
            try:
                conn.execute(
                    f"INSERT INTO {SCHEMA}.flow_locks (flow, since, backend_pid, holder) "
                    "VALUES (%s, now(), pg_backend_pid(), %s) ON CONFLICT (flow) DO UPDATE SET "
                    "since = excluded.since, backend_pid = excluded.backend_pid, holder = excluded.holder",
                    (flow, f"host {socket.gethostname()} pid {os.getpid()}"),
                )
                yield
            finally:
                # A connection the server has closed has already lost its session, and with it the lock;
                # otherwise closing the connection below releases a session lock all the same.
                with contextlib.suppress(psycopg.OperationalError):
                    conn.execute(
                        f"DELETE FROM {SCHEMA}.flow_locks WHERE flow = %s AND backend_pid = pg_backend_pid()",
                        (flow,),
                    )
                    conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (_LOCK_NAMESPACE + flow,))
        finally:
            conn.close()

    # -- cursors ---------------------------------------------------------------------------------------

    def get_cursor(self, flow: str) -> str | None:
        """The flow's cursor as text (bound as a parameter, PostgreSQL reads it as the column's type)."""
        with self._tx() as conn:
            row = conn.execute(f"SELECT value FROM {SCHEMA}.cursors WHERE flow = %s", (flow,)).fetchone()
        return row[0] if row else None

    def set_cursor(self, flow: str, value: Any) -> None:
        """Store the flow's cursor; datetimes keep their offset and microseconds (ISO 8601)."""
        if value is None:
            raise ValueError(f"flow {flow}: a cursor cannot be set to null")
        with self._tx() as conn:
            conn.execute(
                f"INSERT INTO {SCHEMA}.cursors (flow, value) VALUES (%s, %s) ON CONFLICT (flow) "
                "DO UPDATE SET value = excluded.value, updated_at = now()",
                (flow, _cursor_text(value)),
            )

    def reset_cursor(self, flow: str) -> None:
        """Forget the flow's cursor, so the next run reads everything (for --full)."""
        with self._tx() as conn:
            conn.execute(f"DELETE FROM {SCHEMA}.cursors WHERE flow = %s", (flow,))

    # -- row hashes ------------------------------------------------------------------------------------

    def _load_temp(self, conn: psycopg.Connection, frame: pl.DataFrame) -> None:
        """COPY (key, hash) rows into a temporary table dropped at commit; CSV is written by Polars."""
        conn.execute("CREATE TEMP TABLE passwork_incoming (key text NOT NULL, hash text NOT NULL) ON COMMIT DROP")
        with conn.cursor().copy("COPY passwork_incoming (key, hash) FROM STDIN (FORMAT csv)") as copy:
            for start in range(0, frame.height, 500_000):
                copy.write(frame.slice(start, 500_000).write_csv(include_header=False))

    def changed_keys(
        self, flow: str, keys: Sequence[str] | pl.Series, hashes: Sequence[str] | pl.Series
    ) -> set[str]:
        """The keys whose hash differs from what Salesforce last accepted for the flow, or that are new."""
        frame = _key_hash_frame(keys, hashes)
        if frame.is_empty():
            return set()
        with self._tx() as conn:
            self._load_temp(conn, frame)
            conn.execute("ANALYZE passwork_incoming")
            rows = conn.execute(
                f"SELECT i.key FROM passwork_incoming i LEFT JOIN {SCHEMA}.row_hashes h "
                "ON h.flow = %s AND h.key = i.key WHERE h.hash IS DISTINCT FROM i.hash",
                (flow,),
            ).fetchall()
        return {r[0] for r in rows}

    def record_accepted(self, flow: str, keys: Sequence[str] | pl.Series, hashes: Sequence[str] | pl.Series) -> int:
        """Remember that Salesforce accepted these rows as hashed; returns how many keys were stored."""
        frame = _key_hash_frame(keys, hashes)
        if frame.is_empty():
            return 0
        with self._tx() as conn:
            self._load_temp(conn, frame)
            # DISTINCT ON: a key listed twice in one call is stored once (ON CONFLICT cannot touch a row twice).
            conn.execute(
                f"INSERT INTO {SCHEMA}.row_hashes (flow, key, hash) "
                "SELECT DISTINCT ON (key) %s, key, hash FROM passwork_incoming "
                "ON CONFLICT (flow, key) DO UPDATE SET hash = excluded.hash, updated_at = now() "
                f"WHERE {SCHEMA}.row_hashes.hash IS DISTINCT FROM excluded.hash",
                (flow,),
            )
        return frame["key"].n_unique()

    def accepted_keys(self, flows: Sequence[str], keys: Sequence[str] | pl.Series) -> set[str]:
        """The keys among `keys` that Salesforce has accepted from any of `flows` (for field ownership)."""
        keys = list(keys)
        if not keys or not flows:
            return set()
        frame = _key_hash_frame(keys, [""] * len(keys))
        with self._tx() as conn:
            self._load_temp(conn, frame)
            rows = conn.execute(
                f"SELECT DISTINCT i.key FROM passwork_incoming i JOIN {SCHEMA}.row_hashes h "
                "ON h.key = i.key AND h.flow = ANY(%s)",
                (list(flows),),
            ).fetchall()
        return {r[0] for r in rows}

    def forget_hashes(self, flow: str) -> int:
        """Forget what Salesforce accepted for the flow, so every row is sent again (for --full)."""
        with self._tx() as conn:
            return conn.execute(f"DELETE FROM {SCHEMA}.row_hashes WHERE flow = %s", (flow,)).rowcount

    def hash_count(self, flow: str) -> int:
        """How many keys of the flow have an accepted hash."""
        with self._tx() as conn:
            row = conn.execute(f"SELECT count(*) FROM {SCHEMA}.row_hashes WHERE flow = %s", (flow,)).fetchone()
        return int(row[0]) if row else 0

    # -- rejects ---------------------------------------------------------------------------------------

    def put_rejects(self, flow: str, rejects: Iterable[Reject]) -> int:
        """Store rejects; a row already rejected gets the new reason, last_seen now and one more attempt."""
        rows = []
        for r in rejects:
            row_json = json.dumps(r.row, default=_json_default, ensure_ascii=False, sort_keys=True)
            ident = r.key if r.key not in (None, "") else "row:" + hashlib.sha1(row_json.encode()).hexdigest()
            rows.append((flow, ident, r.key, r.code, r.message, r.field, r.value, row_json))
        if not rows:
            return 0
        # One reject per ident: a key rejected for two reasons in one batch keeps the last reason.
        latest = {row[1]: row for row in rows}
        with self._tx() as conn:
            conn.execute(
                "CREATE TEMP TABLE passwork_new_rejects (flow text, ident text, key text, code text, message text, "
                "field text, value text, row jsonb) ON COMMIT DROP"
            )
            with conn.cursor().copy("COPY passwork_new_rejects FROM STDIN") as copy:
                for row in latest.values():
                    copy.write_row(row)
            conn.execute(
                f"INSERT INTO {SCHEMA}.rejects (flow, ident, key, code, message, field, value, row) "
                "SELECT flow, ident, key, code, message, field, value, row FROM passwork_new_rejects "
                "ON CONFLICT (flow, ident) DO UPDATE SET code = excluded.code, message = excluded.message, "
                "field = excluded.field, value = excluded.value, row = excluded.row, last_seen = now(), "
                f"attempts = {SCHEMA}.rejects.attempts + 1"
            )
        return len(latest)

    def clear_rejects(self, flow: str, keys: Iterable[str] | None) -> int:
        """Drop the flow's rejects for these keys (they were written or no longer fail).

        `keys=None` drops all of the flow's rejects, including those without a key (for --full, where
        every row is read and judged again). Returns how many were dropped.
        """
        with self._tx() as conn:
            if keys is None:
                return conn.execute(f"DELETE FROM {SCHEMA}.rejects WHERE flow = %s", (flow,)).rowcount
            key_list = [k for k in keys if k is not None]
            if not key_list:
                return 0
            return conn.execute(
                f"DELETE FROM {SCHEMA}.rejects WHERE flow = %s AND key = ANY(%s)", (flow, key_list)
            ).rowcount

    def rejects(self, flow: str | None = None) -> list[dict[str, Any]]:
        """Current rejects (all flows or one), newest first, with their reasons and source rows."""
        with self.conn.cursor(row_factory=dict_row) as cur, self.conn.transaction():
            cur.execute(
                f"SELECT flow, key, code, message, field, value, row, first_seen, last_seen, attempts "
                f"FROM {SCHEMA}.rejects WHERE (%(flow)s::text IS NULL OR flow = %(flow)s) "
                "ORDER BY flow, last_seen DESC, key",
                {"flow": flow},
            )
            return list(cur.fetchall())

    # -- runs ------------------------------------------------------------------------------------------

    def start_run(self, flow: str) -> int:
        """Record that a run of the flow started; returns its id."""
        with self._tx() as conn:
            row = conn.execute(f"INSERT INTO {SCHEMA}.runs (flow) VALUES (%s) RETURNING id", (flow,)).fetchone()
        assert row is not None
        return int(row[0])

    def finish_run(self, run_id: int, summary: dict[str, Any], *, status: str | None = None) -> None:
        """Record a run's end with its summary; the status is `status`, else `summary["status"]`.

        A summary without a status is refused rather than guessed: a failure must never be stored as success.
        """
        final = status or summary.get("status")
        if not final:
            raise ValueError(f"run {run_id}: finish_run needs a status (in the summary or as status=)")
        payload = json.dumps(summary, default=_json_default, ensure_ascii=False)
        with self._tx() as conn:
            updated = conn.execute(
                f"UPDATE {SCHEMA}.runs SET finished = now(), status = %s, summary = %s::jsonb WHERE id = %s",
                (final, payload, run_id),
            ).rowcount
        if updated != 1:
            raise StateError(f"no run with id {run_id} in the state database")

    def add_bulk_job(self, run_id: int, job_id: str, object: str, operation: str) -> None:  # noqa: A002
        """Record a Bulk API job created by a run (for the audit trail)."""
        with self._tx() as conn:
            conn.execute(
                f"INSERT INTO {SCHEMA}.bulk_jobs (run_id, job_id, object, operation) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                (run_id, job_id, object, operation),
            )

    def runs(self, flow: str | None = None, *, limit: int = 50) -> list[dict[str, Any]]:
        """The latest runs (all flows or one), newest first, each with its Bulk job ids."""
        with self.conn.cursor(row_factory=dict_row) as cur, self.conn.transaction():
            cur.execute(
                f"SELECT r.id, r.flow, r.started, r.finished, r.status, r.summary, "
                f"coalesce(array_agg(b.job_id ORDER BY b.created) FILTER (WHERE b.job_id IS NOT NULL), "
                f"'{{}}') AS bulk_job_ids "
                f"FROM {SCHEMA}.runs r LEFT JOIN {SCHEMA}.bulk_jobs b ON b.run_id = r.id "
                "WHERE (%(flow)s::text IS NULL OR r.flow = %(flow)s) "
                "GROUP BY r.id ORDER BY r.started DESC, r.id DESC LIMIT %(limit)s",
                {"flow": flow, "limit": limit},
            )
            return list(cur.fetchall())


__all__ = ["FlowLocked", "StateError", "StateStore"]
