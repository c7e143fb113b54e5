"""ASGI middleware in front of every API route: authentication, API-call counting, limits and faults.

Route handlers never check sessions or count calls themselves. Operator (``/__emulator/``), login and
version-listing paths pass straight through, as they are not API calls in Salesforce's accounting.
"""

from __future__ import annotations

import asyncio
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from salesforce_emulator.context import EmulatorContext
from salesforce_emulator.errors import SalesforceError, invalid_session, request_limit_exceeded
from salesforce_emulator.responses import pretty_json

_ID_SEGMENT = re.compile(r"^(?=.*\d)[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
_VERSION_PREFIX = re.compile(r"^/services/(data|async)/v?\d+\.\d+")
_FAULT_BODIES = {
    500: ("UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this ErrorId if you contact support: "
                               "1504394957-37962 (-1237306224)"),
    502: ("SERVER_UNAVAILABLE", "Bad Gateway"),
    503: ("SERVER_UNAVAILABLE", "Server temporarily unavailable"),
}


def endpoint_name(method: str, path: str) -> str:
    """A path with its version and Ids generalised, for per-endpoint call counts: ``GET /sobjects/Account/{id}``."""
    rest = _VERSION_PREFIX.sub("", path) or "/"
    parts = ["{id}" if _ID_SEGMENT.match(p) else p for p in rest.split("/")]
    if len(parts) >= 5 and parts[1] == "sobjects" and parts[3] not in {"{id}", "describe"}:
        parts = parts[:4] + ["{value}"]
    return f"{method} {'/'.join(parts)}"


def _is_api_path(path: str) -> bool:
    if not path.startswith("/services/"):
        return False
    if path.startswith("/services/Soap/") or path.startswith("/services/oauth2/"):
        return False
    return path.rstrip("/") != "/services/data"


def _session_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            text = value.decode("latin-1")
            scheme, _, token = text.partition(" ")
            if scheme.lower() in {"bearer", "oauth"}:
                return token.strip()
        elif name == b"x-sfdc-session":
            return value.decode("latin-1").strip()
    return None


class Gateway:
    """The middleware; wraps the Starlette router."""

    def __init__(self, app: ASGIApp, ctx: EmulatorContext) -> None:
        self.app = app
        self.ctx = ctx

    async def _answer(self, send: Send, err: SalesforceError, counted: bool) -> None:
        body = pretty_json(err.body()).encode()
        headers = [(b"content-type", b"application/json;charset=UTF-8"), (b"content-length", str(len(body)).encode())]
        if err.status == 401:
            headers.append((b"www-authenticate", b"Token"))
        if counted:
            headers.append((b"sforce-limit-info", self.ctx.limits.limit_info_header().encode()))
        await send({"type": "http.response.start", "status": err.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        ctx = self.ctx
        token = _session_token(scope)
        if token is None or not ctx.sessions.valid(token):
            await self._answer(send, invalid_session(), counted=False)
            return
        latency = ctx.faults.latency_seconds()
        if latency:
            await asyncio.sleep(latency)
        if ctx.limits.over_limit():
            await self._answer(send, request_limit_exceeded(), counted=True)
            return
        ctx.limits.count_api_call(endpoint_name(scope["method"], scope["path"]))
        fault = ctx.faults.request_fault()
        if fault is not None:
            kind, status = fault
            if kind == "drop":
                # Start an answer and stop half-way: the server closes the connection and the client sees
                # a broken read, like a connection reset by a load balancer.
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", b"application/json;charset=UTF-8"),
                                        (b"content-length", b"4096")]})
                await send({"type": "http.response.body", "body": b"[", "more_body": True})
                return
            code, message = _FAULT_BODIES.get(status, ("UNKNOWN_EXCEPTION", "An unexpected error occurred."))
            await self._answer(send, SalesforceError(status, code, message), counted=True)
            return
        limit_header = ctx.limits.limit_info_header().encode()

        async def send_with_limit(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), (b"sforce-limit-info", limit_header)]
            await send(message)

        await self.app(scope, receive, send_with_limit)
