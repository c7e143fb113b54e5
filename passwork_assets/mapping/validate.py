"""Checking loaded mappings against the live source schema and the live Salesforce describe.

Everything that loading cannot know: the object and its fields exist and are writable, the upsert key and
every parent key are External ID fields, value types fit, picklist targets are allowed values, source tables
and columns exist, custom SQL is one read-only SELECT. Every message says what would be right (close names,
the External ID fields there are, the allowed picklist values).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import polars as pl

from passwork_assets.mapping.issues import MappingIssue, display_path
from passwork_assets.mapping.models import FieldSpec, FlowMapping, MappingSet
from passwork_assets.mapping.type_compat import (
    BOOL,
    DATE,
    INT,
    NUMBER,
    TEXT,
    incompatibility,
    pg_kind,
    polars_dtype,
    polars_kind,
)
from passwork_assets.salesforce.describe import DescribeProvider, FieldDescribe, ObjectDescribe, ObjectNotFound
from passwork_assets.source.query import SqlRejected, check_read_only_sql
from passwork_assets.source.schema import TableNotFound

SchemaFor = Callable[[str, str], dict[str, str]]
"""(connection, table) -> {column: PostgreSQL type}; raises `TableNotFound` for a missing table."""
QueryColumns = Callable[[str, str], dict[str, str]]
"""(connection, sql) -> {column: PostgreSQL type} of the statement's result."""


class SourceUnavailable(RuntimeError):
    """The source database could not be reached to read its schema; the message says why (never a secret)."""


def validate_mappings(
    mappings: MappingSet,
    *,
    describe: DescribeProvider,
    schema_for: SchemaFor | None = None,
    query_columns: QueryColumns | None = None,
) -> list[MappingIssue]:
    """Every problem of every flow against the live describe and (when given) the live source schema.

    `schema_for` answers a table's columns; `query_columns` the result columns of custom SQL. Without them
    only the Salesforce side is checked (`passwork validate --offline`). Returns the issues in file order;
    an empty list means the mappings can run.
    """
    issues: list[MappingIssue] = []
    unavailable: set[str] = set()
    for flow in sorted(mappings.flows.values(), key=lambda f: f.path.name):
        columns = _source_columns(flow, schema_for, query_columns, issues, unavailable)
        _check_flow(flow, describe, columns, issues)
    return issues


@dataclass
class _Ctx:
    flow: FlowMapping
    issues: list[MappingIssue]

    def add(self, key: str, message: str, line: int | None = None) -> None:
        """Record an issue at `key` (dotted, list items by index: source.columns.2, shown as source.columns[2])."""
        shown = re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", key)
        self.issues.append(
            MappingIssue(display_path(self.flow.path), line if line is not None else self.flow.line_of(key), shown, message)
        )


# ---------------------------------------------------------------------------------------------- source side


def _source_columns(
    flow: FlowMapping,
    schema_for: SchemaFor | None,
    query_columns: QueryColumns | None,
    issues: list[MappingIssue],
    unavailable: set[str],
) -> dict[str, str] | None:
    """The flow's source columns with their PostgreSQL types, or None when they cannot be known."""
    ctx = _Ctx(flow, issues)
    src = flow.source
    if src.sql is not None:
        try:
            check_read_only_sql(src.sql)
        except SqlRejected as exc:
            ctx.add("source.sql", str(exc))
            return None
    fetch = schema_for if src.table is not None else query_columns
    if fetch is None or src.connection in unavailable:
        return None
    try:
        found = fetch(src.connection, src.table if src.table is not None else src.sql or "")
    except TableNotFound as exc:
        ctx.add("source.table", f"{exc} (connection {src.connection})")
        return None
    except SqlRejected as exc:
        ctx.add("source.sql", str(exc))
        return None
    except SourceUnavailable as exc:
        unavailable.add(src.connection)
        ctx.add("source.connection", f"cannot read the source schema: {exc}")
        return None
    if src.table is not None and not found:
        ctx.add("source.table", f"table {src.table} does not exist in connection {src.connection} (or has no columns visible to this user)")
        return None
    if src.columns is not None:
        for i, col in enumerate(src.columns):
            if col not in found:
                ctx.add(f"source.columns.{i}", _with_list(f"column {col} does not exist in {src.table}{_close(col, found)}", "Columns", found))
    else:
        for col in flow.source_columns:
            if col not in found:
                where = "source.cursor" if col == src.cursor else ("source.key" if col == src.key else "source.sql")
                spec = next((f for f in flow.fields if col in f.source_columns), None)
                ctx.add(
                    f"fields.{spec.target}" if spec and where == "source.sql" else where,
                    _with_list(f"the SQL returns no column {col}{_close(col, found)}", "It returns", found),
                    spec.line if spec and where == "source.sql" else None,
                )
    if src.cursor is not None and src.cursor in found and pg_kind(found[src.cursor]) not in (INT, NUMBER, DATE, "timestamp", "timestamp with time zone", TEXT):
        ctx.add("source.cursor", f"cursor column {src.cursor} is {found[src.cursor]}; a cursor must be a timestamp, date, number or text that grows with each change")
    return found


# ---------------------------------------------------------------------------------------------- Salesforce side


def _check_flow(
    flow: FlowMapping,
    describe: DescribeProvider,
    columns: dict[str, str] | None,
    issues: list[MappingIssue],
) -> None:
    ctx = _Ctx(flow, issues)
    target = flow.target
    try:
        obj = describe.describe(target.object)
    except ObjectNotFound as exc:
        ctx.add("target.object", f"Salesforce has no object {target.object}{_close(target.object, exc.known)}")
        return

    key = obj.field(target.external_id)
    if key is None:
        ctx.add("target.external_id", f"{obj.name} has no field {target.external_id}{_ext_id_list(obj)}")
    elif not key.external_id:
        ctx.add("target.external_id", f"{key.name} is not an External ID field on {obj.name}{_ext_id_list(obj)}")

    mapped_fields: set[str] = set()
    for spec in flow.fields:
        if spec.is_parent_link:
            ref = _check_parent_link(ctx, spec, obj, describe)
            if ref is not None:
                mapped_fields.add(ref.name.lower())
            continue
        field = obj.field(spec.target)
        if field is None:
            ctx.add(f"fields.{spec.target}", f"{obj.name} has no field {spec.target}{_close_field(spec.target, obj)}", spec.line)
            continue
        mapped_fields.add(field.name.lower())
        _check_writable(ctx, spec, field, obj)
        _check_value_type(ctx, spec, field, columns)
        _check_value_map(ctx, spec, field)
        _check_on_null(ctx, spec, field)

    if target.operation in ("upsert", "insert"):
        missing = [f.name for f in obj.fields.values() if f.required_on_create and f.name.lower() not in mapped_fields]
        if missing:
            ctx.add(
                "fields",
                f"{obj.name} requires {', '.join(missing)} to create a record and this flow maps no value for "
                f"{'it' if len(missing) == 1 else 'them'}",
            )


def _check_parent_link(ctx: _Ctx, spec: FieldSpec, obj: ObjectDescribe, describe: DescribeProvider) -> FieldDescribe | None:
    key = f"fields.{spec.target}"
    rel_name, ext_name = spec.relationship or "", spec.parent_external_id or ""
    ref = obj.relationship(rel_name)
    if ref is None:
        as_field = obj.field(rel_name)
        rels = [f.relationship_name for f in obj.reference_fields() if f.relationship_name]
        if as_field is not None and as_field.relationship_name:
            hint = f"; {rel_name} is the field, write the relationship name: {as_field.relationship_name}.{ext_name}"
        else:
            hint = _close(rel_name, rels) + (f"; relationships of {obj.name}: {', '.join(rels)}" if rels else f"; {obj.name} has no lookup fields")
        ctx.add(key, f"{obj.name} has no relationship {rel_name}{hint}", spec.line)
        return None
    _check_writable(ctx, spec, ref, obj)
    parent_name = spec.parent_object or (ref.reference_to[0] if len(ref.reference_to) == 1 else None)
    if parent_name is None:
        ctx.add(key, f"{rel_name} can point to {', '.join(ref.reference_to)}; set parent_object: to one of them", spec.line)
        return ref
    if not any(parent_name.lower() == r.lower() for r in ref.reference_to):
        ctx.add(key, f"{rel_name} points to {', '.join(ref.reference_to)}, not {parent_name}", spec.line)
        return ref
    try:
        parent = describe.describe(parent_name)
    except ObjectNotFound:
        ctx.add(key, f"the parent object {parent_name} is not in the org", spec.line)
        return ref
    ext = parent.field(ext_name)
    if ext is None:
        ctx.add(key, f"{parent.name} has no field {ext_name}{_ext_id_list(parent)}", spec.line)
    elif not ext.external_id:
        ctx.add(key, f"{ext.name} is not an External ID field on {parent.name}{_ext_id_list(parent)}", spec.line)
    return ref


def _check_writable(ctx: _Ctx, spec: FieldSpec, field: FieldDescribe, obj: ObjectDescribe) -> None:
    key = f"fields.{spec.target}"
    op = ctx.flow.target.operation
    if field.calculated or field.auto_number or field.type == "id":
        what = "a formula field" if field.calculated else ("an auto-number field" if field.auto_number else "the record Id")
        ctx.add(key, f"{obj.name}.{field.name} is {what}; Salesforce sets it and it cannot be written", spec.line)
        return
    needs = {"insert": ("createable",), "upsert": ("createable",), "update": ("updateable",)}[op]
    for attr in needs:
        if not getattr(field, attr):
            verb = "created" if attr == "createable" else "updated"
            ctx.add(key, f"{obj.name}.{field.name} cannot be written when a record is {verb} (operation {op}); "
                         "check field-level security for the integration user", spec.line)


def _value_kind(spec: FieldSpec, columns: dict[str, str] | None) -> tuple[str | None, str | None]:
    """(kind of the mapped value, problem evaluating it); kind None when it cannot be known offline."""
    if spec.const is not None:
        c = spec.const
        return (BOOL if isinstance(c, bool) else INT if isinstance(c, int) else NUMBER if isinstance(c, float) else TEXT), None
    if columns is None:
        return None, None
    if spec.column is not None:
        pg = columns.get(spec.column)
        return (pg_kind(pg) if pg is not None else None), None
    if spec.expr is not None:
        if any(c not in columns for c in spec.expr_columns):
            return None, None
        frame = pl.DataFrame(schema={c: polars_dtype(pg_kind(columns[c])) for c in spec.expr_columns} or {"_": pl.Utf8})
        try:
            dtype = frame.lazy().select(pl.sql_expr(spec.expr).alias("v")).collect_schema()["v"]
        except Exception as exc:  # noqa: BLE001 - Polars raises several types; each means the expression fails on these types
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return None, f"the expression fails on the source column types ({reason})"
        return polars_kind(dtype), None
    return None, None


def _check_value_type(ctx: _Ctx, spec: FieldSpec, field: FieldDescribe, columns: dict[str, str] | None) -> None:
    key = f"fields.{spec.target}"
    kind, problem = _value_kind(spec, columns)
    if problem:
        ctx.add(key, problem, spec.line)
        return
    if kind is None:
        return
    if spec.value_map is not None and kind in (TEXT, INT, BOOL):
        kind = TEXT  # mapped values are text
    if spec.const is not None and isinstance(spec.const, str) and field.type in ("date", "datetime", "int", "double", "currency", "percent", "boolean"):
        return  # a text constant is checked against the field's format when rows are built
    why = incompatibility(kind, field.type)
    if why:
        source = f"column {spec.column} ({columns[spec.column]})" if spec.column and columns else "the value"
        ctx.add(key, f"{source} cannot feed {field.name} ({field.type}): {why}", spec.line)


def _check_value_map(ctx: _Ctx, spec: FieldSpec, field: FieldDescribe) -> None:
    if not spec.value_map:
        return
    key = f"fields.{spec.target}"
    if field.type not in ("picklist", "multipicklist"):
        return
    allowed = {v.lower(): v for v in field.picklist_values}
    for source_value, target in spec.value_map.items():
        if target.lower() not in allowed:
            ctx.add(
                f"{key}.value_map.{source_value}",
                _with_list(f"{target!r} is not a value of the {field.name} picklist{_close(target, field.picklist_values)}",
                           "Allowed values", field.picklist_values),
                ctx.flow.line_of(f"{key}.value_map.{source_value}") or spec.line,
            )


def _check_on_null(ctx: _Ctx, spec: FieldSpec, field: FieldDescribe) -> None:
    if spec.on_null == "clear" and not field.nillable:
        ctx.add(f"fields.{spec.target}.on_null", f"{field.name} is required and cannot be cleared; use on_null: leave",
                ctx.flow.line_of(f"fields.{spec.target}.on_null") or spec.line)


# ---------------------------------------------------------------------------------------------- wording


def _close(name: str, candidates: Iterable[str]) -> str:
    names = list(candidates)
    lowered = {c.lower(): c for c in names}
    match = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.7)
    return f"; did you mean {' or '.join(lowered[m] for m in match)}?" if match else ""


def _with_list(message: str, label: str, values: Iterable[str]) -> str:
    """`message; label: a, b` or, after a question, `message? Label: a, b`."""
    listed = ", ".join(values)
    return f"{message} {label}: {listed}" if message.endswith("?") else f"{message}; {label.lower()}: {listed}"


def _close_field(name: str, obj: ObjectDescribe) -> str:
    """Close API names, or fields whose label matches what was written (users often type the label)."""
    by_label = [f.name for f in obj.fields.values() if f.label.lower() == name.lower()]
    if by_label:
        return f"; did you mean {by_label[0]} (labelled {name!r})?"
    return _close(name, obj.fields)


def _ext_id_list(obj: ObjectDescribe) -> str:
    ids = [f.name for f in obj.external_id_fields()]
    return f"; External ID fields: {', '.join(ids)}" if ids else f"; {obj.name} has no External ID fields"
