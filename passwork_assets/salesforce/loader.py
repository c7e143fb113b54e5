"""Writing prepared records to Salesforce and accounting for every row.

Input: a Polars frame of Salesforce-ready strings (one column per field or `Relationship.ExtField` link, plus
the `__key` column holding each row's key). Output: for every input row exactly one `RowOutcome` —
written (with its Salesforce Id and whether it was created) or failed (with Salesforce's code and message).

Bulk API 2.0 above a threshold, sObject Collections below it or in serial mode. Rows are sorted by parent
key so that one parent's children travel together (children of one parent spread over parallel batches
cause UNABLE_TO_LOCK_ROW). Lock errors, unprocessed rows and transient failures are retried with backoff;
what still fails is returned as a failure, never dropped.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from passwork_assets.salesforce.client import RequestRejected, SalesforceClient
from passwork_assets.salesforce.describe import ObjectDescribe
from passwork_assets.transform import CLEAR as CLEAR_VALUE
from passwork_assets.transform import KEY_COLUMN

log = logging.getLogger(__name__)

# Bulk 2.0 takes at most 100 MB of CSV per upload; stay clear of the edge (the size is counted in bytes).
MAX_UPLOAD_BYTES = 95 * 1024 * 1024
COLLECTION_SIZE = 200
RETRYABLE_ROW_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "UNPROCESSED"})


@dataclass(frozen=True)
class LoadOptions:
    """How a flow's records travel to Salesforce."""

    operation: str  # upsert | update | insert
    external_id: str | None
    bulk_threshold: int = 2000
    serial: bool = False
    parent_sort_columns: Sequence[str] = ()
    lock_retries: int = 4
    retry_base_delay_s: float = 0.5
    poll_s: float = 1.0
    job_timeout_s: float = 3600.0


@dataclass(frozen=True)
class RowOutcome:
    """What happened to one row."""

    key: str
    success: bool
    sf_id: str | None = None
    created: bool = False
    code: str | None = None
    message: str | None = None
    fields: str | None = None


ACCEPTED_SCHEMA = {KEY_COLUMN: pl.Utf8, "sf_id": pl.Utf8, "created": pl.Boolean}


@dataclass
class LoadResult:
    """Every row sent, accounted for: the accepted ones as a frame (key, Salesforce Id, created), the
    failed ones with Salesforce's reasons, plus the Bulk jobs used."""

    accepted: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=ACCEPTED_SCHEMA))
    failed: list[RowOutcome] = field(default_factory=list)
    bulk_job_ids: list[str] = field(default_factory=list)
    mode: str = "none"

    @property
    def created(self) -> int:
        return int(self.accepted.get_column("created").sum())

    @property
    def updated(self) -> int:
        return self.accepted.height - self.created

    def add_accepted(self, frame: pl.DataFrame) -> None:
        self.accepted = pl.concat([self.accepted, frame.select(list(ACCEPTED_SCHEMA)).cast(ACCEPTED_SCHEMA)])


@dataclass
class _Attempt:
    """What one pass of sending produced."""

    accepted: pl.DataFrame
    failed: list[RowOutcome]


def data_columns(frame: pl.DataFrame) -> list[str]:
    """The columns that go to Salesforce (internal `__` columns stay behind)."""
    return [c for c in frame.columns if not c.startswith("__")]


def load_records(client: SalesforceClient, object_name: str, frame: pl.DataFrame, options: LoadOptions,
                 describe: ObjectDescribe) -> LoadResult:
    """Write `frame` to `object_name` and return one outcome per row (see module docstring)."""
    return start_load(client, object_name, frame, options, describe).finish()


@dataclass
class PendingLoad:
    """A load whose Bulk jobs are submitted and may still be processing; `finish()` waits and accounts.

    Splitting submit from finish lets the caller prepare its next chunk while Salesforce works on this one,
    without ever having two jobs of one object in flight (that would invite UNABLE_TO_LOCK_ROW).
    """

    client: SalesforceClient
    object_name: str
    frame: pl.DataFrame
    options: LoadOptions
    describe: ObjectDescribe
    result: LoadResult
    use_bulk: bool
    jobs: list[tuple[str, pl.DataFrame]] = field(default_factory=list)
    first: _Attempt | None = None

    def finish(self) -> LoadResult:
        """Wait for the submitted jobs, read every result, retry what can be retried, return the outcome."""
        attempt = self.first if self.first is not None else _collect_bulk(self.client, self.object_name, self.jobs,
                                                                          self.options)
        pending, result, options = self.frame, self.result, self.options
        for round_ in range(options.lock_retries + 1):
            if round_:
                attempt = (
                    _load_bulk(self.client, self.object_name, pending, options, result)
                    if self.use_bulk and pending.height >= options.bulk_threshold
                    else _load_collections(self.client, self.object_name, pending, options, self.describe)
                )
            result.add_accepted(attempt.accepted)
            retry = [o for o in attempt.failed if o.code in RETRYABLE_ROW_CODES]
            result.failed.extend(o for o in attempt.failed if o.code not in RETRYABLE_ROW_CODES)
            if not retry:
                return result
            if round_ == options.lock_retries:
                result.failed.extend(retry)
                return result
            delay = options.retry_base_delay_s * (2**round_)
            log.warning("%d %s rows hit %s; retrying them in %.1fs", len(retry), self.object_name,
                        ", ".join(sorted({o.code or "" for o in retry})), delay)
            time.sleep(delay)
            keys = pl.Series(KEY_COLUMN, [o.key for o in retry], dtype=pl.Utf8)
            pending = pending.filter(pl.col(KEY_COLUMN).is_in(keys.implode()))
        return result


def start_load(client: SalesforceClient, object_name: str, frame: pl.DataFrame, options: LoadOptions,
               describe: ObjectDescribe) -> PendingLoad:
    """Submit `frame`: Bulk jobs are created, uploaded and closed (not awaited); Collections run at once."""
    result = LoadResult()
    sort_by = [c for c in options.parent_sort_columns if c in frame.columns] + [KEY_COLUMN]
    ordered = frame.sort(sort_by, nulls_last=True)
    use_bulk = not options.serial and frame.height >= options.bulk_threshold
    result.mode = "bulk" if use_bulk else ("collections" if frame.height else "none")
    pending = PendingLoad(client, object_name, ordered, options, describe, result, use_bulk)
    if frame.height == 0:
        pending.first = _Attempt(pl.DataFrame(schema=ACCEPTED_SCHEMA), [])
    elif use_bulk:
        pending.jobs = _submit_bulk(client, object_name, ordered, options, result)
    else:
        pending.first = _load_collections(client, object_name, ordered, options, describe)
    return pending


# -- Bulk API 2.0 ---------------------------------------------------------------------------------------

def _csv_pieces(frame: pl.DataFrame) -> list[pl.DataFrame]:
    """Cut the frame into pieces whose CSV stays under the upload limit."""
    total_bytes = len(frame.head(min(frame.height, 2000)).write_csv().encode()) / max(1, min(frame.height, 2000))
    rows_per_piece = max(1, int(MAX_UPLOAD_BYTES / max(total_bytes, 1.0) * 0.9))
    return [frame.slice(offset, rows_per_piece) for offset in range(0, frame.height, rows_per_piece)]


def _submit_bulk(client: SalesforceClient, object_name: str, frame: pl.DataFrame, options: LoadOptions,
                 result: LoadResult) -> list[tuple[str, pl.DataFrame]]:
    """Create, upload and close one job per piece; returns (job id, piece) pairs, not yet awaited."""
    jobs: list[tuple[str, pl.DataFrame]] = []
    columns = data_columns(frame)
    for piece in _csv_pieces(frame):
        csv_text = piece.select(columns).write_csv(null_value="")
        job_id = client.bulk_create_job(object_name, options.operation, options.external_id)
        result.bulk_job_ids.append(job_id)
        try:
            client.bulk_upload(object_name, job_id, csv_text)
            client.bulk_close(object_name, job_id)
        except Exception:
            # Leave no job half-open in the org; the rows are retried by the caller or reported.
            client.bulk_abort(object_name, job_id)
            raise
        jobs.append((job_id, piece))
    return jobs


def _collect_bulk(client: SalesforceClient, object_name: str, jobs: list[tuple[str, pl.DataFrame]],
                  options: LoadOptions) -> _Attempt:
    """Wait for each submitted job and read its results."""
    accepted: list[pl.DataFrame] = []
    failed: list[RowOutcome] = []
    key_field = _key_field(options)
    for job_id, piece in jobs:
        info = client.bulk_wait(object_name, job_id, poll_s=options.poll_s, timeout_s=options.job_timeout_s)
        piece_accepted, piece_failed = _bulk_outcomes(client, object_name, job_id, info, piece, key_field)
        accepted.append(piece_accepted)
        failed.extend(piece_failed)
    return _Attempt(pl.concat(accepted) if accepted else pl.DataFrame(schema=ACCEPTED_SCHEMA), failed)


def _load_bulk(client: SalesforceClient, object_name: str, frame: pl.DataFrame, options: LoadOptions,
               result: LoadResult) -> _Attempt:
    return _collect_bulk(client, object_name, _submit_bulk(client, object_name, frame, options, result), options)


def _results_frame(text: str) -> pl.DataFrame:
    """A Bulk result CSV as all-text columns (an empty result has a header line or nothing at all)."""
    if not text.strip():
        return pl.DataFrame()
    return pl.read_csv(io.StringIO(text), infer_schema=False)


def _with_keys(results: pl.DataFrame, piece: pl.DataFrame, key_field: str) -> pl.DataFrame:
    """Attach each result row's `__key` through the key field's value (results may come in any order)."""
    if results.height == 0:
        return results.with_columns(pl.lit(None, dtype=pl.Utf8).alias(KEY_COLUMN))
    lookup = piece.select(pl.col(key_field).alias("__value"), KEY_COLUMN).unique("__value", keep="first")
    return results.join(lookup, left_on=key_field, right_on="__value", how="left").with_columns(
        pl.coalesce(KEY_COLUMN, pl.col(key_field)).alias(KEY_COLUMN))


def _bulk_outcomes(client: SalesforceClient, object_name: str, job_id: str, info: dict[str, Any],
                   piece: pl.DataFrame, key_field: str) -> tuple[pl.DataFrame, list[RowOutcome]]:
    """Read all three result sets and account for every row of the piece."""
    ok = _with_keys(_results_frame(client.bulk_results(object_name, job_id, "successfulResults")), piece, key_field)
    accepted = (ok.select(KEY_COLUMN, pl.col("sf__Id").alias("sf_id"),
                          (pl.col("sf__Created").str.to_lowercase() == "true").alias("created"))
                if ok.height else pl.DataFrame(schema=ACCEPTED_SCHEMA))
    failed: list[RowOutcome] = []
    bad = _with_keys(_results_frame(client.bulk_results(object_name, job_id, "failedResults")), piece, key_field)
    for key, error in (bad.select(KEY_COLUMN, "sf__Error").iter_rows() if bad.height else []):
        code, message, fields = parse_bulk_error(error or "")
        failed.append(RowOutcome(key=key, success=False, code=code, message=message, fields=fields))
    skipped = _with_keys(_results_frame(client.bulk_results(object_name, job_id, "unprocessedRecords")), piece,
                         key_field)
    state_note = f"not processed by Bulk job {job_id} ({info.get('state')}"
    state_note += f": {info['errorMessage']})" if info.get("errorMessage") else ")"
    failed.extend(RowOutcome(key=key, success=False, code="UNPROCESSED", message=state_note)
                  for key in (skipped.get_column(KEY_COLUMN).to_list() if skipped.height else []))
    seen = pl.concat([accepted.select(KEY_COLUMN),
                      pl.DataFrame({KEY_COLUMN: [o.key for o in failed]}, schema={KEY_COLUMN: pl.Utf8})])
    missing = piece.select(KEY_COLUMN).join(seen, on=KEY_COLUMN, how="anti").get_column(KEY_COLUMN).to_list()
    if missing:
        # A job that failed as a whole (header error, injected failure) may report rows nowhere: they were
        # not processed, so they are retried, then reported with the job's own error message.
        message = info.get("errorMessage") or f"Bulk job {job_id} ended {info.get('state')} without a result for the row"
        failed.extend(RowOutcome(key=k, success=False, code="UNPROCESSED", message=str(message)) for k in missing)
    return accepted, failed


def parse_bulk_error(text: str) -> tuple[str, str, str]:
    """Split Bulk 2.0's `sf__Error` (`CODE:message:fields --`) into code, message and fields."""
    body = text.strip()
    if body.endswith("--"):
        body = body[:-2].rstrip()
    code, sep, rest = body.partition(":")
    if not sep:
        return "UNKNOWN_ERROR", text.strip(), ""
    message, _, fields = rest.rpartition(":")
    if not _:
        return code, rest, ""
    return code, message, fields.strip()


def _key_field(options: LoadOptions) -> str:
    if options.operation == "update":
        return "Id"
    if not options.external_id:
        raise ValueError(f"a {options.operation} needs an External ID field to match results to rows")
    return options.external_id


# -- sObject Collections ---------------------------------------------------------------------------------

def json_record(row: dict[str, str | None], object_name: str, describe: ObjectDescribe) -> dict[str, Any]:
    """A Bulk-style string row as a Collections JSON record.

    Empty means "leave as is" (the key is left out), `#N/A` clears (null), parent links become nested
    objects, and numbers and booleans get their JSON types from the describe.
    """
    record: dict[str, Any] = {"attributes": {"type": object_name}}
    for column, value in row.items():
        if column.startswith("__") or value is None or value == "":
            continue
        if "." in column:
            relationship, _, ext_field = column.partition(".")
            record[relationship] = None if value == CLEAR_VALUE else {ext_field: value}
            continue
        if value == CLEAR_VALUE:
            record[column] = None
            continue
        described = describe.field(column)
        kind = described.type if described is not None else "string"
        if kind in ("double", "currency", "percent"):
            record[column] = float(value)
        elif kind == "int":
            record[column] = int(value)
        elif kind == "boolean":
            record[column] = value.lower() == "true"
        else:
            record[column] = value
    return record


def _load_collections(client: SalesforceClient, object_name: str, frame: pl.DataFrame, options: LoadOptions,
                      describe: ObjectDescribe) -> _Attempt:
    outcomes: list[RowOutcome] = []
    rows = frame.to_dicts()
    for start in range(0, len(rows), COLLECTION_SIZE):
        batch = rows[start:start + COLLECTION_SIZE]
        records = [json_record(row, object_name, describe) for row in batch]
        body = {"allOrNone": False, "records": records}
        if options.operation == "upsert":
            path, method = f"composite/sobjects/{object_name}/{options.external_id}", "PATCH"
        elif options.operation == "update":
            path, method = "composite/sobjects", "PATCH"
        else:
            path, method = "composite/sobjects", "POST"
        try:
            answers = client.restful(f"{options.operation} {len(records)} {object_name}", path, method, json=body)
        except RequestRejected as exc:
            # The whole request was refused (not a per-row error): every row of it fails with that reason.
            outcomes.extend(RowOutcome(key=str(r[KEY_COLUMN]), success=False, code=exc.code, message=exc.message)
                            for r in batch)
            continue
        if not isinstance(answers, list) or len(answers) != len(batch):
            raise RequestRejected("UNEXPECTED_RESPONSE",
                                  f"sObject Collections answered {len(answers) if isinstance(answers, list) else answers!r}"
                                  f" results for {len(batch)} records")
        for row, answer in zip(batch, answers):
            key = str(row[KEY_COLUMN])
            if answer.get("success"):
                created = bool(answer.get("created", options.operation == "insert"))
                outcomes.append(RowOutcome(key=key, success=True, sf_id=answer.get("id"), created=created))
            else:
                errors = answer.get("errors") or [{}]
                first = errors[0]
                outcomes.append(RowOutcome(
                    key=key, success=False, code=str(first.get("statusCode") or first.get("errorCode") or "UNKNOWN_ERROR"),
                    message=str(first.get("message", "")), fields=",".join(first.get("fields") or []),
                ))
    accepted = pl.DataFrame(
        [(o.key, o.sf_id, o.created) for o in outcomes if o.success], schema=ACCEPTED_SCHEMA, orient="row")
    return _Attempt(accepted, [o for o in outcomes if not o.success])
