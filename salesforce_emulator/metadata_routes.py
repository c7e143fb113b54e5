"""Org metadata: API versions, resources, describeGlobal, sObject describe, limits and record counts."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from salesforce_emulator.context import EmulatorContext
from salesforce_emulator.describe import global_describe, global_entry, object_describe
from salesforce_emulator.responses import sf_json
from salesforce_emulator.routing import api_version, object_of

_SEASONS = ("Winter", "Spring", "Summer")


def release_label(version: str) -> str:
    """The release name of an API version: 59.0 -> "Winter '24" (three releases a year since 41.0, Winter '18)."""
    steps = int(float(version)) - 41
    return f"{_SEASONS[steps % 3]} '{18 + steps // 3}"


def routes(ctx: EmulatorContext) -> list[BaseRoute]:
    """Metadata routes (the describe routes must come before the record routes that would shadow them)."""
    org = ctx.org

    async def versions(request: Request) -> Response:
        return sf_json([
            {"label": release_label(v), "url": f"/services/data/v{v}", "version": v} for v in ctx.config.api_versions
        ])

    async def resources(request: Request) -> Response:
        version = api_version(request, ctx)
        base = f"/services/data/v{version}"
        names = ["tooling", "metadata", "eclair", "folders", "prechatForms", "jsonxform", "chatter", "tabs",
                 "appMenu", "quickActions", "queryAll", "commerce", "wave", "iot", "analytics", "search", "smartdatadiscovery",
                 "identity", "composite", "parameterizedSearch", "fingerprint", "theme", "nouns", "domino", "event",
                 "serviceTemplates", "recent", "connect", "licensing", "limits", "process", "dedupe", "async-queries",
                 "query", "jobs", "match", "emailConnect", "compactLayouts", "knowledgeManagement", "sobjects", "actions",
                 "support"]
        return sf_json({name: f"{base}/{name}" for name in names})

    async def describe_global(request: Request) -> Response:
        return sf_json(global_describe(org.schema, api_version(request, ctx)))

    async def sobject_basic(request: Request) -> Response:
        version = api_version(request, ctx)
        obj = org.schema.object(object_of(ctx, request.path_params["object"]))
        return sf_json({"objectDescribe": global_entry(obj, version), "recentItems": []})

    async def sobject_describe(request: Request) -> Response:
        version = api_version(request, ctx)
        obj = org.schema.object(object_of(ctx, request.path_params["object"]))
        return sf_json(object_describe(org.schema, obj, version, ctx.config.instance_url))

    async def limits(request: Request) -> Response:
        api_version(request, ctx)
        return sf_json(ctx.limits.report())

    async def record_count(request: Request) -> Response:
        api_version(request, ctx)
        names = [n for n in request.query_params.get("sObjects", "").split(",") if n]
        if not names:
            names = list(org.schema.objects)
        counts = [{"count": org.count(object_of(ctx, n)), "name": object_of(ctx, n)} for n in names]
        return sf_json({"sObjects": counts})

    data = "/services/data"
    v = data + "/v{version}"
    return [
        Route(data, versions, methods=["GET"]),
        Route(data + "/", versions, methods=["GET"]),
        Route(v, resources, methods=["GET"]),
        Route(v + "/", resources, methods=["GET"]),
        Route(v + "/sobjects", describe_global, methods=["GET"]),
        Route(v + "/sobjects/", describe_global, methods=["GET"]),
        Route(v + "/sobjects/{object}", sobject_basic, methods=["GET"]),
        Route(v + "/sobjects/{object}/", sobject_basic, methods=["GET"]),
        Route(v + "/sobjects/{object}/describe", sobject_describe, methods=["GET"]),
        Route(v + "/sobjects/{object}/describe/", sobject_describe, methods=["GET"]),
        Route(v + "/limits", limits, methods=["GET"]),
        Route(v + "/limits/", limits, methods=["GET"]),
        Route(v + "/limits/recordCount", record_count, methods=["GET"]),
    ]
