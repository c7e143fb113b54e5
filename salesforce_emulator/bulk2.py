"""Bulk API 2.0: ingest jobs (``/jobs/ingest``) and query jobs (``/jobs/query``), as real Salesforce answers them.

Shapes follow the wire notes §1.3 and §3 (recorded job infos of amp-labs/connectors and heroku-applink).
An ingest job's upload is streamed to a file in the data folder; closing the job (``UploadComplete``) hands it
to a background worker that reads the CSV in 10,000-row chunks (Salesforce's internal batch size, each one
counted against ``DailyBulkApiBatches``) and writes them through ``Org.write_table`` (``write_many``'s checks),
the same validation as REST. Results are CSV files next to the upload; job infos live in SQLite, so a
restarted emulator still answers for earlier jobs.

Decisions the wire notes mark UNCONFIRMED are named in comments where they are made.
"""

from __future__ import annotations

import base64
import csv
import io
import itertools
import json
import logging
import queue
import shutil
import sqlite3
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from salesforce_emulator.context import EmulatorContext
from salesforce_emulator.errors import RecordError, SalesforceError, not_found
from salesforce_emulator.faults import Faults
from salesforce_emulator.ids import make_id
from salesforce_emulator.limits import Limits
from salesforce_emulator.org import Org, WriteOutcome
from salesforce_emulator.responses import STANDARD_HEADERS, sf_json, sf_no_content
from salesforce_emulator.routing import api_version, read_json_object
from salesforce_emulator.soql import run_query, validate_query
from salesforce_emulator.values import now_datetime

log = logging.getLogger(__name__)

INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
QUERY_OPERATIONS = ("query", "queryAll")
DELIMITERS = {"BACKQUOTE": "`", "CARET": "^", "COMMA": ",", "PIPE": "|", "SEMICOLON": ";", "TAB": "\t"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
# Salesforce splits an ingest job into internal batches of 10,000 records; each counts as one Bulk batch.
CHUNK_ROWS = 10_000
# 150 MB of base64 per upload is about 100 MB of raw CSV (wire notes §3).
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
TERMINAL_STATES = ("JobComplete", "Failed", "Aborted")
# Job list pages (GET /jobs/ingest) hold up to 1,000 jobs.
LIST_PAGE_SIZE = 1000
DEFAULT_QUERY_PAGE = 1_000_000
CSV_TYPE = "text/csv"
JOB_SERIAL_START = 62**5 * 11


def _state_error(message: str) -> SalesforceError:
    return SalesforceError(400, "INVALIDJOBSTATE", message)


def _invalid_job(message: str) -> SalesforceError:
    return SalesforceError(400, "INVALIDJOB", message)


def _field_not_found(name: str) -> str:
    # Recorded errorMessage of a job failed by its header (amp-labs bulk/info/complete-failure.json).
    return f"InvalidBatch : Field name not found : {name}"


# Words real Salesforce uses for a state in INVALIDJOBSTATE messages ("Aborting already Completed Job not allowed").
_STATE_WORDS = {"JobComplete": "Completed", "Failed": "Failed", "Aborted": "Aborted"}


@dataclass
class Job:
    """One Bulk 2.0 job (ingest or query) and its counters; persisted as JSON."""

    id: str
    kind: str  # ingest | query
    operation: str
    object: str
    created_by: str
    created_date: str
    system_modstamp: str
    state: str
    api_version: str
    line_ending: str = "LF"
    column_delimiter: str = "COMMA"
    content_type: str = "CSV"
    external_id_field: str | None = None
    query: str | None = None
    uploaded: bool = False
    processed: int = 0
    failed: int = 0
    retries: int = 0
    total_ms: int = 0
    api_active_ms: int = 0
    error_message: str | None = None
    seq: int = 0

    @property
    def delimiter(self) -> str:
        return DELIMITERS[self.column_delimiter]

    @property
    def newline(self) -> str:
        return LINE_ENDINGS[self.line_ending]

    def _head(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": self.created_by,
            "createdDate": self.created_date,
            "systemModstamp": self.system_modstamp,
            "state": self.state,
        }

    def _api_version(self) -> float:
        # Real answers carry the version as a JSON number (60.0), not a string.
        return float(self.api_version)

    def created_json(self) -> dict[str, Any]:
        """The create answer (amp-labs write/launch-job-opportunity.json, bulk/read-launch-job-account.json)."""
        body = self.changed_json()  # the same leading keys, in the same order
        if self.kind == "ingest":
            # No leading slash, as recorded.
            body["contentUrl"] = f"services/data/v{self.api_version}/jobs/ingest/{self.id}/batches"
        body["lineEnding"] = self.line_ending
        body["columnDelimiter"] = self.column_delimiter
        return body

    def changed_json(self) -> dict[str, Any]:
        """The answer to a state change (amp-labs write/update-job-opportunity.json): no content settings."""
        body = self._head()
        if self.external_id_field:
            body["externalIdFieldName"] = self.external_id_field
        body["concurrencyMode"] = "Parallel"
        body["contentType"] = self.content_type
        body["apiVersion"] = self._api_version()
        return body

    def info_json(self) -> dict[str, Any]:
        """Job info, in the recorded key order (amp-labs bulk/info/*.json; heroku get-info-*.json for queries)."""
        body = self.changed_json()  # the same leading keys, in the same order
        body["jobType"] = "V2Ingest" if self.kind == "ingest" else "V2Query"
        body["lineEnding"] = self.line_ending
        body["columnDelimiter"] = self.column_delimiter
        body["numberRecordsProcessed"] = self.processed
        if self.kind == "ingest":
            body["numberRecordsFailed"] = self.failed
        body["retries"] = self.retries
        body["totalProcessingTime"] = self.total_ms
        if self.kind == "ingest":
            body["apiActiveProcessingTime"] = self.api_active_ms
            body["apexProcessingTime"] = 0
        if self.error_message is not None:
            body["errorMessage"] = self.error_message
        return body

    def list_json(self) -> dict[str, Any]:
        """A job as listed by GET /jobs/ingest (or /jobs/query)."""
        body = self.changed_json()
        body["jobType"] = "V2Ingest" if self.kind == "ingest" else "V2Query"
        body["lineEnding"] = self.line_ending
        body["columnDelimiter"] = self.column_delimiter
        return body


class JobStore:
    """Job infos in SQLite and each job's files in a folder of its own, both under the data folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(root / "jobs.sqlite", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, seq INTEGER, kind TEXT, info TEXT)")
        self._jobs: dict[str, Job] = {}
        for (info,) in self._db.execute("SELECT info FROM jobs ORDER BY seq"):
            job = Job(**json.loads(info))
            self._jobs[job.id] = job
        self._next_seq = max((job.seq for job in self._jobs.values()), default=0) + 1

    def new_seq(self) -> int:
        with self._lock:
            seq = self._next_seq
            self._next_seq += 1
            return seq

    def folder(self, job_id: str) -> Path:
        return self.root / job_id

    def save(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.id] = job
            self._db.execute(
                "INSERT OR REPLACE INTO jobs (id, seq, kind, info) VALUES (?, ?, ?, ?)",
                (job.id, job.seq, job.kind, json.dumps(asdict(job))),
            )

    def get(self, job_id: str, kind: str) -> Job | None:
        job = self._jobs.get(job_id)
        return job if job is not None and job.kind == kind else None

    def all(self, kind: str) -> list[Job]:
        return [job for job in self._jobs.values() if job.kind == kind]

    def delete(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)
            self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        shutil.rmtree(self.folder(job_id), ignore_errors=True)

    def close(self) -> None:
        self._db.close()


# ---------------------------------------------------------------------------------------------------------------
# CSV helpers


def _writer(handle: io.TextIOBase, job: Job, quoting: int = csv.QUOTE_MINIMAL) -> Any:
    return csv.writer(handle, delimiter=job.delimiter, lineterminator=job.newline, quoting=quoting)


def _quoted_row(values: list[str], delimiter: str, newline: str) -> str:
    return delimiter.join('"' + value.replace('"', '""') + '"' for value in values) + newline


class _ResultFiles:
    """The three result files of an ingest job, written as rows are processed."""

    def __init__(self, folder: Path, job: Job, header: list[str]) -> None:
        self.job = job
        self.header = header
        self.success = open(folder / "successfulResults.csv", "w", encoding="utf-8", newline="")
        self.failure = open(folder / "failedResults.csv", "w", encoding="utf-8", newline="")
        self.unprocessed = open(folder / "unprocessedRecords.csv", "w", encoding="utf-8", newline="")
        self.success_writer = _writer(self.success, job)
        self.unprocessed_writer = _writer(self.unprocessed, job)
        self.success_writer.writerow(["sf__Id", "sf__Created", *header])
        # failedResults as recorded (amp-labs bulk/info/partial-failure.csv): the sf__ names quoted, the original
        # header as uploaded, every value quoted.
        header_text = io.StringIO()
        _writer(header_text, job).writerow(header)
        self.failure.write(f'"sf__Id"{job.delimiter}"sf__Error"{job.delimiter}{header_text.getvalue()}')
        self.unprocessed_writer.writerow(header)

    def write(self, rows: list[list[str]], outcomes: list[WriteOutcome]) -> int:
        """Record processed rows; returns how many failed."""
        delimiter, newline = self.job.delimiter, self.job.newline
        failed = [(row, outcome) for row, outcome in zip(rows, outcomes) if outcome.error is not None]
        if not failed:
            self.success_writer.writerows([outcome.id, "true" if outcome.created else "false", *row]
                                          for row, outcome in zip(rows, outcomes))
            return 0
        self.success_writer.writerows([outcome.id, "true" if outcome.created else "false", *row]
                                      for row, outcome in zip(rows, outcomes) if outcome.error is None)
        self.failure.write("".join(
            _quoted_row([outcome.id or "", outcome.error.to_bulk(), *row], delimiter, newline)
            for row, outcome in failed))
        return len(failed)

    def write_unprocessed(self, rows: Iterator[list[str]]) -> None:
        self.unprocessed_writer.writerows(rows)

    def write_unprocessed_lines(self, upload: Path, first_line: int) -> None:
        """Copy the upload's physical lines from ``first_line`` (0-based, after the header) as they are."""
        with open(upload, encoding="utf-8-sig", newline="") as source:
            self.unprocessed.writelines(itertools.islice(source, first_line, None))

    def close(self) -> None:
        for handle in (self.success, self.failure, self.unprocessed):
            handle.close()


def _empty_results(folder: Path, job: Job, header: list[str] | None) -> None:
    """Result files for a job that processed nothing: header lines only (heroku bulk-api-ingest-empty*.json)."""
    files = _ResultFiles(folder, job, header or [])
    files.close()


class _JobFailure(Exception):
    """Ends a job as Failed with this errorMessage."""


def _header_problem(org: Org, job: Job, header: list[str]) -> str | None:
    """The errorMessage that fails the whole job because of its header, or None when the header is usable."""
    obj = org.schema.object(job.object)
    seen: set[str] = set()
    for column in header:
        name = column.strip()
        if name.lower() in seen:
            # UNCONFIRMED wording: Salesforce rejects a header naming a field twice.
            return f"InvalidBatch : Duplicate field name: {name}"
        seen.add(name.lower())
        if "." in name:
            relationship, _, parent_field = name.partition(".")
            target_name = None
            if ":" in relationship:  # polymorphic form ObjectType:Relationship.Field (UNCONFIRMED in the notes)
                target_name, _, relationship = relationship.partition(":")
            reference = obj.relationship(relationship)
            if reference is None or "." in parent_field:
                return _field_not_found(name)
            target_name = target_name or (reference.reference_to[0] if reference.reference_to else None)
            if target_name is None or not org.schema.has_object(target_name):
                return _field_not_found(name)
            target = org.schema.object(target_name)
            indexed = target.field(parent_field)
            if indexed is None or not (indexed.external_id or indexed.id_lookup):
                return _field_not_found(name)
            continue
        if obj.field(name) is None:
            return _field_not_found(name)
    if job.operation in ("delete", "hardDelete") and "id" not in seen:
        return _field_not_found("Id")  # UNCONFIRMED wording for a delete file without an Id column
    return None


# ---------------------------------------------------------------------------------------------------------------
# Processing


class Bulk2:
    """The Bulk 2.0 jobs of one emulator: their store, their worker threads, their processing."""

    def __init__(self, org: Org, root: Path, limits: Limits, faults: Faults, user_id: str) -> None:
        self.org = org
        self.limits = limits
        self.faults = faults
        self.user_id = user_id
        self.jobs = JobStore(root)
        self._ingest_queue: queue.Queue[str] = queue.Queue()
        self._query_queue: queue.Queue[str] = queue.Queue()
        self._aborts: set[str] = set()
        # Guards state changes made both by requests (close, abort) and by the workers.
        self._state_lock = threading.Lock()
        self._recover()
        for name, work, process in (("bulk2-ingest", self._ingest_queue, self._process_ingest),
                                    ("bulk2-query", self._query_queue, self._process_query)):
            threading.Thread(target=self._worker, args=(work, process), name=name, daemon=True).start()

    # -- life cycle ----------------------------------------------------------------------------------------

    def _recover(self) -> None:
        """After a restart: closed jobs are queued again; a job cut off while processing ends Failed."""
        for job in sorted(self.jobs.all("ingest") + self.jobs.all("query"), key=lambda j: j.seq):
            if job.kind == "query" and job.state in ("UploadComplete", "InProgress"):
                job.state = "UploadComplete"
                self.jobs.save(job)
                self._query_queue.put(job.id)
            elif job.kind == "ingest" and job.state == "UploadComplete":
                self._ingest_queue.put(job.id)
            elif job.kind == "ingest" and job.state == "InProgress":
                self._fail_interrupted(job)

    def _fail_interrupted(self, job: Job) -> None:
        folder = self.jobs.folder(job.id)
        with open(folder / "upload.csv", encoding="utf-8-sig", newline="") as source:
            reader = csv.reader(source, delimiter=job.delimiter)
            header = next(reader, [])
            for _ in range(job.processed):
                next(reader, None)
            with open(folder / "unprocessedRecords.csv", "w", encoding="utf-8", newline="") as target:
                writer = _writer(target, job)
                writer.writerow(header)
                writer.writerows(reader)
        self._finish(job, "Failed", "InternalServerError : processing was interrupted by a restart of the org")

    def _worker(self, work: queue.Queue[str], process: Callable[[str], None]) -> None:
        while True:
            job_id = work.get()
            try:
                process(job_id)
            except Exception:  # noqa: BLE001 - a crash ends the job as Failed, visibly, never as a success
                log.exception("Bulk 2.0 job %s failed", job_id)
                job = self.jobs.get(job_id, "ingest") or self.jobs.get(job_id, "query")
                if job is not None and job.state not in TERMINAL_STATES:
                    self._finish(job, "Failed", "InternalServerError : the job could not be processed; see the "
                                                "emulator log")

    def _finish(self, job: Job, state: str, error_message: str | None = None) -> None:
        if job.kind == "ingest":
            self._ensure_results(job)
        with self._state_lock:
            if job.state == "Aborted":
                return  # aborted meanwhile: the abort stands
            job.state = state
            job.error_message = error_message
            job.system_modstamp = now_datetime()
            self.jobs.save(job)

    def _ensure_results(self, job: Job) -> None:
        """Result files for a job that ended before its rows were read: every uploaded row is unprocessed."""
        folder = self.jobs.folder(job.id)
        if (folder / "successfulResults.csv").exists():
            return
        upload = folder / "upload.csv"
        header: list[str] = []
        if upload.exists():
            with open(upload, encoding="utf-8-sig", newline="", errors="replace") as source:
                header = next(csv.reader(io.StringIO(source.readline()), delimiter=job.delimiter), [])
        _empty_results(folder, job, header)
        if upload.exists():
            shutil.copyfile(upload, folder / "unprocessedRecords.csv")

    def _start(self, job_id: str, kind: str) -> Job | None:
        with self._state_lock:
            job = self.jobs.get(job_id, kind)
            if job is None or job.state != "UploadComplete":
                return None
            job.state = "InProgress"
            job.system_modstamp = now_datetime()
            self.jobs.save(job)
            return job

    # -- ingest ------------------------------------------------------------------------------------------

    def _process_ingest(self, job_id: str) -> None:
        job = self._start(job_id, "ingest")
        if job is None:
            return  # deleted or aborted while queued
        started = time.monotonic()
        folder = self.jobs.folder(job.id)
        upload = folder / "upload.csv"
        if not job.uploaded:
            # UNCONFIRMED: a job closed without data completes with nothing processed.
            _empty_results(folder, job, None)
            self._finish(job, "JobComplete")
            return
        fail_midway = self.faults.bulk_job_should_fail()
        try:
            self._check_line_ending(job, upload)
            with open(upload, encoding="utf-8-sig", newline="") as source:
                reader = csv.reader(source, delimiter=job.delimiter, strict=True)
                header = next(reader, None)
                if not header:
                    raise _JobFailure("ClientInputError : The CSV file has no header row")
                problem = _header_problem(self.org, job, header)
                if problem:
                    files = _ResultFiles(folder, job, header)
                    files.write_unprocessed(reader)
                    files.close()
                    raise _JobFailure(problem)
                files = _ResultFiles(folder, job, header)
                try:
                    self._ingest_rows(job, header, reader, files, started, fail_midway)
                finally:
                    files.close()
        except _JobFailure as failure:
            self._finish(job, "Failed", str(failure))
            return
        except UnicodeDecodeError as error:
            self._finish(job, "Failed", f"ClientInputError : The data is not valid UTF-8 (byte {error.start})")
            return
        except csv.Error as error:
            self._finish(job, "Failed", f"ClientInputError : Malformed CSV data: {error}")
            return

    def _check_line_ending(self, job: Job, upload: Path) -> None:
        with open(upload, "rb") as source:
            first_line = source.readline(1 << 20)
        if not first_line.endswith(b"\n"):
            return  # a single line without a line end is fine under either setting
        has_crlf = first_line.endswith(b"\r\n")
        if has_crlf != (job.line_ending == "CRLF"):
            # Real errorMessage when the data's line ends do not match the job's lineEnding.
            raise _JobFailure(
                f"ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is {job.line_ending}"
            )

    def _ingest_rows(self, job: Job, header: list[str], reader: Iterator[list[str]], files: _ResultFiles,
                     started: float, fail_midway: bool) -> None:
        width = len(header)
        keys = [name.strip() for name in header]
        chunks = 0
        while True:
            first_line = reader.line_num  # physical lines read so far, header included
            try:
                rows = list(itertools.islice(reader, CHUNK_ROWS))
            except csv.Error as error:
                # The rest of the file, from the first line of this chunk, is left unprocessed as uploaded.
                files.write_unprocessed_lines(self.jobs.folder(job.id) / "upload.csv", first_line)
                raise _JobFailure(f"ClientInputError : Malformed CSV data at line {reader.line_num}: {error}") \
                    from None
            if not rows:
                break
            aborted = job.id in self._aborts
            # A fault-injected failure strikes after the first internal batch (at once for a one-batch job), so
            # the rest of the rows are left unprocessed, as when Salesforce gives up on a job after its retries.
            give_up = fail_midway and (chunks >= 1 or len(rows) < CHUNK_ROWS)
            if aborted or give_up:
                files.write_unprocessed(iter(rows))
                files.write_unprocessed(reader)
                if aborted:
                    self._aborts.discard(job.id)
                    job.system_modstamp = now_datetime()
                    self.jobs.save(job)  # the PATCH already made it Aborted
                    return
                raise _JobFailure("InternalServerError : Failed to process the job after retries; the "
                                  "remaining records are unprocessed")  # UNCONFIRMED wording
            chunk_started = time.monotonic()
            self.limits.count("DailyBulkApiBatches")
            if all(len(row) == width for row in rows):
                outcomes = self.org.write_table(job.object, job.operation, keys, rows,
                                                external_id_field=job.external_id_field)
            else:
                outcomes = self._write_ragged(job, keys, rows)
            job.failed += files.write(rows, outcomes)
            job.processed += len(rows)
            chunks += 1
            job.api_active_ms += int((time.monotonic() - chunk_started) * 1000)
            job.total_ms = int((time.monotonic() - started) * 1000)
            job.system_modstamp = now_datetime()
            self.jobs.save(job)
        if job.id in self._aborts:
            self._aborts.discard(job.id)
            return
        if fail_midway:
            raise _JobFailure("InternalServerError : Failed to process the job after retries")  # UNCONFIRMED
        job.total_ms = int((time.monotonic() - started) * 1000)
        self._finish(job, "JobComplete")

    def _write_ragged(self, job: Job, keys: list[str], rows: list[list[str]]) -> list[WriteOutcome]:
        """A chunk with rows whose column count differs from the header's: those rows fail, the rest are written."""
        width = len(keys)
        outcomes = [
            WriteOutcome(None, False, RecordError(
                "INVALID_FIELD", f"Row has {len(row)} columns, the header has {width}", []))  # UNCONFIRMED wording
            if len(row) != width else None
            for row in rows
        ]
        good = [i for i, row in enumerate(rows) if len(row) == width]
        if good:
            written = self.org.write_table(job.object, job.operation, keys, [rows[i] for i in good],
                                           external_id_field=job.external_id_field)
            for i, outcome in zip(good, written):
                outcomes[i] = outcome
        return [outcome for outcome in outcomes if outcome is not None]

    # -- query -------------------------------------------------------------------------------------------

    def _process_query(self, job_id: str) -> None:
        job = self._start(job_id, "query")
        if job is None:
            return
        started = time.monotonic()
        folder = self.jobs.folder(job.id)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            result = run_query(self.org, job.query or "", include_deleted=job.operation == "queryAll")
        except SalesforceError as error:
            self._finish(job, "Failed", f"{error.error_code} : {error.message}")
            return
        offsets = array("Q")
        position = 0
        delimiter, newline = job.delimiter, job.newline
        with open(folder / "results.csv", "wb") as target:
            head = _quoted_row(result.columns, delimiter, newline).encode("utf-8")
            target.write(head)
            position = len(head)
            for row in result.csv_rows():
                line = _quoted_row(row, delimiter, newline).encode("utf-8")
                offsets.append(position)
                position += len(line)
                target.write(line)
        offsets.append(position)
        with open(folder / "offsets.bin", "wb") as target:
            offsets.tofile(target)
        if job.id in self._aborts:
            self._aborts.discard(job.id)
            return
        self.limits.count("DailyBulkV2QueryFileStorageMB", max(1, -(-position // (1024 * 1024))))
        job.processed = len(offsets) - 1
        job.total_ms = int((time.monotonic() - started) * 1000)
        self._finish(job, "JobComplete")

    # -- requests ----------------------------------------------------------------------------------------

    def _new_job(self, kind: str, body: dict[str, Any], api_version: str) -> Job:
        seq = self.jobs.new_seq()
        now = now_datetime()
        return Job(
            id=make_id("750", JOB_SERIAL_START + seq), kind=kind, operation=body["operation"], object=body["object"],
            created_by=self.user_id, created_date=now, system_modstamp=now, state="Open", api_version=api_version,
            line_ending=body.get("lineEnding") or "LF", column_delimiter=body.get("columnDelimiter") or "COMMA",
            external_id_field=body.get("externalIdFieldName"), query=body.get("query"), seq=seq,
        )

    def create_ingest(self, body: dict[str, Any], api_version: str) -> Job:
        operation = body.get("operation")
        object_name = body.get("object")
        if not object_name:
            raise _invalid_job("Object is required")  # UNCONFIRMED wording
        if operation not in INGEST_OPERATIONS:
            raise _invalid_job(f"Invalid value for operation: {operation}")  # UNCONFIRMED wording
        self._check_content_settings(body)
        if not self.org.schema.has_object(str(object_name)):
            raise _invalid_job(f"Unable to find object: {object_name}")
        obj = self.org.schema.object(str(object_name))
        body = dict(body, object=obj.name)
        external_id = body.get("externalIdFieldName")
        if operation == "upsert":
            if not external_id:
                raise _invalid_job(
                    f"External ID was blank for {obj.name}. An External ID must be specified for upsert."
                )
            external = obj.field(str(external_id))
            if external is None or not (external.external_id or external.id_lookup):
                raise _invalid_job(
                    f"Field name provided, {external_id} does not match an External ID, Salesforce Id, or indexed "
                    f"field for {obj.name}"
                )
            body["externalIdFieldName"] = external.name
        else:
            body.pop("externalIdFieldName", None)
        job = self._new_job("ingest", body, api_version)
        self.jobs.folder(job.id).mkdir(parents=True, exist_ok=True)
        self.jobs.save(job)
        return job

    @staticmethod
    def _check_content_settings(body: dict[str, Any]) -> None:
        if body.get("contentType") not in (None, "CSV"):
            raise _invalid_job(f"Invalid value for contentType: {body.get('contentType')}")  # UNCONFIRMED wording
        if body.get("columnDelimiter") not in (None, *DELIMITERS):
            raise _invalid_job(f"Invalid value for columnDelimiter: {body.get('columnDelimiter')}")
        if body.get("lineEnding") not in (None, *LINE_ENDINGS):
            raise _invalid_job(f"Invalid value for lineEnding: {body.get('lineEnding')}")

    async def upload(self, job: Job, request: Request) -> None:
        if job.state != "Open":
            raise _state_error(f"Job {job.id} is not Open (state: {job.state}); data can only be uploaded to an "
                               "Open job")  # UNCONFIRMED wording
        if job.uploaded:
            # Real wording for a second PUT on one job.
            raise _state_error(
                f"Found multiple contents for job: <{job.id}>, please 'Close' / 'Abort' / 'Delete' the current Job "
                "then create a new Job and make sure you only do 'PUT' once on a given Job."
            )
        folder = self.jobs.folder(job.id)
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / "upload.partial"
        size = 0
        with open(partial, "wb") as target:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_UPLOAD_BYTES:
                    break
                target.write(chunk)
        if size > MAX_UPLOAD_BYTES:
            partial.unlink()
            # UNCONFIRMED: status and code for an upload over the per-request limit.
            raise SalesforceError(413, "REQUEST_ENTITY_TOO_LARGE",
                                  "The upload exceeds the maximum of 150 MB of base64-encoded data per request "
                                  "(about 100 MB of CSV); split the data into several jobs")
        partial.rename(folder / "upload.csv")
        job.uploaded = True
        job.system_modstamp = now_datetime()
        self.jobs.save(job)

    def change_state(self, job: Job, body: dict[str, Any]) -> Job:
        with self._state_lock:
            return self._change_state(job, body.get("state"))

    def _change_state(self, job: Job, wanted: Any) -> Job:
        if wanted == "UploadComplete" and job.kind == "ingest":
            if job.state != "Open":
                raise _state_error(f"Closing already {_STATE_WORDS.get(job.state, job.state)} Job not allowed")
            job.state = "UploadComplete"
            job.system_modstamp = now_datetime()
            self.jobs.save(job)
            self._ingest_queue.put(job.id)
            return job
        if wanted == "Aborted":
            if job.state in TERMINAL_STATES:
                raise _state_error(f"Aborting already {_STATE_WORDS[job.state]} Job not allowed")
            was = job.state
            job.state = "Aborted"
            job.system_modstamp = now_datetime()
            self.jobs.save(job)
            if was == "InProgress":
                self._aborts.add(job.id)
            elif job.kind == "ingest":
                self._ensure_results(job)
            return job
        raise _state_error(f"Invalid state transition requested: {wanted}")  # UNCONFIRMED wording

    def create_query(self, body: dict[str, Any], api_version: str) -> Job:
        operation = body.get("operation")
        if operation not in QUERY_OPERATIONS:
            raise _invalid_job(f"Invalid value for operation: {operation}")  # UNCONFIRMED wording
        self._check_content_settings(body)
        soql = body.get("query")
        if not isinstance(soql, str) or not soql.strip():
            raise _invalid_job("Query is required")  # UNCONFIRMED wording
        # The query is checked when the job is created, with the REST query errors (UNCONFIRMED for Bulk).
        object_name, is_aggregate = validate_query(self.org, soql)
        if is_aggregate:
            # Bulk API 2.0 does not run aggregate queries (doc: bulk query limitations). UNCONFIRMED wording.
            raise _invalid_job("Aggregate queries (COUNT, SUM, GROUP BY ...) are not supported by Bulk API 2.0 "
                               "query jobs")
        self.limits.count("DailyBulkV2QueryJobs")
        job = self._new_job("query", dict(body, object=object_name), api_version)
        job.state = "UploadComplete"
        self.jobs.save(job)
        self._query_queue.put(job.id)
        return job

    def query_results(self, job: Job, max_records: int, locator: str | None) -> tuple[bytes, int, str]:
        """One page of a completed query job: CSV bytes (with the header), record count and next locator."""
        if job.state != "JobComplete":
            raise SalesforceError(
                412, "JOB_NOT_COMPLETE",
                "can only download query results of successfully completed bulk job",
            )
        folder = self.jobs.folder(job.id)
        total = job.processed
        start = 0
        if locator:
            try:
                start = int(base64.b64decode(locator + "=" * (-len(locator) % 4)).decode("ascii"))
            except ValueError:
                raise SalesforceError(400, "INVALIDLOCATOR", f"Invalid locator: {locator}") from None
            if not 0 <= start <= total:
                raise SalesforceError(400, "INVALIDLOCATOR", f"Invalid locator: {locator}")
        stop = min(total, start + max_records)
        offsets = array("Q")
        with open(folder / "offsets.bin", "rb") as source:
            source.seek(start * offsets.itemsize)
            offsets.fromfile(source, stop - start + 1)
        with open(folder / "results.csv", "rb") as source:
            header = source.readline()
            source.seek(offsets[0])
            body = source.read(offsets[-1] - offsets[0])
        # Locators are opaque base64 text, like the recorded MjAwMDAw ("200000").
        next_locator = base64.b64encode(str(stop).encode()).decode().rstrip("=") if stop < total else "null"
        return header + body, stop - start, next_locator

    def delete(self, job: Job) -> None:
        if job.state in ("Open", "InProgress") and not (job.kind == "query" and job.state == "Open"):
            # Doc: a job can be deleted in state UploadComplete, JobComplete, Aborted or Failed. UNCONFIRMED wording.
            raise _state_error(f"Deleting a job in state {job.state} is not allowed")
        self.jobs.delete(job.id)


# ---------------------------------------------------------------------------------------------------------------
# Routes


def _csv_headers() -> dict[str, str]:
    # Exactly "text/csv", as recorded; starlette would otherwise append "; charset=utf-8".
    return {**STANDARD_HEADERS, "Content-Type": CSV_TYPE}


def _csv_response(path: Path) -> Response:
    return FileResponse(path, headers=_csv_headers())


def routes(ctx: EmulatorContext) -> list[BaseRoute]:
    """The /jobs/ingest and /jobs/query resources."""
    bulk = Bulk2(ctx.org, ctx.config.data_dir / "bulk2", ctx.limits, ctx.faults, ctx.config.user_id)

    def job_of(request: Request, kind: str) -> Job:
        api_version(request, ctx)
        job = bulk.jobs.get(request.path_params["job_id"], kind)
        if job is None:
            raise not_found()
        return job

    async def create_ingest(request: Request) -> Response:
        version = api_version(request, ctx)
        job = bulk.create_ingest(await read_json_object(request), version)
        return sf_json(job.created_json())

    async def create_query(request: Request) -> Response:
        version = api_version(request, ctx)
        job = bulk.create_query(await read_json_object(request), version)
        return sf_json(job.created_json())

    def list_jobs(kind: str) -> Any:
        async def endpoint(request: Request) -> Response:
            version = api_version(request, ctx)
            jobs = sorted(bulk.jobs.all(kind), key=lambda j: j.seq)
            job_type = request.query_params.get("jobType")
            if job_type:
                jobs = [job for job in jobs if job_type in ("V2Ingest" if kind == "ingest" else "V2Query",)]
            start = 0
            locator = request.query_params.get("queryLocator")
            if locator and locator.isdigit():
                start = int(locator)
            page = jobs[start:start + LIST_PAGE_SIZE]
            more = start + LIST_PAGE_SIZE < len(jobs)
            return sf_json({
                "done": not more,
                "records": [job.list_json() for job in page],
                "nextRecordsUrl": f"/services/data/v{version}/jobs/{kind}?queryLocator={start + LIST_PAGE_SIZE}"
                if more else None,
            })

        return endpoint

    def job_resource(kind: str) -> Any:
        async def endpoint(request: Request) -> Response:
            job = job_of(request, kind)
            if request.method == "GET":
                return sf_json(job.info_json())
            if request.method == "PATCH":
                changed = bulk.change_state(job, await read_json_object(request))
                return sf_json(changed.changed_json() if kind == "ingest" else changed.created_json())
            bulk.delete(job)
            return sf_no_content()

        return endpoint

    async def upload(request: Request) -> Response:
        job = job_of(request, "ingest")
        await bulk.upload(job, request)
        return Response(status_code=201, headers=dict(STANDARD_HEADERS))

    def results(name: str) -> Any:
        async def endpoint(request: Request) -> Response:
            job = job_of(request, "ingest")
            if job.state not in TERMINAL_STATES:
                # UNCONFIRMED: results are only given for a job that has finished.
                raise _state_error(f"Results are not available while the job is {job.state}")
            return _csv_response(bulk.jobs.folder(job.id) / f"{name}.csv")

        return endpoint

    async def query_results(request: Request) -> Response:
        job = job_of(request, "query")
        max_text = request.query_params.get("maxRecords")
        if max_text is not None and (not max_text.isdigit() or int(max_text) < 1):
            raise SalesforceError(400, "INVALIDJOB", f"Invalid value for maxRecords: {max_text}")  # UNCONFIRMED
        max_records = int(max_text) if max_text else DEFAULT_QUERY_PAGE
        body, count, locator = bulk.query_results(job, max_records, request.query_params.get("locator"))
        headers = _csv_headers()
        headers["Sforce-NumberOfRecords"] = str(count)
        headers["Sforce-Locator"] = locator
        return Response(body, headers=headers)

    base = "/services/data/v{version}/jobs"
    ingest_job = f"{base}/ingest/{{job_id}}"
    query_job = f"{base}/query/{{job_id}}"
    table: list[BaseRoute] = [
        Route(f"{base}/ingest", create_ingest, methods=["POST"]),
        Route(f"{base}/ingest/", create_ingest, methods=["POST"]),
        Route(f"{base}/ingest", list_jobs("ingest"), methods=["GET"]),
        Route(f"{base}/ingest/", list_jobs("ingest"), methods=["GET"]),
        Route(ingest_job, job_resource("ingest"), methods=["GET", "PATCH", "DELETE"]),
        Route(f"{ingest_job}/", job_resource("ingest"), methods=["GET", "PATCH", "DELETE"]),
        Route(f"{ingest_job}/batches", upload, methods=["PUT"]),
        Route(f"{ingest_job}/batches/", upload, methods=["PUT"]),
        Route(f"{base}/query", create_query, methods=["POST"]),
        Route(f"{base}/query/", create_query, methods=["POST"]),
        Route(f"{base}/query", list_jobs("query"), methods=["GET"]),
        Route(f"{base}/query/", list_jobs("query"), methods=["GET"]),
        Route(query_job, job_resource("query"), methods=["GET", "PATCH", "DELETE"]),
        Route(f"{query_job}/", job_resource("query"), methods=["GET", "PATCH", "DELETE"]),
        Route(f"{query_job}/results", query_results, methods=["GET"]),
        Route(f"{query_job}/results/", query_results, methods=["GET"]),
    ]
    # simple-salesforce asks for unprocessedRecords, the documentation names unprocessedrecords: serve both.
    for path_name, file_name in (("successfulResults", "successfulResults"), ("failedResults", "failedResults"),
                                 ("unprocessedrecords", "unprocessedRecords"),
                                 ("unprocessedRecords", "unprocessedRecords")):
        table.append(Route(f"{ingest_job}/{path_name}", results(file_name), methods=["GET"]))
        table.append(Route(f"{ingest_job}/{path_name}/", results(file_name), methods=["GET"]))
    return table
