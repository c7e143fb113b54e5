"""Loading a mappings folder: every problem reported with its file, line and key, all at once.

A folder holds `connections.yaml`, optionally `ownership.yaml`, and one YAML file per flow (every other
`*.yaml` / `*.yml`). Loading checks what can be checked without a database or Salesforce: the shape of every
file, SQL expressions parse, mapped columns are read, connections exist, parent links resolve to a flow,
field ownership, and that parent links form no cycle. `validate.py` adds the live checks.
"""

from __future__ import annotations

import difflib
import hashlib
import types
import typing
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, ValidationError

from passwork_assets.mapping.issues import MappingError, MappingIssue, display_path
from passwork_assets.mapping.models import (
    IDENTIFIER,
    SF_NAME,
    ConnectionConfig,
    ConnectionsFile,
    FieldOptions,
    FieldSpec,
    FlowDocument,
    FlowMapping,
    MappingSet,
)
from passwork_assets.mapping.ownership import OWNERSHIP_FILE, check_ownership, parse_ownership
from passwork_assets.mapping.yaml_positions import PositionedYaml, YamlProblem, parse_yaml

CONNECTIONS_FILE = "connections.yaml"


def load_mappings(directory: Path | str) -> MappingSet:
    """Load and cross-check every mapping file of `directory`; raises `MappingError` listing every problem."""
    root = Path(directory)
    if not root.is_dir():
        raise MappingError([MappingIssue(display_path(root), None, "", "mappings folder not found")])
    issues: list[MappingIssue] = []

    connections = _load_connections(root / CONNECTIONS_FILE, issues)
    flow_files = sorted(
        p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.name not in (CONNECTIONS_FILE, OWNERSHIP_FILE)
    )
    if not flow_files:
        issues.append(MappingIssue(display_path(root), None, "", "no flow files (*.yaml besides connections.yaml)"))

    flows: dict[str, FlowMapping] = {}
    for path in flow_files:
        flow = _load_flow(path, connections, issues)
        if flow is None:
            continue
        if flow.flow in flows:
            other = flows[flow.flow]
            issues.append(
                MappingIssue(
                    display_path(path), flow.line_of("flow"), "flow",
                    f"flow name {flow.flow!r} is already used by {display_path(other.path)}:{other.line_of('flow')}",
                )
            )
            continue
        flows[flow.flow] = flow

    flows = _resolve_parent_objects(flows, issues)

    ownership_path = root / OWNERSHIP_FILE
    rules = []
    if ownership_path.exists():
        doc = _parse(ownership_path, issues)
        if doc is not None:
            rules, problems = parse_ownership(doc, ownership_path)
            issues.extend(problems)
    precedence, problems = check_ownership(list(flows.values()), rules, ownership_path)
    issues.extend(problems)

    if issues:
        raise MappingError(issues)
    mappings = MappingSet(directory=root, connections=connections, flows=flows, precedence=precedence)
    mappings.object_order()  # raises MappingError naming the cycle
    return mappings


def load_connections(directory: Path | str) -> dict[str, ConnectionConfig]:
    """Only `connections.yaml` of a mappings folder (for commands that need a source but no flow)."""
    issues: list[MappingIssue] = []
    connections = _load_connections(Path(directory) / CONNECTIONS_FILE, issues)
    if issues:
        raise MappingError(issues)
    return connections


def _parse(path: Path, issues: list[MappingIssue]) -> PositionedYaml | None:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        issues.append(MappingIssue(display_path(path), None, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})"))
        return None
    try:
        return parse_yaml(text)
    except YamlProblem as exc:
        issues.append(MappingIssue(display_path(path), exc.line, "", str(exc)))
        return None


def _load_connections(path: Path, issues: list[MappingIssue]) -> dict[str, ConnectionConfig]:
    file = display_path(path)
    if not path.exists():
        issues.append(MappingIssue(file, None, "", "missing: it names the source databases (see docs/mappings.md)"))
        return {}
    doc = _parse(path, issues)
    if doc is None:
        return {}
    try:
        parsed = ConnectionsFile.model_validate(doc.data)
    except ValidationError as exc:
        # Values are not echoed here: a connection file is where a pasted secret would be.
        issues.extend(pydantic_issues(exc, ConnectionsFile, doc, file, echo_values=False))
        return {}
    return {
        name: cfg.model_copy(update={"name": name, "path": path, "line": doc.line(("connections", name))})
        for name, cfg in parsed.connections.items()
    }


def _load_flow(path: Path, connections: dict[str, ConnectionConfig], issues: list[MappingIssue]) -> FlowMapping | None:
    file = display_path(path)
    doc = _parse(path, issues)
    if doc is None:
        return None
    before = len(issues)
    try:
        parsed = FlowDocument.model_validate(doc.data)
    except ValidationError as exc:
        issues.extend(pydantic_issues(exc, FlowDocument, doc, file))
        return None
    lines = {".".join(str(p) for p in k): v for k, v in doc.lines.items() if k}

    if connections and parsed.source.connection not in connections:
        issues.append(
            MappingIssue(
                file, doc.line(("source", "connection")), "source.connection",
                f"unknown connection {parsed.source.connection!r}; connections.yaml defines: {', '.join(sorted(connections))}",
            )
        )

    fields: list[FieldSpec] = []
    seen: dict[str, int | None] = {}
    for target, value in parsed.fields.items():
        spec = _field_spec(target, value, doc, file, issues)
        if spec is None:
            continue
        if spec.target.lower() in seen:
            issues.append(
                MappingIssue(file, spec.line, f"fields.{target}", f"mapped twice (also line {seen[spec.target.lower()]}, names are case-insensitive)")
            )
            continue
        seen[spec.target.lower()] = spec.line
        fields.append(spec)

    if parsed.source.columns is not None:
        listed = set(parsed.source.columns)
        for spec in fields:
            unknown = [c for c in spec.source_columns if c not in listed]
            if unknown:
                issues.append(
                    MappingIssue(
                        file, spec.line, f"fields.{spec.target}",
                        f"reads column{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}, not in source.columns "
                        f"({', '.join(parsed.source.columns)}); add {'them' if len(unknown) > 1 else 'it'} there",
                    )
                )

    key = parsed.target.external_id
    if not any(f.target.lower() == key.lower() for f in fields) and len(issues) == before:
        issues.append(
            MappingIssue(
                file, doc.line(("target", "external_id")), "target.external_id",
                f"the upsert key {key} has no mapping under fields:; map the column holding each row's key to it",
            )
        )
    if len(issues) != before:
        return None
    return FlowMapping(
        flow=parsed.flow,
        description=parsed.description,
        path=path,
        content_hash=hashlib.sha256(path.read_bytes()).hexdigest(),
        source=parsed.source,
        target=parsed.target,
        fields=fields,
        lines=lines,
    )


def _field_spec(target: Any, value: Any, doc: PositionedYaml, file: str, issues: list[MappingIssue]) -> FieldSpec | None:
    line = doc.line(("fields", target))
    key = f"fields.{target}"
    parts = str(target).split(".")
    if not isinstance(target, str) or len(parts) > 2 or not all(SF_NAME.match(p) for p in parts):
        issues.append(
            MappingIssue(
                file, line, key,
                "must be a Salesforce field API name (Quantity__c) or a parent link Relationship.ExternalIdField "
                "(Contract__r.ContractKey__c, Account.AccountKey__c)",
            )
        )
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            issues.append(MappingIssue(file, line, key, "is empty; map a column, an expression or {const: ...}"))
            return None
        options = FieldOptions(column=text) if IDENTIFIER.match(text) else FieldOptions(expr=text)
    elif isinstance(value, dict):
        try:
            options = FieldOptions.model_validate(value)
        except ValidationError as exc:
            issues.extend(pydantic_issues(exc, FieldOptions, doc, file, prefix=("fields", target)))
            return None
    elif value is None:
        issues.append(MappingIssue(file, line, key, "has no value; map a column, an expression or {const: ...}"))
        return None
    else:
        issues.append(
            MappingIssue(
                file, line, key,
                f"got {_describe(value)}; write a column name, a SQL expression in quotes, or {{const: {value!r}}} for a fixed value",
            )
        )
        return None

    expr_columns: tuple[str, ...] = ()
    if options.expr is not None:
        try:
            expr_columns = tuple(dict.fromkeys(pl.sql_expr(options.expr).meta.root_names()))
        except Exception as exc:  # noqa: BLE001 - Polars raises several types for a bad expression; all mean "does not parse"
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            issues.append(MappingIssue(file, line, key, f"is not a valid SQL expression: {options.expr!r} ({reason})"))
            return None
    if options.parent_object is not None and len(parts) != 2:
        issues.append(
            MappingIssue(file, doc.line(("fields", target, "parent_object")), f"{key}.parent_object",
                         "applies only to parent links written Relationship.ExternalIdField")
        )
        return None
    return FieldSpec(
        target=target,
        column=options.column,
        expr=options.expr,
        const=options.const,
        value_map=options.value_map,
        on_null=options.on_null,
        parent_object=options.parent_object,
        line=line,
        expr_columns=expr_columns,
    )


def _resolve_parent_objects(flows: dict[str, FlowMapping], issues: list[MappingIssue]) -> dict[str, FlowMapping]:
    """Fill each parent link's parent_object from the flow whose upsert key is the link's External ID field."""
    by_key: dict[str, set[str]] = {}
    objects: dict[str, str] = {}
    for f in flows.values():
        by_key.setdefault(f.target.external_id.lower(), set()).add(f.target.object)
        objects.setdefault(f.target.object.lower(), f.target.object)
    out: dict[str, FlowMapping] = {}
    for name, flow in flows.items():
        new_fields = []
        for spec in flow.fields:
            if spec.is_parent_link:
                file, key = display_path(flow.path), f"fields.{spec.target}"
                ext = spec.parent_external_id or ""
                if spec.parent_object is not None:
                    if spec.parent_object.lower() not in objects:
                        issues.append(
                            MappingIssue(file, spec.line, key,
                                         f"no flow writes the parent object {spec.parent_object}; flows write: {', '.join(sorted(objects.values()))}")
                        )
                    else:
                        spec = replace(spec, parent_object=objects[spec.parent_object.lower()])
                else:
                    candidates = sorted(by_key.get(ext.lower(), ()))
                    if len(candidates) == 1:
                        spec = replace(spec, parent_object=candidates[0])
                    elif candidates:
                        issues.append(
                            MappingIssue(file, spec.line, key,
                                         f"several flows upsert on {ext} ({', '.join(candidates)}); say which is the parent with parent_object:")
                        )
                    else:
                        keys = ", ".join(sorted({f"{f.target.object}.{f.target.external_id}" for f in flows.values()}))
                        issues.append(
                            MappingIssue(file, spec.line, key,
                                         f"no flow upserts on {ext}, so the parent of this link is unknown; the parent must be written "
                                         f"by a flow (upsert keys of the flows: {keys})")
                        )
            new_fields.append(spec)
        out[name] = replace(flow, fields=new_fields)
    return out


# ---------------------------------------------------------------------------------------------- pydantic errors


def pydantic_issues(
    exc: ValidationError,
    model: type[BaseModel],
    doc: PositionedYaml,
    file: str,
    *,
    prefix: tuple[Any, ...] = (),
    echo_values: bool = True,
) -> list[MappingIssue]:
    """Pydantic's errors in the user's terms: the dotted key, its line, and what is allowed."""
    out: list[MappingIssue] = []
    for err in exc.errors(include_url=False):
        loc = prefix + tuple(p for p in err["loc"] if not _is_branch_tag(p))
        etype, last = err["type"], (loc[-1] if loc else "")
        value = err.get("input")
        got = f" (got {_describe(value)})" if echo_values else ""
        if etype == "missing":
            line, key = doc.line(loc[:-1]), _dotted(loc[:-1])
            message = f"required key {last!r} is missing"
            key = key or str(last)
        elif etype == "extra_forbidden":
            line, key = doc.line(loc), _dotted(loc[:-1])
            allowed = _allowed_keys(model, err["loc"][:-1])
            hint = difflib.get_close_matches(str(last), allowed, n=1)
            message = f"unknown key {last!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
            if allowed:
                message += f" Allowed keys: {', '.join(allowed)}"
        else:
            line, key = doc.line(loc), _dotted(loc)
            message = _type_message(err) + (got if etype not in ("value_error", "assertion_error") else "")
        out.append(MappingIssue(file, line, key, message))
    return out


def _is_branch_tag(part: Any) -> bool:
    # Union errors add the branch's type name to the location (e.g. 'str', 'function-after[...]').
    return isinstance(part, str) and (part in ("str", "int", "float", "bool") or "[" in part)


def _type_message(err: Any) -> str:
    etype, ctx = err["type"], err.get("ctx") or {}
    if etype in ("value_error", "assertion_error"):
        return str(ctx.get("error", err["msg"])).removeprefix("Value error, ")
    if etype == "literal_error":
        return f"must be one of: {ctx.get('expected', '').replace(chr(39), '')}"
    if etype in ("string_type",):
        return "must be text"
    if etype in ("int_type", "int_parsing", "int_from_float"):
        return "must be a whole number"
    if etype in ("bool_type", "bool_parsing"):
        return "must be true or false"
    if etype in ("list_type",):
        return "must be a list, e.g. [a, b]"
    if etype in ("dict_type", "model_type", "model_attributes_type"):
        return "must be a mapping (indented key: value lines)"
    if etype.startswith(("greater_than", "less_than")):
        return "must be " + err["msg"].removeprefix("Input should be ")
    return err["msg"]


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "nothing"
    return type(value).__name__


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys the model accepts at `loc` (walking nested models, dicts and lists)."""
    t: Any = model
    parts = [p for p in loc if not _is_branch_tag(p)]
    while True:
        t = _unwrap(t)
        if isinstance(t, type) and issubclass(t, BaseModel):
            if not parts:
                return [n for n, f in t.model_fields.items() if not f.exclude and n not in ("name", "path", "line")]
            part = parts.pop(0)
            if part not in t.model_fields:
                return []
            t = t.model_fields[part].annotation
        elif typing.get_origin(t) in (dict, list) and parts:
            parts.pop(0)
            t = typing.get_args(t)[-1]
        else:
            return []


def _unwrap(t: Any) -> Any:
    origin = typing.get_origin(t)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(t) if a is not type(None)]
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        return models[0] if models else (args[0] if len(args) == 1 else t)
    return t
