"""The `passwork` schema in the state database, as numbered migrations applied once each and in order."""

from __future__ import annotations

SCHEMA = "passwork"

# Each entry is applied once, in order, inside one transaction together with its row in schema_version.
# Statements use IF NOT EXISTS as well, so a database created by hand or half-migrated still converges.
MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "cursors, row hashes, rejects, runs, bulk jobs, flow locks",
        """
        CREATE TABLE IF NOT EXISTS passwork.cursors (
            flow        text PRIMARY KEY,
            value       text NOT NULL,
            updated_at  timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE IF NOT EXISTS passwork.row_hashes (
            flow        text NOT NULL,
            key         text NOT NULL,
            hash        text NOT NULL,
            updated_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (flow, key)
        );
        -- ident is the External ID when the row has one, else a digest of the row: a row without a key
        -- that fails the same way on every run is one reject with a growing attempt count.
        CREATE TABLE IF NOT EXISTS passwork.rejects (
            flow        text NOT NULL,
            ident       text NOT NULL,
            key         text,
            code        text NOT NULL,
            message     text NOT NULL,
            field       text,
            value       text,
            row         jsonb NOT NULL,
            first_seen  timestamptz NOT NULL DEFAULT now(),
            last_seen   timestamptz NOT NULL DEFAULT now(),
            attempts    integer NOT NULL DEFAULT 1,
            PRIMARY KEY (flow, ident)
        );
        CREATE INDEX IF NOT EXISTS rejects_flow_key ON passwork.rejects (flow, key);
        CREATE TABLE IF NOT EXISTS passwork.runs (
            id          bigserial PRIMARY KEY,
            flow        text NOT NULL,
            started     timestamptz NOT NULL DEFAULT now(),
            finished    timestamptz,
            status      text NOT NULL DEFAULT 'running',
            summary     jsonb
        );
        CREATE INDEX IF NOT EXISTS runs_flow_started ON passwork.runs (flow, started DESC);
        CREATE TABLE IF NOT EXISTS passwork.bulk_jobs (
            run_id      bigint NOT NULL REFERENCES passwork.runs (id) ON DELETE CASCADE,
            job_id      text NOT NULL,
            object      text NOT NULL,
            operation   text NOT NULL,
            created     timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (run_id, job_id)
        );
        -- Who holds a flow's advisory lock and since when, for the "already running" message.
        CREATE TABLE IF NOT EXISTS passwork.flow_locks (
            flow        text PRIMARY KEY,
            since       timestamptz NOT NULL,
            backend_pid integer NOT NULL,
            holder      text NOT NULL
        );
        """,
    ),
]
