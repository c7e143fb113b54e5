"""The run of the flows: extract, transform, diff, load, and account for every row.

The Dagster assets, the CLI and the tests all call `run_flows`. Order of a run: objects parents first
(`MappingSet.object_order()`), and each flow in its own advisory lock. Per flow:

1. extract the rows past the flow's cursor (or all with `full`) in bounded chunks;
2. build Salesforce records; rows that fail pre-validation become rejects without an API call;
3. keep only new or changed rows (row hash versus what Salesforce last accepted);
4. load them (Bulk 2.0 or Collections), read every result, retry what can be retried;
5. record hashes of accepted rows, rejects with Salesforce's reasons, and only then move the cursor —
   and only past rows that were written or kept as rejects;
6. re-send rows held back earlier for a reason that can clear (a parent that did not exist yet, a lock).

A crash anywhere leaves the cursor behind the unfinished chunk, so a rerun sends those rows again; the
upsert on the External ID makes that harmless.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from passwork_assets.mapping.models import FlowMapping, MappingSet
from passwork_assets.salesforce.client import (
    ApiBudgetExhausted,
    RequestRejected,
    SalesforceClient,
    SalesforceUnavailable,
)
from passwork_assets.salesforce.describe import ObjectDescribe
from passwork_assets.salesforce.loader import LoadOptions, LoadResult, PendingLoad, start_load
from passwork_assets.salesforce.describe import DescribeError, ObjectNotFound
from passwork_assets.source.connect import SourceConnectionError, open_connection
from passwork_assets.source.extract import ExtractError, stream_frames
from passwork_assets.source.query import SqlRejected, build_extract_query
from passwork_assets.source.schema import TableNotFound
from passwork_assets.source.ssh_tunnel import SshTunnelError
from passwork_assets.state.store import FlowLocked, StateError, StateStore
from passwork_assets.sync.results import FlowRunResult
from passwork_assets.sync.settings import SyncSettings
from passwork_assets.transform import HASH_COLUMN, KEY_COLUMN, Reject, TransformError, build_records
from passwork_assets.transform.row_hash import row_hash

log = logging.getLogger(__name__)

PREVIEW_ROWS = 20
# Rejects that can clear without a change in the source: the parent may arrive, the lock may free up.
_RETRYABLE_REJECT_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "UNPROCESSED"})


USER_FACING_ERRORS = (SourceConnectionError, SshTunnelError, ExtractError, SqlRejected, TableNotFound,
                       TransformError, FlowLocked, StateError, DescribeError, ObjectNotFound)


class FlowSelectionError(ValueError):
    """`--flow` named a flow that no mapping file defines."""


def is_missing_parent(code: str | None, message: str | None) -> bool:
    """Salesforce's answer for a child whose parent External ID does not exist (yet)."""
    return code == "INVALID_FIELD" and (message or "").startswith("Foreign key external ID")


def _retryable(code: str | None, message: str | None) -> bool:
    return code in _RETRYABLE_REJECT_CODES or is_missing_parent(code, message)


def ordered_flows(mappings: MappingSet, names: Sequence[str] | None) -> list[FlowMapping]:
    """The chosen flows (default all), parents' objects first, file order within an object."""
    if names:
        unknown = sorted(set(names) - set(mappings.flows))
        if unknown:
            raise FlowSelectionError(
                f"no flow named {', '.join(unknown)}; flows: {', '.join(sorted(mappings.flows))}"
            )
    chosen = set(names) if names else set(mappings.flows)
    order: list[FlowMapping] = []
    for obj in mappings.object_order():
        order.extend(f for f in mappings.flows_for_object(obj) if f.flow in chosen)
    return order


def run_flows(mappings: MappingSet, *, flows: Sequence[str] | None = None, full: bool = False,
              dry_run: bool = False, settings: SyncSettings, client: SalesforceClient | None = None,
              state: StateStore | None = None) -> list[FlowRunResult]:
    """Run the chosen flows parents first and return one result per flow.

    A flow that fails does not stop its siblings, except when Salesforce is out of reach or out of API
    budget: then the remaining flows are reported as not run.
    """
    plan = ordered_flows(mappings, flows)
    if client is None:
        from passwork_assets.salesforce.settings import SalesforceSettings

        client = SalesforceClient(SalesforceSettings.from_env())
    if state is None:
        state = StateStore(settings.state_url)
    state.migrate()
    results: list[FlowRunResult] = []
    stop_reason: str | None = None
    for flow in plan:
        if stop_reason is not None:
            results.append(_result_for(flow, dry_run, status="failed", error=f"not run: {stop_reason}"))
            continue
        result = FlowRun(flow, mappings, client=client, state=state, settings=settings,
                         full=full, dry_run=dry_run).run()
        results.append(result)
        if result.status != "ok" and result.error and result.error.startswith(("Salesforce:", "API budget:")):
            stop_reason = result.error
    return results


def _result_for(flow: FlowMapping, dry_run: bool, **extra: Any) -> FlowRunResult:
    return FlowRunResult(flow=flow.flow, object=flow.target.object, mapping_file=str(flow.path),
                         mapping_hash=flow.content_hash, dry_run=dry_run, **extra)


@dataclass
class _CursorTracker:
    """The furthest cursor value that is safe to store after each chunk.

    Rows arrive ordered by the cursor column. After a chunk, every row with a cursor value below the chunk's
    last value is finished, but rows sharing the last value may continue in the next chunk, so only the
    largest value strictly below it is safe; at the end of the stream the last value itself is.
    """

    column: str | None
    safe: Any = None
    last: Any = None

    def observe(self, frame: pl.DataFrame) -> None:
        if not self.column or frame.height == 0 or self.column not in frame.columns:
            return
        values = frame.get_column(self.column).drop_nulls()
        if values.len() == 0:
            return
        chunk_last = values.max()
        below = values.filter(values < chunk_last)
        if below.len():
            candidate = below.max()
            self.safe = candidate if self.safe is None or candidate > self.safe else self.safe
        if self.last is not None and self.last < chunk_last:
            self.safe = self.last if self.safe is None or self.last > self.safe else self.safe
        self.last = chunk_last if self.last is None or chunk_last > self.last else self.last


@dataclass
class _InFlight:
    """A chunk's rows that were submitted, and the cursor value that becomes safe once they are accounted."""

    pending: PendingLoad
    rows: pl.DataFrame
    cursor_after: Any


class FlowRun:
    """One flow's run; `run()` never raises for a data or Salesforce problem, it reports it."""

    def __init__(self, flow: FlowMapping, mappings: MappingSet, *, client: SalesforceClient, state: StateStore,
                 settings: SyncSettings, full: bool, dry_run: bool) -> None:
        self.flow = flow
        self.mappings = mappings
        self.client = client
        self.state = state
        self.settings = settings
        self.full = full
        self.dry_run = dry_run
        self.result = _result_for(flow, dry_run)
        self.seen_keys: set[str] = set()
        self.run_id: Any = None
        self._held_keys: set[str] | None = None

    # -- the run ---------------------------------------------------------------------------------------

    def run(self) -> FlowRunResult:
        started = time.monotonic()
        calls_before = self.client.usage.calls
        try:
            with self.state.flow_lock(self.flow.flow):
                if not self.dry_run:
                    self.run_id = self.state.start_run(self.flow.flow)
                self._run_locked()
        except ApiBudgetExhausted as exc:
            self._fail(f"API budget: {exc}")
        except SalesforceUnavailable as exc:
            self._fail(f"Salesforce: {exc}")
        except RequestRejected as exc:
            self._fail(f"Salesforce refused a request: {exc}")
        except USER_FACING_ERRORS as exc:
            # Their messages are written for the user (what, where, why); a traceback would only bury them.
            self._fail(str(exc))
        except Exception as exc:  # reported as a failed flow with its message; the run goes on to the next flow
            log.exception("flow %s failed", self.flow.flow)
            self._fail(f"{type(exc).__name__}: {exc}")
        self.result.duration_s = round(time.monotonic() - started, 3)
        self.result.api_calls_used = self.client.usage.calls - calls_before
        self.result.api_remaining = self.client.usage.remaining
        # The run history gets the final summary once, whether the flow succeeded or failed.
        if self.run_id is not None:
            self.state.finish_run(self.run_id, self.result.to_dict())
        return self.result

    def _fail(self, message: str) -> None:
        self.result.status = "failed"
        self.result.error = message

    def _run_locked(self) -> None:
        flow = self.flow
        describe = self.client.describe(flow.target.object)
        parents = {
            link.parent_object: self.client.describe(link.parent_object)
            for link in flow.parent_links
            if link.parent_object
        }
        cursor_before = None if self.full else self.state.get_cursor(flow.flow)
        self.result.cursor_before = None if cursor_before is None else str(cursor_before)
        query = build_extract_query(flow, cursor_value=cursor_before)
        self.result.sql = query.sql
        self.result.sql_params = dict(query.params)
        tracker = _CursorTracker(flow.source.cursor)
        connection = self.mappings.connections[flow.source.connection]
        # One chunk's load may be in flight while the next chunk is prepared (never two jobs at once). The
        # cursor moves only past chunks whose rows are all accounted for.
        in_flight: _InFlight | None = None
        with open_connection(connection) as conn:
            for frame in stream_frames(conn, query, chunk_rows=self.settings.chunk_rows,
                                       statement_timeout_s=connection.statement_timeout_s):
                self.result.extracted += frame.height
                changed = self._prepare_chunk(frame, describe, parents)
                tracker.observe(frame)
                if in_flight is not None:
                    self._complete(in_flight)
                    in_flight = None
                if changed is not None:
                    in_flight = self._submit(changed, describe, cursor_after=tracker.safe)
                elif not self.dry_run and tracker.safe is not None:
                    self.state.set_cursor(flow.flow, tracker.safe)
        if in_flight is not None:
            self._complete(in_flight)
        if not self.dry_run and tracker.last is not None:
            self.state.set_cursor(flow.flow, tracker.last)
        self.result.cursor_after = None if tracker.last is None else str(tracker.last)
        self._retry_held_back(describe)

    def _prepare_chunk(self, frame: pl.DataFrame, describe: ObjectDescribe,
                       parents: dict[str, ObjectDescribe]) -> pl.DataFrame | None:
        """Transform a chunk, keep its rejects, and return the rows to send (None when there are none)."""
        transformed = build_records(frame, self.flow, describe, parents)
        records = self._yield_owned_fields(transformed.records)
        rejects = list(transformed.rejects)
        records, cross_chunk = self._drop_keys_seen_earlier(records)
        rejects.extend(cross_chunk)
        self._keep_rejects(rejects)
        if records.height == 0:
            return None
        if self.full:
            changed = records
        else:
            keys = records.get_column(KEY_COLUMN).to_list()
            hashes = records.get_column(HASH_COLUMN).to_list()
            changed_keys = self.state.changed_keys(self.flow.flow, keys, hashes)
            changed = records.filter(pl.col(KEY_COLUMN).is_in(pl.Series(list(changed_keys), dtype=pl.Utf8).implode()))
        self.result.changed += changed.height
        if self.dry_run or changed.height == 0:
            return None
        return changed

    def _yield_owned_fields(self, records: pl.DataFrame) -> pl.DataFrame:
        """Leave fields owned by a flow of higher precedence as they are on records that flow has written.

        One Source of Record per field (mappings/ownership.yaml): a lower-precedence flow fills such a field
        only for records no flow ahead of it has written. An empty cell means "leave as is" in Bulk CSV and
        is left out of Collections JSON, so blanking is exactly "do not write". The row hash is recomputed
        so that the diff compares what this flow really sends.
        """
        yielded = self.mappings.yielded_fields(self.flow.flow)
        if not yielded or records.height == 0:
            return records
        keys = records.get_column(KEY_COLUMN)
        owned_by: dict[tuple[str, ...], set[str]] = {}
        blanks = []
        for target, ahead in yielded.items():
            if ahead not in owned_by:
                owned_by[ahead] = self.state.accepted_keys(ahead, keys)
            owned = pl.Series(list(owned_by[ahead]), dtype=pl.Utf8)
            blanks.append(pl.when(pl.col(KEY_COLUMN).is_in(owned.implode())).then(pl.lit(""))
                          .otherwise(pl.col(target)).alias(target))
        columns = [c for c in records.columns if not c.startswith("__")]
        return records.with_columns(blanks).with_columns(row_hash(columns).alias(HASH_COLUMN))

    def _drop_keys_seen_earlier(self, records: pl.DataFrame) -> tuple[pl.DataFrame, list[Reject]]:
        """A key already sent by an earlier chunk of this run is a duplicate; it is rejected, not sent twice."""
        keys = records.get_column(KEY_COLUMN).to_list()
        repeated = [k for k in keys if k in self.seen_keys]
        self.seen_keys.update(keys)
        if not repeated:
            return records, []
        dupes = records.filter(pl.col(KEY_COLUMN).is_in(pl.Series(repeated, dtype=pl.Utf8).implode()))
        rejects = [
            Reject(flow=self.flow.flow, key=row[KEY_COLUMN], code="DUPLICATE_EXTERNAL_ID",
                   message=f"{self.flow.target.external_id} {row[KEY_COLUMN]!r} appears more than once in the "
                           "source; the first occurrence was sent, this one was not",
                   field=self.flow.target.external_id, value=row[KEY_COLUMN], row=row)
            for row in dupes.to_dicts()
        ]
        return records.filter(~pl.col(KEY_COLUMN).is_in(pl.Series(repeated, dtype=pl.Utf8).implode())), rejects

    def _load(self, changed: pl.DataFrame, describe: ObjectDescribe) -> None:
        """Send rows and account for them before returning."""
        self._complete(self._submit(changed, describe, cursor_after=None))

    def _complete(self, in_flight: _InFlight) -> None:
        """Wait for a submitted load, account for every row, then move the cursor past its chunk."""
        self._account(in_flight.pending.finish(), in_flight.rows)
        if in_flight.cursor_after is not None and not self.dry_run:
            self.state.set_cursor(self.flow.flow, in_flight.cursor_after)

    def _submit(self, changed: pl.DataFrame, describe: ObjectDescribe, *, cursor_after: Any) -> _InFlight:
        """Check the API budget and submit the rows (Bulk jobs are not awaited here)."""
        target = self.flow.target
        options = LoadOptions(
            operation=target.operation,
            external_id=target.external_id,
            bulk_threshold=target.bulk_threshold or 2000,
            serial=target.serial,
            parent_sort_columns=[link.target for link in self.flow.parent_links],
            lock_retries=self.settings.lock_retries,
            retry_base_delay_s=self.settings.retry_base_delay_s,
            poll_s=self.settings.bulk_poll_s,
            job_timeout_s=self.settings.job_timeout_s,
        )
        estimate = 8 if changed.height >= options.bulk_threshold and not options.serial else -(-changed.height // 200)
        self.client.ensure_budget(estimate, self.settings.api_reserve,
                                  f"sending {changed.height} {target.object} rows of flow {self.flow.flow}")
        return _InFlight(start_load(self.client, target.object, changed, options, describe), changed, cursor_after)

    def _account(self, loaded: LoadResult, sent: pl.DataFrame) -> None:
        """Record what Salesforce accepted and keep every failure as a reject with its reason."""
        self.result.sent += sent.height
        self.result.created += loaded.created
        self.result.updated += loaded.updated
        self.result.bulk_job_ids.extend(loaded.bulk_job_ids)
        if loaded.mode not in self.result.load_modes:
            self.result.load_modes.append(loaded.mode)
        if self.run_id is not None:
            for job_id in loaded.bulk_job_ids:
                self.state.add_bulk_job(self.run_id, job_id, self.flow.target.object, self.flow.target.operation)
        failed_keys = pl.DataFrame({KEY_COLUMN: [o.key for o in loaded.failed]}, schema={KEY_COLUMN: pl.Utf8})
        accounted = pl.concat([loaded.accepted.select(KEY_COLUMN), failed_keys])
        unaccounted = sent.select(KEY_COLUMN).join(accounted, on=KEY_COLUMN, how="anti").get_column(KEY_COLUMN)
        if unaccounted.len():
            # Never silently lose a row: a row Salesforce said nothing about is a failure of the run.
            raise RuntimeError(
                f"Salesforce returned no result for {unaccounted.len()} rows (e.g. {unaccounted.head(3).to_list()}); "
                "they stay unsynced and will be sent again"
            )
        if loaded.accepted.height:
            ok = sent.join(loaded.accepted.select(KEY_COLUMN).unique(), on=KEY_COLUMN, how="semi")
            keys = ok.get_column(KEY_COLUMN)
            self.state.record_accepted(self.flow.flow, keys, ok.get_column(HASH_COLUMN))
            # Only keys held back earlier have a reject to clear; most accepted rows never had one.
            held = self._keys_with_rejects()
            if held:
                cleared = keys.filter(keys.is_in(pl.Series(list(held), dtype=pl.Utf8).implode())).to_list()
                if cleared:
                    self.state.clear_rejects(self.flow.flow, cleared)
                    held.difference_update(cleared)
        failed = loaded.failed
        if failed:
            rows = {r[KEY_COLUMN]: r for r in sent.filter(
                pl.col(KEY_COLUMN).is_in(pl.Series([o.key for o in failed], dtype=pl.Utf8).implode())).to_dicts()}
            rejects = []
            for outcome in failed:
                row = rows.get(outcome.key, {})
                rejects.append(Reject(
                    flow=self.flow.flow, key=outcome.key, code=outcome.code or "UNKNOWN_ERROR",
                    message=outcome.message or "",
                    field=outcome.fields or None,
                    value=str(row.get(outcome.fields)) if outcome.fields and outcome.fields in row else None,
                    row=row,
                ))
            self._keep_rejects(rejects)

    def _keys_with_rejects(self) -> set[str]:
        """Keys of the flow that have a reject kept in the state (read once per run, then kept current)."""
        if self._held_keys is None:
            self._held_keys = {r["key"] for r in self.state.rejects(self.flow.flow) if r.get("key") is not None}
        return self._held_keys

    def _keep_rejects(self, rejects: Iterable[Reject]) -> None:
        rejects = list(rejects)
        if not rejects:
            return
        if not self.dry_run:
            self._keys_with_rejects().update(r.key for r in rejects if r.key is not None)
        self.result.rejected += len(rejects)
        for reject in rejects[: max(0, PREVIEW_ROWS - len(self.result.rejects_preview))]:
            self.result.rejects_preview.append({
                "key": reject.key, "code": reject.code, "field": reject.field,
                "value": reject.value, "message": reject.message,
            })
        if not self.dry_run:
            self.state.put_rejects(self.flow.flow, rejects)

    def _retry_held_back(self, describe: ObjectDescribe) -> None:
        """Send again the rows held back for a reason that can clear, unless this run already handled them."""
        if self.dry_run:
            return
        pending = [
            r for r in self.state.rejects(self.flow.flow)
            if _retryable(r.get("code"), r.get("message"))
            and r.get("key") not in self.seen_keys
            and isinstance(r.get("row"), dict) and r["row"].get(KEY_COLUMN) is not None
        ]
        pending = self._parents_now_present(pending)
        if not pending:
            return
        rows = [{k: (None if v is None else str(v)) for k, v in r["row"].items()} for r in pending]
        frame = pl.DataFrame(rows, schema={k: pl.Utf8 for k in rows[0]})
        self.result.retried_rejects += frame.height
        # They were counted as rejects when first held back; this run counts what happens to them now.
        self._load(frame, describe)


    def _parents_now_present(self, pending: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Keep transient rejects, and missing-parent rejects whose parents exist in Salesforce now.

        Re-sending an orphan whose parent is still missing would only fail again and make a no-change
        re-sync send rows; one query per parent object tells which parents have arrived.
        """
        orphans = [r for r in pending if is_missing_parent(r.get("code"), r.get("message"))]
        if not orphans:
            return pending
        present: dict[str, set[str]] = {}
        for link in self.flow.parent_links:
            if not link.parent_object or not link.parent_external_id:
                continue
            wanted = {str(r["row"].get(link.target)) for r in orphans if r["row"].get(link.target)}
            present[link.target] = self._existing_keys(link.parent_object, link.parent_external_id, wanted)

        def ready(r: dict[str, Any]) -> bool:
            return all(not r["row"].get(col) or str(r["row"][col]) in keys for col, keys in present.items())

        return [r for r in pending if r not in orphans or ready(r)]

    def _existing_keys(self, object_name: str, field: str, values: set[str]) -> set[str]:
        """Which of `values` exist as `field` on `object_name` in Salesforce (SOQL, 200 values a query)."""
        found: set[str] = set()
        ordered = sorted(values)
        for start in range(0, len(ordered), 200):
            chunk = ordered[start:start + 200]
            literals = ", ".join(soql_literal(v) for v in chunk)
            records = self.client.query_all(f"SELECT {field} FROM {object_name} WHERE {field} IN ({literals})")
            found.update(str(r[field]) for r in records if r.get(field) is not None)
        return found


def soql_literal(value: str) -> str:
    """A SOQL string literal: backslash and quote escaped as SOQL requires."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
