"""What every route module needs from a request: its API version, its JSON body, the record URL shape."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from salesforce_emulator.context import EmulatorContext
from salesforce_emulator.errors import json_parser_error, not_found


def api_version(request: Request, ctx: EmulatorContext) -> str:
    """The ``{version}`` of ``/services/data/v{version}/...``; 404 NOT_FOUND for a version the org lacks."""
    version = request.path_params.get("version", "")
    if version not in ctx.config.api_versions:
        raise not_found()
    return version


def version_number(version: str) -> float:
    return float(version)


async def read_json(request: Request) -> Any:
    """The JSON body; 400 JSON_PARSER_ERROR (with Jackson's wording) when it is not JSON."""
    raw = await request.body()
    if not raw.strip():
        raise json_parser_error("No content to map due to end-of-input at [line:1, column:0]")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        line = getattr(exc, "lineno", 1)
        column = getattr(exc, "colno", 0)
        raise json_parser_error(f"Unexpected character: was expecting a JSON value at [line:{line}, column:{column}]") \
            from exc


async def read_json_object(request: Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise json_parser_error("Cannot deserialize instance of SObject out of START_ARRAY token at [line:1, column:1]")
    return body


def record_url(version: str, obj: str, record_id: str) -> str:
    return f"/services/data/v{version}/sobjects/{obj}/{record_id}"


def object_of(ctx: EmulatorContext, name: str) -> str:
    """The API name of object ``name`` (any case); 404 NOT_FOUND if the org has no such object."""
    try:
        return ctx.org.schema.object(name).name
    except KeyError:
        raise not_found() from None


def query_flag(request: Request, name: str, default: bool = False) -> bool:
    value = request.query_params.get(name)
    return default if value is None else value.lower() == "true"

