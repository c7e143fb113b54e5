"""sObject Collections: create, update, delete, retrieve and upsert up to 200 records in one call."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from salesforce_emulator.context import EmulatorContext
from salesforce_emulator.errors import (
    ALL_OR_NONE_ROLLED_BACK,
    RecordError,
    SalesforceError,
    external_id_field_missing,
    no_such_column,
)
from salesforce_emulator.org import WriteOutcome
from salesforce_emulator.responses import sf_json
from salesforce_emulator.routing import api_version, object_of, query_flag, read_json, version_number
from salesforce_emulator.sobject_routes import record_json

MAX_RECORDS = 200
UPSERT_FROM = 46.0


def _too_many() -> SalesforceError:
    # UNCONFIRMED for REST: the SOAP API's wording for the same 200-record limit.
    return SalesforceError(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records "
                                                     "into this call")


def _result(outcome: WriteOutcome, *, with_created: bool, id_on_failure: bool = False) -> dict[str, Any]:
    if outcome.error is None:
        out: dict[str, Any] = {"id": outcome.id, "success": True, "errors": []}
        if with_created:
            out["created"] = outcome.created
        return out
    failed: dict[str, Any] = {}
    if id_on_failure and outcome.id:
        failed["id"] = outcome.id
    failed.update({"success": False, "errors": [outcome.error.to_json()]})
    return failed


async def _records_body(request: Request) -> tuple[list[dict[str, Any]], bool]:
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "Cannot deserialize the request: expected an object with "
                                                        "a 'records' array")
    records = body["records"]
    if not records:
        raise SalesforceError(400, "REQUIRED_FIELD_MISSING", "At least 1 record is required")
    if len(records) > MAX_RECORDS:
        raise _too_many()
    if any(not isinstance(r, dict) for r in records):
        raise SalesforceError(400, "JSON_PARSER_ERROR", "Each element of 'records' must be a JSON object")
    return records, bool(body.get("allOrNone", False))


def _type_of(ctx: EmulatorContext, record: dict[str, Any]) -> str | None:
    """The API name in the record's ``attributes.type``: None when absent, "" when the org has no such object."""
    attributes = record.get("attributes")
    name = attributes.get("type") if isinstance(attributes, dict) else None
    if not name:
        return None
    try:
        return ctx.org.schema.object(name).name
    except KeyError:
        return ""


def _write_grouped(ctx: EmulatorContext, operation: str, records: list[dict[str, Any]], all_or_none: bool
                   ) -> list[WriteOutcome]:
    """Write records of possibly several types in request order, one write per consecutive run of a type.

    With allOrNone every run is validated first (a dry pass that writes nothing) so a failure in a later
    run keeps earlier runs from being written.
    """
    outcomes: list[WriteOutcome | None] = [None] * len(records)
    runs: list[tuple[str, list[int]]] = []
    for index, record in enumerate(records):
        obj = _type_of(ctx, record)
        if obj is None:
            outcomes[index] = WriteOutcome(None, False, RecordError(
                "INVALID_FIELD", f"No SObject Type defined in {operation}", []))
            continue
        if obj == "":
            outcomes[index] = WriteOutcome(None, False, RecordError(
                "INVALID_TYPE", f"sObject type '{record['attributes'].get('type')}' is not supported.", []))
            continue
        if runs and runs[-1][0] == obj:
            runs[-1][1].append(index)
        else:
            runs.append((obj, [index]))
    if all_or_none and (any(o is not None for o in outcomes) or len(runs) > 1):
        return _all_or_none_multi(ctx, operation, records, runs, outcomes)
    for obj, indexes in runs:
        results = ctx.org.write_many(obj, operation, [records[i] for i in indexes], all_or_none=all_or_none)
        for i, result in zip(indexes, results):
            outcomes[i] = result
    return [o for o in outcomes if o is not None]


def _all_or_none_multi(ctx: EmulatorContext, operation: str, records: list[dict[str, Any]],
                       runs: list[tuple[str, list[int]]], outcomes: list[WriteOutcome | None]) -> list[WriteOutcome]:
    rolled = ALL_OR_NONE_ROLLED_BACK
    with ctx.org.store.lock:
        if all(o is None for o in outcomes):
            checks = [ctx.org.write_many(obj, operation, [records[i] for i in indexes], dry_run=True)
                      for obj, indexes in runs]
            for (obj, indexes), results in zip(runs, checks):
                for i, result in zip(indexes, results):
                    if result.error is not None:
                        outcomes[i] = result
            if all(o is None for o in outcomes):
                for obj, indexes in runs:
                    results = ctx.org.write_many(obj, operation, [records[i] for i in indexes], all_or_none=True)
                    for i, result in zip(indexes, results):
                        outcomes[i] = result
                return [o for o in outcomes if o is not None]
    return [o if o is not None and o.error is not None else WriteOutcome(None, False, rolled) for o in outcomes]


def routes(ctx: EmulatorContext) -> list[BaseRoute]:
    """The ``/composite/sobjects`` routes."""
    org = ctx.org

    async def collection(request: Request) -> Response:
        api_version(request, ctx)
        if request.method == "DELETE":
            raw_ids = [i for i in request.query_params.get("ids", "").split(",") if i]
            if not raw_ids:
                raise SalesforceError(400, "MISSING_ARGUMENT", "ids parameter is required")
            if len(raw_ids) > MAX_RECORDS:
                raise _too_many()
            all_or_none = query_flag(request, "allOrNone")
            by_prefix = {o.key_prefix: o.name for o in org.schema.objects.values()}
            outcomes: list[WriteOutcome | None] = [None] * len(raw_ids)
            groups: dict[str, list[int]] = {}
            for index, rid in enumerate(raw_ids):
                obj = by_prefix.get(rid[:3])
                if obj is None:
                    outcomes[index] = WriteOutcome(None, False, RecordError("MALFORMED_ID", f"malformed id {rid}", []))
                else:
                    groups.setdefault(obj, []).append(index)
            if all_or_none and any(o is not None for o in outcomes):
                groups = {}
            for obj, indexes in groups.items():
                results = org.write_many(obj, "delete", [{"Id": raw_ids[i]} for i in indexes], all_or_none=all_or_none)
                for i, result in zip(indexes, results):
                    outcomes[i] = result
            if all_or_none and any(o is not None and o.error is not None for o in outcomes):
                rolled = ALL_OR_NONE_ROLLED_BACK
                outcomes = [o if o is not None and o.error is not None and o.error.status_code != rolled.status_code
                            else WriteOutcome(None, False, rolled) for o in outcomes]
            return sf_json([_result(o, with_created=False, id_on_failure=True) for o in outcomes if o is not None])
        records, all_or_none = await _records_body(request)
        operation = "insert" if request.method == "POST" else "update"
        results = _write_grouped(ctx, operation, records, all_or_none)
        return sf_json([_result(o, with_created=False) for o in results])

    async def retrieve(request: Request) -> Response:
        version = api_version(request, ctx)
        obj = org.schema.object(object_of(ctx, request.path_params["object"]))
        if request.method == "POST":
            body = await read_json(request)
            wanted_ids = body.get("ids", []) if isinstance(body, dict) else []
            field_names = body.get("fields", []) if isinstance(body, dict) else []
        else:
            wanted_ids = [i for i in request.query_params.get("ids", "").split(",") if i]
            field_names = [f for f in request.query_params.get("fields", "").split(",") if f]
        if not field_names:
            raise SalesforceError(400, "MISSING_ARGUMENT", "fields parameter is required")
        fields = []
        for name in field_names:
            f = obj.field(name)
            if f is None:
                raise no_such_column(obj.name, name)
            fields.append(f.name)
        out = []
        for rid in wanted_ids:
            record = org.get(obj.name, rid)
            out.append(None if record is None else record_json(obj, record, version, fields))
        return sf_json(out)

    async def upsert(request: Request) -> Response:
        version = api_version(request, ctx)
        if version_number(version) < UPSERT_FROM:
            raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")
        obj = org.schema.object(object_of(ctx, request.path_params["object"]))
        field_name = request.path_params["field"]
        f = obj.field(field_name)
        if f is None or not f.id_lookup:
            raise external_id_field_missing(field_name)
        records, all_or_none = await _records_body(request)
        for record in records:
            record_type = _type_of(ctx, record)
            if record_type != obj.name:
                raise SalesforceError(400, "INVALID_FIELD", "Each record must have attributes.type matching the "
                                                            f"sObject type in the URL: {obj.name}")
        results = org.write_many(obj.name, "upsert", records, external_id_field=f.name, all_or_none=all_or_none)
        return sf_json([_result(o, with_created=True) for o in results])

    base = "/services/data/v{version}/composite/sobjects"
    return [
        Route(base, collection, methods=["POST", "PATCH", "DELETE"]),
        Route(base + "/", collection, methods=["POST", "PATCH", "DELETE"]),
        Route(base + "/{object}", retrieve, methods=["GET", "POST"]),
        Route(base + "/{object}/{field}", upsert, methods=["PATCH"]),
    ]
