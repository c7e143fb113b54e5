"""Operator endpoints under ``/__emulator/``: reset, record dumps, call counters, faults, sessions, limits.

They need no session and are not counted as API calls: they drive the emulator, they are not Salesforce.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from salesforce_emulator.context import EmulatorContext
from salesforce_emulator.faults import FaultSettings


class SessionExpiry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session_id: str | None = None
    include_static: bool = False


class LimitSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    api_limit: int | None = Field(None, ge=0)
    api_used: int | None = Field(None, ge=0)


def _problem(message: str, status: int = 400) -> Response:
    return JSONResponse({"error": message}, status_code=status)


async def _model(request: Request, model: type[BaseModel]) -> BaseModel | Response:
    raw = await request.body()
    try:
        return model.model_validate(json.loads(raw) if raw.strip() else {})
    except json.JSONDecodeError as exc:
        return _problem(f"request body is not JSON: {exc.msg} at line {exc.lineno}")
    except ValidationError as exc:
        issues = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return _problem(f"invalid settings: {issues}")


def routes(ctx: EmulatorContext) -> list[BaseRoute]:
    """The operator routes."""

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "instance_url": ctx.config.instance_url})

    async def reset(request: Request) -> Response:
        ctx.org.reset()
        ctx.limits.reset()
        ctx.faults.configure(FaultSettings())
        return JSONResponse({"status": "reset"})

    async def records(request: Request) -> Response:
        try:
            obj = ctx.org.schema.object(request.path_params["object"]).name
        except KeyError:
            return _problem(f"unknown object {request.path_params['object']!r}; objects: "
                            f"{', '.join(ctx.org.schema.objects)}", 404)
        include_deleted = request.query_params.get("include_deleted", "false").lower() == "true"
        return JSONResponse(list(ctx.org.iter_records(obj, include_deleted=include_deleted)))

    async def api_calls(request: Request) -> Response:
        limits = ctx.limits
        return JSONResponse({
            "total": limits.api_used, "limit": limits.api_limit,
            "by_endpoint": dict(sorted(limits.by_endpoint.items())), "bulk": dict(limits.counters),
        })

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            settings = await _model(request, FaultSettings)
            if isinstance(settings, Response):
                return settings
            assert isinstance(settings, FaultSettings)
            ctx.faults.configure(settings)
        return JSONResponse(ctx.faults.snapshot())

    async def expire_sessions(request: Request) -> Response:
        body = await _model(request, SessionExpiry)
        if isinstance(body, Response):
            return body
        assert isinstance(body, SessionExpiry)
        count = ctx.sessions.expire(body.session_id, include_static=body.include_static)
        return JSONResponse({"expired": count})

    async def limits(request: Request) -> Response:
        if request.method == "POST":
            body = await _model(request, LimitSettings)
            if isinstance(body, Response):
                return body
            assert isinstance(body, LimitSettings)
            if body.api_limit is not None:
                ctx.limits.api_limit = body.api_limit
            if body.api_used is not None:
                ctx.limits.api_used = body.api_used
        return JSONResponse({"api_limit": ctx.limits.api_limit, "api_used": ctx.limits.api_used})

    base = "/__emulator"
    return [
        Route(base + "/health", health, methods=["GET"]),
        Route(base + "/reset", reset, methods=["POST"]),
        Route(base + "/records/{object}", records, methods=["GET"]),
        Route(base + "/api-calls", api_calls, methods=["GET"]),
        Route(base + "/faults", faults, methods=["GET", "POST"]),
        Route(base + "/sessions/expire", expire_sessions, methods=["POST"]),
        Route(base + "/limits", limits, methods=["GET", "POST"]),
    ]
