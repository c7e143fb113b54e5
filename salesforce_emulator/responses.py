"""HTTP responses shaped like real Salesforce: Jackson-style pretty JSON and the usual headers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from salesforce_emulator.errors import SalesforceError

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"

# Headers every real REST answer carries (wire notes 2.7); Sforce-Limit-Info is added by the middleware.
STANDARD_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-XSS-Protection": "1; mode=block",
    "X-Robots-Tag": "none",
    "Cache-Control": "no-cache,must-revalidate,max-age=0,no-store,private",
}


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        # Jackson writes doubles with a fraction or an exponent, like Python's repr.
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)


def _write(value: Any, level: int, out: list[str]) -> None:
    if isinstance(value, Mapping):
        if not value:
            out.append("{ }")
            return
        inner = "  " * (level + 1)
        out.append("{\n")
        first = True
        for key, item in value.items():
            if not first:
                out.append(",\n")
            first = False
            out.append(inner)
            out.append(json.dumps(str(key), ensure_ascii=False))
            out.append(" : ")
            _write(item, level + 1, out)
        out.append("\n")
        out.append("  " * level)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[ ]")
            return
        # Jackson's default array indenter is inline: arrays do not add an indentation level.
        out.append("[ ")
        first = True
        for item in value:
            if not first:
                out.append(", ")
            first = False
            _write(item, level, out)
        out.append(" ]")
    else:
        out.append(_scalar(value))


def pretty_json(data: Any) -> str:
    """``data`` as Salesforce prints it: ``{\\n  "key" : value\\n}``, ``[ a, b ]``, ``[ ]``, ``{ }``."""
    out: list[str] = []
    _write(data, 0, out)
    return "".join(out)


def sf_json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON response the way Salesforce sends it."""
    all_headers = dict(STANDARD_HEADERS)
    if headers:
        all_headers.update(headers)
    return Response(
        pretty_json(data).encode("utf-8"), status_code=status, headers=all_headers, media_type=JSON_CONTENT_TYPE
    )


def sf_no_content(headers: Mapping[str, str] | None = None) -> Response:
    """A 204 answer: no body and no Content-Type, like real Salesforce."""
    all_headers = dict(STANDARD_HEADERS)
    if headers:
        all_headers.update(headers)
    return Response(status_code=204, headers=all_headers)


def sf_error_response(err: SalesforceError) -> Response:
    """The JSON array body of a request-level error, with its HTTP status."""
    headers = {"WWW-Authenticate": "Token"} if err.status == 401 else None
    return sf_json(err.body(), status=err.status, headers=headers)
