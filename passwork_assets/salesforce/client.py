"""The one door to Salesforce: login, describe cache, API accounting, retries, and the raw Bulk 2.0 calls.

Everything goes through unmodified simple-salesforce. Bulk 2.0 jobs are driven step by step through the
per-object `_Bulk2Client` that `sf.bulk2.<Object>` carries, rather than the one-shot `upsert()` helper,
because the helper loses the job id when a job fails and never reads per-row failures; Passwork needs the id
for the audit trail and must read failedResults and unprocessedRecords every time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from passwork_assets.salesforce.describe import ObjectDescribe, ObjectNotFound
from passwork_assets.salesforce.settings import SalesforceSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

TERMINAL_JOB_STATES = frozenset({"JobComplete", "Failed", "Aborted"})


class SalesforceUnavailable(RuntimeError):
    """Salesforce could not be reached or refused the login; the message says what to check (never a secret)."""


class ApiBudgetExhausted(RuntimeError):
    """The org's daily API budget would fall below the configured reserve; nothing more is sent."""


class RequestRejected(RuntimeError):
    """Salesforce answered a request with a permanent error (not a per-row error): code and message kept."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for transient failures: 5xx answers, dropped connections, expired sessions, row locks."""

    attempts: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff for the given (0-based) retry."""
        return min(self.max_delay_s, self.base_delay_s * (2**attempt))


@dataclass
class ApiUsage:
    """API calls this client made, and the org's daily budget as last reported by Salesforce."""

    calls: int = 0
    calls_by_kind: dict[str, int] = field(default_factory=dict)
    used: int | None = None
    limit: int | None = None

    @property
    def remaining(self) -> int | None:
        if self.used is None or self.limit is None:
            return None
        return self.limit - self.used


def _error_items(exc: SalesforceError) -> list[dict[str, Any]]:
    content = exc.content
    if isinstance(content, list):
        return [item for item in content if isinstance(item, dict)]
    if isinstance(content, dict):
        return [content]
    return []


def error_code_and_message(exc: SalesforceError) -> tuple[str, str]:
    """The first errorCode/message of a simple-salesforce exception, or the status when there is no JSON body."""
    for item in _error_items(exc):
        code = item.get("errorCode") or item.get("statusCode")
        if code:
            return str(code), str(item.get("message", ""))
    body = exc.content.decode(errors="replace") if isinstance(exc.content, bytes) else str(exc.content)
    return f"HTTP_{exc.status}", body[:500]


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, requests.exceptions.SSLError):
        return False  # a certificate problem does not fix itself; retrying only delays the message
    if isinstance(exc, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)):
        return True
    if isinstance(exc, SalesforceGeneralError):
        return exc.status >= 500
    if isinstance(exc, SalesforceMalformedRequest):
        code, _ = error_code_and_message(exc)
        return code == "UNABLE_TO_LOCK_ROW"
    return False


class PinnedCASession(requests.Session):
    """A requests session that trusts exactly the CA bundle it was given.

    requests lets `REQUESTS_CA_BUNDLE` / `CURL_CA_BUNDLE` from the environment override `Session.verify`
    (psf/requests#3829), which would silently drop a configured `SALESFORCE_CA_BUNDLE`.
    """

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if isinstance(self.verify, str) and verify in (None, True):
            settings["verify"] = self.verify
        return settings


class SalesforceClient:
    """A logged-in connection to one org, shared by every flow of a run."""

    def __init__(self, settings: SalesforceSettings, *, retry: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.retry = retry or RetryPolicy()
        self.usage = ApiUsage()
        self._describes: dict[str, ObjectDescribe] = {}
        self.session = PinnedCASession()
        if settings.ca_bundle:
            self.session.verify = settings.ca_bundle
        # Every HTTP exchange with the org counts against its daily budget; a response hook sees them all,
        # including the Bulk 2.0 calls that bypass simple-salesforce's own Sforce-Limit-Info parsing.
        self.session.hooks["response"].append(self._observe_response)
        self.sf = self._login()

    # -- login -------------------------------------------------------------------------------------------

    def _login(self) -> Salesforce:
        s = self.settings
        common: dict[str, Any] = {"version": s.api_version, "session": self.session}
        try:
            flow = s.flow
            if flow == "direct":
                assert s.access_token is not None
                return Salesforce(instance_url=s.instance_url, session_id=s.access_token.get_secret_value(), **common)
            if flow == "password":
                assert s.password is not None
                return Salesforce(
                    username=s.username,
                    password=s.password.get_secret_value(),
                    security_token=s.security_token.get_secret_value() if s.security_token else "",
                    domain=s.domain,
                    **common,
                )
            assert s.consumer_secret is not None
            return Salesforce(
                consumer_key=s.consumer_key,
                consumer_secret=s.consumer_secret.get_secret_value(),
                domain=s.domain,
                **common,
            )
        except SalesforceAuthenticationFailed as exc:
            # exc.message carries Salesforce's own fault text (e.g. INVALID_LOGIN), never the credentials.
            raise SalesforceUnavailable(
                f"Salesforce refused the login at {s.describe_target()}: {exc.code}: {exc.message}"
            ) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            if isinstance(exc, requests.exceptions.SSLError) and s.ca_bundle:
                raise SalesforceUnavailable(
                    f"TLS verification of {s.describe_target()} failed with SALESFORCE_CA_BUNDLE={s.ca_bundle}: "
                    f"{_short(exc)}"
                ) from None
            raise SalesforceUnavailable(
                f"cannot reach Salesforce at {s.describe_target()}: {type(exc).__name__}: {_short(exc)}"
            ) from None

    def _observe_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        path = requests.utils.urlparse(response.url).path
        if "/services/data/" not in path and "/services/async/" not in path:
            return
        self.usage.calls += 1
        kind = _call_kind(path)
        self.usage.calls_by_kind[kind] = self.usage.calls_by_kind.get(kind, 0) + 1
        info = response.headers.get("Sforce-Limit-Info", "")
        for part in info.split(","):
            name, _, value = part.strip().partition("=")
            if name == "api-usage" and "/" in value:
                used, _, limit = value.partition("/")
                if used.isdigit() and limit.isdigit():
                    self.usage.used, self.usage.limit = int(used), int(limit)

    # -- the retry loop ----------------------------------------------------------------------------------

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run `fn` (one Salesforce request), retrying transient failures with backoff.

        An expired session is renewed through a fresh login when the login flow allows it; with a bare access
        token it cannot be, and the error says so.
        """
        last: BaseException | None = None
        for attempt in range(self.retry.attempts):
            try:
                return fn()
            except SalesforceExpiredSession:
                if self.settings.flow == "direct":
                    raise SalesforceUnavailable(
                        "the Salesforce session expired and a bare access token cannot be renewed: set a new "
                        "SALESFORCE_ACCESS_TOKEN, or configure a username/password or client-credentials login"
                    ) from None
                self._renew_session()
                last = None
                continue
            except SalesforceRefusedRequest as exc:
                code, message = error_code_and_message(exc)
                if code == "REQUEST_LIMIT_EXCEEDED":
                    raise ApiBudgetExhausted(
                        f"Salesforce refused {what}: the org's daily API limit is used up ({message})"
                    ) from None
                raise RequestRejected(code, message, exc.status) from None
            except Exception as exc:  # classified right below; anything not transient is re-raised unchanged
                if not _is_transient(exc):
                    raise
                last = exc
                delay = self.retry.delay(attempt)
                log.warning("transient failure in %s (%s); retrying in %.1fs", what, _short(exc), delay)
                time.sleep(delay)
        assert last is not None
        raise SalesforceUnavailable(
            f"{what} kept failing after {self.retry.attempts} attempts: {type(last).__name__}: {_short(last)}"
        )

    def _renew_session(self) -> None:
        # simple-salesforce renews the session itself when a REST call meets INVALID_SESSION_ID under a
        # password or OAuth login; one cheap REST call triggers exactly that documented path.
        try:
            self.sf.limits()
        except SalesforceAuthenticationFailed as exc:
            raise SalesforceUnavailable(f"renewing the Salesforce session failed: {exc.code}: {exc.message}") from None

    # -- metadata and limits -----------------------------------------------------------------------------

    def describe(self, object_name: str) -> ObjectDescribe:
        """The object's describe, read once per client (each run builds a new client, so once per run)."""
        key = object_name.lower()
        if key not in self._describes:
            try:
                raw = self.call(f"describe {object_name}", lambda: getattr(self.sf, object_name).describe())
            except SalesforceResourceNotFound:
                raise ObjectNotFound(object_name, self._object_names()) from None
            except SalesforceError as exc:
                code, message = error_code_and_message(exc)
                raise RequestRejected(code, f"cannot describe {object_name}: {message}", exc.status) from None
            self._describes[key] = ObjectDescribe.from_json(raw)
        return self._describes[key]

    def _object_names(self) -> list[str]:
        """The org's object names (describeGlobal), for "did you mean" hints."""
        described = self.call("describe global", self.sf.describe) or {}
        return [str(o["name"]) for o in described.get("sobjects", [])]

    def refresh_limits(self) -> ApiUsage:
        """Read `/limits` for the org's DailyApiRequests (one API call) and return the usage."""
        limits = self.call("read limits", self.sf.limits)
        daily = limits.get("DailyApiRequests", {})
        if "Max" in daily and "Remaining" in daily:
            self.usage.limit = int(daily["Max"])
            self.usage.used = int(daily["Max"]) - int(daily["Remaining"])
        return self.usage

    def ensure_budget(self, needed_calls: int, reserve: int, what: str) -> None:
        """Stop before `what` if it would bring the daily API budget below `reserve` calls."""
        usage = self.usage if self.usage.remaining is not None else self.refresh_limits()
        remaining = usage.remaining
        if remaining is not None and remaining - needed_calls < reserve:
            raise ApiBudgetExhausted(
                f"stopped before {what}: it needs about {needed_calls} API calls, {remaining} of the org's "
                f"{usage.limit} daily calls are left and the configured reserve is {reserve} "
                "(PASSWORK_API_RESERVE); nothing was sent for it"
            )

    # -- REST --------------------------------------------------------------------------------------------

    def restful(self, what: str, path: str, method: str = "GET", **kwargs: Any) -> Any:
        """A call under /services/data/vXX.X/ with retries; permanent errors become RequestRejected."""
        try:
            return self.call(what, lambda: self.sf.restful(path, method=method, **kwargs))
        except SalesforceError as exc:
            code, message = error_code_and_message(exc)
            raise RequestRejected(code, message, exc.status) from None

    def query_all(self, soql: str) -> list[dict[str, Any]]:
        """All records of a SOQL query (REST, paged by simple-salesforce)."""
        try:
            return list(self.call("query", lambda: self.sf.query_all(soql))["records"])
        except SalesforceError as exc:
            code, message = error_code_and_message(exc)
            raise RequestRejected(code, message, exc.status) from None

    # -- Bulk API 2.0 ------------------------------------------------------------------------------------

    def _bulk(self, object_name: str) -> Any:
        # A fresh handler each time: it carries the current session id, which may have been renewed.
        return getattr(self.sf.bulk2, object_name)._client

    def bulk_create_job(self, object_name: str, operation: str, external_id_field: str | None) -> str:
        """Open an ingest job and return its id."""
        info = self._bulk_call(
            f"create Bulk job for {object_name}",
            lambda: self._bulk(object_name).create_job(operation, external_id_field=external_id_field),
        )
        if info.get("state") != "Open":
            raise RequestRejected("INVALIDJOBSTATE", f"new Bulk job is {info.get('state')}, not Open: {info}")
        return str(info["id"])

    def bulk_upload(self, object_name: str, job_id: str, csv_text: str) -> None:
        """Upload the job's one CSV file."""
        self._bulk_call(f"upload Bulk job {job_id}", lambda: self._bulk(object_name).upload_job_data(job_id, csv_text))

    def bulk_close(self, object_name: str, job_id: str) -> None:
        """Mark the upload complete so Salesforce starts processing."""
        self._bulk_call(f"close Bulk job {job_id}", lambda: self._bulk(object_name).close_job(job_id))

    def bulk_abort(self, object_name: str, job_id: str) -> None:
        """Abort a job that cannot be completed (best effort is not acceptable here: errors propagate)."""
        self._bulk_call(f"abort Bulk job {job_id}", lambda: self._bulk(object_name).abort_job(job_id, False))

    def bulk_job_info(self, object_name: str, job_id: str) -> dict[str, Any]:
        """The job's current info (state, counters, errorMessage)."""
        return dict(self._bulk_call(f"read Bulk job {job_id}", lambda: self._bulk(object_name).get_job(job_id, False)))

    def bulk_wait(self, object_name: str, job_id: str, *, poll_s: float, timeout_s: float) -> dict[str, Any]:
        """Poll until the job reaches a terminal state; returns the final job info."""
        deadline = time.monotonic() + timeout_s
        delay = min(poll_s, 0.05)
        while True:
            info = self.bulk_job_info(object_name, job_id)
            if info.get("state") in TERMINAL_JOB_STATES:
                return info
            if time.monotonic() > deadline:
                raise SalesforceUnavailable(
                    f"Bulk job {job_id} for {object_name} did not finish within {timeout_s:.0f}s "
                    f"(state {info.get('state')}); rerun the sync to pick up its results"
                )
            time.sleep(delay)
            delay = min(poll_s, delay * 2)

    def bulk_results(self, object_name: str, job_id: str, kind: str) -> str:
        """The CSV text of successfulResults, failedResults or unprocessedRecords."""
        return str(
            self._bulk_call(
                f"read {kind} of Bulk job {job_id}", lambda: self._bulk(object_name).get_ingest_results(job_id, kind)
            )
        )

    def bulk_query_csv(self, object_name: str, soql: str) -> Iterator[str]:
        """The CSV pages of a Bulk 2.0 query (each page with its own header line)."""
        pages = self._bulk_call(
            f"Bulk query on {object_name}",
            lambda: list(getattr(self.sf.bulk2, object_name).query(soql, wait=1)),
        )
        yield from pages

    def _bulk_call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return self.call(what, fn)
        except SalesforceError as exc:
            code, message = error_code_and_message(exc)
            raise RequestRejected(code, f"{what}: {message}", exc.status) from None


def _call_kind(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    # /services/data/vXX.X/<kind>/...
    if len(parts) >= 4 and parts[1] == "data":
        kind = parts[3]
        if kind == "jobs" and len(parts) >= 5:
            return f"jobs/{parts[4]}"
        return kind
    return parts[1] if len(parts) > 1 else path


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:300] + "…"
