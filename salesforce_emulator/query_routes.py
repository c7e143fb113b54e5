"""REST query: ``GET /services/data/vXX.X/query/?q=`` and ``queryAll/``, paged through ``nextRecordsUrl``.

Pages hold 2,000 records (``Sforce-Query-Options: batchSize=`` lowers it to between 200 and 2,000, as in
Salesforce). The rest of a result stays behind a query locator (``01g...``) whose next page is
``/services/data/vXX.X/query/01g...-2000``; locators live in memory and expire after 15 minutes without use.
"""

from __future__ import annotations

import itertools
import random
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from salesforce_emulator.context import EmulatorContext
from salesforce_emulator.errors import SalesforceError
from salesforce_emulator.ids import make_id
from salesforce_emulator.responses import sf_error_response, sf_json
from salesforce_emulator.routing import api_version
from salesforce_emulator.soql import QueryResult, malformed, run_query

PAGE_SIZE = 2000
MIN_BATCH_SIZE = 200
LOCATOR_IDLE_SECONDS = 15 * 60
MAX_OPEN_LOCATORS = 100
_BATCH_SIZE_RE = re.compile(r"batchSize\s*=\s*(\d+)", re.IGNORECASE)


@dataclass
class _Cursor:
    result: QueryResult
    page_size: int
    last_used: float


class QueryLocators:
    """Open query cursors by locator id; least recently used ones are closed beyond the limit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        # Serials start at a random point so locators differ between emulator runs, like real ones.
        self._serials = itertools.count(random.randrange(62**5, 62**7))

    def open(self, result: QueryResult, page_size: int) -> str:
        locator = make_id("01g", next(self._serials))
        with self._lock:
            self._expire()
            self._cursors[locator] = _Cursor(result, page_size, time.monotonic())
            while len(self._cursors) > MAX_OPEN_LOCATORS:
                self._cursors.popitem(last=False)
        return locator

    def get(self, locator: str) -> _Cursor | None:
        with self._lock:
            self._expire()
            cursor = self._cursors.get(locator)
            if cursor is not None:
                cursor.last_used = time.monotonic()
                self._cursors.move_to_end(locator)
            return cursor

    def close(self, locator: str) -> None:
        with self._lock:
            self._cursors.pop(locator, None)

    def _expire(self) -> None:
        deadline = time.monotonic() - LOCATOR_IDLE_SECONDS
        for locator in [key for key, cursor in self._cursors.items() if cursor.last_used < deadline]:
            del self._cursors[locator]


def invalid_locator() -> SalesforceError:
    return SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")


def _page_size(request: Request) -> int:
    options = request.headers.get("sforce-query-options", "")
    match = _BATCH_SIZE_RE.search(options)
    if not match:
        return PAGE_SIZE
    return max(MIN_BATCH_SIZE, min(PAGE_SIZE, int(match.group(1))))


def query_page(
    result: QueryResult, api_version: str, endpoint: str, start: int, page_size: int, locators: QueryLocators,
    locator: str | None,
) -> dict:
    """One page of a query answer, in Salesforce's key order: totalSize, done, nextRecordsUrl, records."""
    stop = start + page_size
    body: dict = {"totalSize": result.total_size}
    if stop < result.row_count:
        if locator is None:
            locator = locators.open(result, page_size)
        body["done"] = False
        body["nextRecordsUrl"] = f"/services/data/v{api_version}/{endpoint}/{locator}-{stop}"
    else:
        if locator is not None:
            locators.close(locator)
        body["done"] = True
    body["records"] = result.records(api_version, start, stop)
    return body


def routes(ctx: EmulatorContext) -> list[BaseRoute]:
    """The query and queryAll resources, first pages and the pages behind a locator."""
    locators = QueryLocators()

    def endpoint_of(include_deleted: bool) -> str:
        return "queryAll" if include_deleted else "query"

    def first_page(include_deleted: bool):
        async def handler(request: Request) -> Response:
            version = api_version(request, ctx)
            soql = request.query_params.get("q")
            try:
                if soql is None or not soql.strip():
                    raise malformed("<EOF>")
                # Evaluation is CPU work over the store; keep it off the event loop.
                result = await run_in_threadpool(run_query, ctx.org, soql, include_deleted=include_deleted)
                body = query_page(result, version, endpoint_of(include_deleted), 0, _page_size(request),
                                  locators, None)
            except SalesforceError as error:
                return sf_error_response(error)
            return sf_json(body)

        return handler

    def next_page(include_deleted: bool):
        async def handler(request: Request) -> Response:
            version = api_version(request, ctx)
            locator, _, start_text = request.path_params["locator"].rpartition("-")
            cursor = locators.get(locator) if locator and start_text.isdigit() else None
            if cursor is None:
                return sf_error_response(invalid_locator())
            start = int(start_text)
            if start >= cursor.result.row_count:
                return sf_error_response(invalid_locator())
            body = query_page(cursor.result, version, endpoint_of(include_deleted), start, cursor.page_size,
                              locators, locator)
            return sf_json(body)

        return handler

    base = "/services/data/v{version}"
    result: list[BaseRoute] = []
    for include_deleted in (False, True):
        name = endpoint_of(include_deleted)
        result.append(Route(f"{base}/{name}", first_page(include_deleted), methods=["GET"]))
        result.append(Route(f"{base}/{name}/", first_page(include_deleted), methods=["GET"]))
        result.append(Route(f"{base}/{name}/{{locator}}", next_page(include_deleted), methods=["GET"]))
    return result
