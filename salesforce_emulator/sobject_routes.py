"""Single-record REST: create, get, get by External ID, update, delete, upsert by External ID."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from salesforce_emulator import ids
from salesforce_emulator.context import EmulatorContext
from salesforce_emulator.errors import (
    SalesforceError,
    entity_is_deleted,
    external_id_field_missing,
    no_such_column,
    not_found,
)
from salesforce_emulator.org import WriteOutcome
from salesforce_emulator.responses import sf_json, sf_no_content
from salesforce_emulator.routing import api_version, object_of, read_json_object, record_url, version_number
from salesforce_emulator.schema import ObjectDef
from salesforce_emulator.values import parse_datetime

# The upsert answer carries "created" (and 200 instead of 204 for an update) from API 46.0.
UPSERT_CREATED_FROM = 46.0


def record_json(obj: ObjectDef, record: dict[str, Any], version: str, fields: list[str] | None = None
                ) -> dict[str, Any]:
    """A record as the REST API answers it: ``attributes`` first, then the fields in describe order."""
    out: dict[str, Any] = {"attributes": {"type": obj.name, "url": record_url(version, obj.name, record["Id"])}}
    names = fields if fields is not None else list(obj.fields)
    for name in names:
        out[name] = record.get(name)
    return out


def _external_id_value(request: Request) -> str:
    """The External ID value of ``.../sobjects/{O}/{Field}/{value}``, decoded once from the raw path.

    simple-salesforce sends it ``quote_plus``-encoded (get) or ``quote``-encoded (format_external_id), so
    ``+`` means a space and ``%2F`` a slash inside the value; the server's already-decoded path cannot tell.
    """
    raw = request.scope.get("raw_path")
    if not raw:
        return request.path_params["value"]
    segments = raw.decode("latin-1").split("/")
    # ['', 'services', 'data', 'vNN.N', 'sobjects', object, field, value...]
    return unquote_plus("/".join(segments[7:]), encoding="utf-8")


def _fields_param(obj: ObjectDef, request: Request) -> list[str] | None:
    raw = request.query_params.get("fields")
    if not raw:
        return None
    names = []
    for name in raw.split(","):
        f = obj.field(name.strip())
        if f is None:
            raise no_such_column(obj.name, name.strip())
        names.append(f.name)
    return names


def _single(outcome: WriteOutcome) -> WriteOutcome:
    if outcome.error is not None:
        raise outcome.error.to_request_error(400)
    return outcome


def _check_body_fields(obj: ObjectDef, body: dict[str, Any]) -> None:
    """Unknown fields are reported before anything about the record (as recorded for an update)."""
    for key in body:
        if key != "attributes" and obj.field(key) is None and obj.relationship(key) is None:
            raise no_such_column(obj.name, key)


def _existing_or_404(ctx: EmulatorContext, obj: ObjectDef, record_id: str, *, writing: bool = False) -> str:
    """The 18-character Id of a live record; 404 NOT_FOUND / ENTITY_IS_DELETED otherwise.

    A value shaped like an Id but not one of this object's (bad checksum, other key prefix) is MALFORMED_ID for
    a write; anything else that is not an Id reads as an unknown External ID field.
    """
    full = ids.normalize(record_id)
    if writing and ids.ID_SHAPE.match(record_id) and (full is None or not full.startswith(obj.key_prefix)):
        raise SalesforceError(400, "MALFORMED_ID", f"Record ID: id value of incorrect type: {record_id}", ["Id"])
    if full is None or not full.startswith(obj.key_prefix):
        raise external_id_field_missing(record_id) if full is None else not_found()
    record = ctx.org.get(obj.name, full, include_deleted=True)
    if record is None:
        raise not_found()
    if record["IsDeleted"]:
        raise entity_is_deleted()
    return full


def routes(ctx: EmulatorContext) -> list[BaseRoute]:
    """The ``/sobjects/{object}`` record routes."""
    org = ctx.org

    async def create(request: Request) -> Response:
        version = api_version(request, ctx)
        obj = org.schema.object(object_of(ctx, request.path_params["object"]))
        body = await read_json_object(request)
        outcome = _single(org.write_many(obj.name, "insert", [body])[0])
        assert outcome.id is not None
        return sf_json({"id": outcome.id, "success": True, "errors": []}, status=201,
                       headers={"Location": record_url(version, obj.name, outcome.id)})

    async def one_record(request: Request) -> Response:
        version = api_version(request, ctx)
        obj = org.schema.object(object_of(ctx, request.path_params["object"]))
        record_id = request.path_params["record_id"]
        if request.method == "GET":
            fields = _fields_param(obj, request)
            full = _existing_or_404(ctx, obj, record_id)
            record = org.get(obj.name, full)
            assert record is not None
            return sf_json(record_json(obj, record, version, fields))
        if request.method == "PATCH":
            body = await read_json_object(request)
            body = {k: v for k, v in body.items() if k != "attributes"}
            _check_body_fields(obj, body)
            full = _existing_or_404(ctx, obj, record_id, writing=True)
            if any(k.lower() == "id" for k in body):
                raise SalesforceError(400, "INVALID_FIELD_FOR_INSERT_UPDATE",
                                      "Unable to create/update fields: Id. Please check the security settings of this "
                                      "field and verify that it is read/write for your profile or permission set.",
                                      ["Id"])
            _single(org.write_many(obj.name, "update", [{"Id": full, **body}])[0])
            return sf_no_content()
        full = _existing_or_404(ctx, obj, record_id, writing=True)
        _single(org.write_many(obj.name, "delete", [{"Id": full}])[0])
        return sf_no_content()

    async def by_external_id(request: Request) -> Response:
        version = api_version(request, ctx)
        obj = org.schema.object(object_of(ctx, request.path_params["object"]))
        field_name = request.path_params["field"]
        value = _external_id_value(request)
        f = obj.field(field_name)
        if f is None or not f.id_lookup:
            raise external_id_field_missing(field_name)
        matches = org.find_by_external_id(obj.name, f.name, value)
        if len(matches) > 1:
            # UNCONFIRMED body shape: the documented "list of matching records", as their URLs.
            return sf_json([record_url(version, obj.name, m["Id"]) for m in matches], status=300)
        if request.method == "GET":
            if not matches:
                raise not_found()
            return sf_json(record_json(obj, matches[0], version, _fields_param(obj, request)))
        if request.method == "DELETE":
            if not matches:
                raise not_found()
            _single(org.write_many(obj.name, "delete", [{"Id": matches[0]["Id"]}])[0])
            return sf_no_content()
        body = await read_json_object(request)
        body = {k: v for k, v in body.items() if k != "attributes"}
        for key in list(body):
            if key.lower() == f.name.lower():
                if str(body[key]) != value:
                    raise SalesforceError(400, "INVALID_FIELD", f"The value of the external ID field {f.name} in the "
                                                                "request body does not match the value in the URL")
                del body[key]
        if f.type == "id":
            if not matches:
                raise not_found()
            row = {"Id": matches[0]["Id"], **body}
        else:
            row = {f.name: value, **body}
        outcome = _single(org.write_many(obj.name, "upsert", [row], external_id_field=f.name)[0])
        assert outcome.id is not None
        modern = version_number(version) >= UPSERT_CREATED_FROM
        if outcome.created:
            payload: dict[str, Any] = {"id": outcome.id, "success": True, "errors": []}
            if modern:
                payload["created"] = True
            return sf_json(payload, status=201, headers={"Location": record_url(version, obj.name, outcome.id)})
        if not modern:
            return sf_no_content()
        return sf_json({"id": outcome.id, "success": True, "errors": [], "created": False})

    async def changed(request: Request) -> Response:
        api_version(request, ctx)
        obj = org.schema.object(object_of(ctx, request.path_params["object"]))
        start, end = (parse_datetime(request.query_params.get(k, "")) for k in ("start", "end"))
        if start is None or end is None:
            raise SalesforceError(400, "INVALID_REPLICATION_DATE", "start and end must be ISO 8601 date-times")
        deleted = request.url.path.rstrip("/").endswith("/deleted")
        hits = [r for r in org.iter_records(obj.name, include_deleted=deleted)
                if bool(r["IsDeleted"]) == deleted and start <= r["SystemModstamp"] < end]
        if deleted:
            return sf_json({
                "deletedRecords": [{"id": r["Id"], "deletedDate": r["SystemModstamp"]} for r in hits],
                "earliestDateAvailable": start, "latestDateCovered": end,
            })
        return sf_json({"ids": [r["Id"] for r in hits], "latestDateCovered": end})

    prefix = "/services/data/v{version}/sobjects/{object}"
    return [
        Route(prefix + "/deleted/", changed, methods=["GET"]),
        Route(prefix + "/updated/", changed, methods=["GET"]),
        Route(prefix, create, methods=["POST"]),
        Route(prefix + "/", create, methods=["POST"]),
        Route(prefix + "/{record_id}", one_record, methods=["GET", "PATCH", "DELETE"]),
        Route(prefix + "/{field}/{value:path}", by_external_id, methods=["GET", "PATCH", "DELETE"]),
    ]
