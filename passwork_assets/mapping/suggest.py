"""A draft flow file from a source table and a Salesforce object, the way Passwork's mapping screen does it.

Columns are matched to fields by normalized API name and by label (`usage_date` ~ `UsageDate__c`, a column
named `数量` ~ the field labelled 数量). External ID fields come first: for the upsert key, and for every
parent link (a lookup field becomes `Relationship.ParentExternalId`). What could not be decided is left as a
comment in the draft, with the alternatives.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

import yaml

from passwork_assets.mapping.type_compat import DATE, INT, TEXT, TIMESTAMP, TIMESTAMPTZ, incompatibility, pg_kind
from passwork_assets.salesforce.describe import (
    DescribeProvider,
    FieldDescribe,
    ObjectDescribe,
    ObjectNotFound,
    StaticDescribes,
)

_CURSOR_NAMES = ("updated_at", "modified_at", "last_modified", "last_modified_at", "updated", "modified", "changed_at")
_KEYISH = re.compile(r"(^id$|_id$|_key$|_code$|_no$|_number$|^code$|^key$)")
_MIN_SCORE = 0.8
_PICKLIST_SHOWN = 12


def _norm(text: str) -> str:
    """Lowercase letters and digits only, without the `__c` / `__r` suffix (Japanese kept as is, NFKC)."""
    t = unicodedata.normalize("NFKC", text)
    t = re.sub(r"__(c|r)$", "", t, flags=re.IGNORECASE)
    return re.sub(r"[\W_]+", "", t).lower()


def _similarity(column: str, *names: str) -> float:
    """How well a column matches a field, 0..1: exact normalized name 1.0, exact label 0.95, else fuzzy."""
    col = _norm(column)
    best = 0.0
    for i, name in enumerate(names):
        n = _norm(name)
        if not n or not col:
            continue
        if col == n:
            best = max(best, 1.0 if i == 0 else 0.95)
        elif min(len(col), len(n)) >= 3 and (col in n or n in col) and not col.isascii():
            best = max(best, 0.85)  # 契約期間 for the label 契約期間 (月)
        else:
            best = max(best, difflib.SequenceMatcher(None, col, n).ratio() * 0.9)
    return best


@dataclass
class _Match:
    field: FieldDescribe
    column: str
    score: float


def suggest_mapping(
    table_columns: dict[str, str],
    describe: DescribeProvider | ObjectDescribe,
    *,
    connection: str,
    table: str,
    object: str,
) -> str:
    """A YAML draft of a flow from `table` (its columns -> PostgreSQL types) to the Salesforce `object`.

    `describe` is best a provider (e.g. the Salesforce client): it answers the object's describe and its
    parents', whose External ID fields the parent links need. Given only the object's `ObjectDescribe`, parent
    links are drafted as comments. The draft loads as a flow file once its choices are confirmed;
    `passwork validate` then checks it live.
    """
    if isinstance(describe, ObjectDescribe):
        obj = describe
        describe = StaticDescribes([describe])
    else:
        obj = describe.describe(object)
    columns = dict(table_columns)
    used: set[str] = set()
    lines: list[str] = []
    comments_after: list[str] = []

    key_field, key_column, key_notes = _choose_key(obj, columns)
    if key_column:
        used.add(key_column)

    links = [_parent_link(ref, describe, columns, used) for ref in obj.reference_fields() if ref.createable]
    for link in links:
        if link.column:
            used.add(link.column)

    plain = [
        f for f in obj.fields.values()
        if f.createable and not f.calculated and not f.auto_number and f.type != "id" and not f.is_reference
        and f is not key_field
    ]
    matches = _assign(plain, {c: t for c, t in columns.items() if c not in used})
    for m in matches:
        used.add(m.column)
    cursor = next((c for c in _CURSOR_NAMES if c in columns and pg_kind(columns[c]) in (TIMESTAMP, TIMESTAMPTZ, INT, DATE)), None)
    if cursor is None:
        cursor = next((c for c, t in columns.items() if pg_kind(t) in (TIMESTAMP, TIMESTAMPTZ) and "update" in c.lower()), None)

    read = [c for c in columns if c in used or c == cursor]
    flow_name = re.sub(r"[^a-z0-9_]+", "_", f"{connection}_{table.split('.')[-1]}".lower()).strip("_")

    lines += [
        f"flow: {flow_name}",
        f"description: {_scalar(f'{table} to {obj.name} (draft from passwork suggest; review before use)')}",
        "source:",
        f"  connection: {connection}",
        f"  table: {table}",
        f"  columns: [{', '.join(read)}]",
    ]
    lines.append(f"  cursor: {cursor}" if cursor else "  # cursor: <a column that grows with every change, e.g. updated_at>")
    lines += ["target:", f"  object: {obj.name}", "  operation: upsert"]
    if key_field is not None:
        lines.append(f"  external_id: {key_field.name}")
    else:
        lines.append(f"  external_id: {_scalar('CHOOSE_AN_EXTERNAL_ID_FIELD')}")
    lines += [f"  {n}" for n in key_notes]
    lines.append("fields:")

    if key_field is not None:
        if key_column:
            lines.append(f"  {key_field.name}: {key_column}   # upsert key ({key_field.label})")
        else:
            lines.append(f"  # {key_field.name}: <the column or expression that identifies a row>   # upsert key, no column matches")

    for link in links:
        lines += link.lines

    for m in matches:
        lines.append(f"  {m.field.name}: {m.column}   # {_describe_field(m.field)}")
        alternatives = [c for c in columns if c != m.column and c not in used and _similarity(c, m.field.name, m.field.label) >= 0.6]
        if alternatives:
            lines.append(f"  #   or: {', '.join(alternatives)}")

    mapped = {m.field.name for m in matches} | ({key_field.name} if key_field else set())
    missing_required = [f.name for f in plain if f.required_on_create and f.name not in mapped]
    if missing_required:
        comments_after.append(f"required to create {obj.name}, no column found: {', '.join(missing_required)}")
    spare = [c for c in columns if c not in used and c != cursor]
    if spare:
        comments_after.append(f"columns not mapped: {', '.join(spare)}")
    unmapped_fields = [f.name for f in plain if f.name not in mapped and f.name not in missing_required]
    if unmapped_fields:
        comments_after.append(f"other writable fields of {obj.name}: {', '.join(unmapped_fields)}")
    lines += [f"  # {c}" for c in comments_after]
    return "\n".join(lines) + "\n"


def _choose_key(obj: ObjectDescribe, columns: dict[str, str]) -> tuple[FieldDescribe | None, str | None, list[str]]:
    """The External ID field to upsert on and the column feeding it; notes list the other choices."""
    ext_ids = [f for f in obj.external_id_fields() if f.createable]
    notes: list[str] = []
    if not ext_ids:
        notes.append(f"# {obj.name} has no External ID field: add one (Text, External ID, Unique) to upsert without duplicates")
        return None, None, notes
    scored = []
    for f in ext_ids:
        best = max(((c, _similarity(c, f.name, f.label)) for c in columns if incompatibility(pg_kind(columns[c]), "string") is None),
                   key=lambda cs: cs[1], default=(None, 0.0))
        scored.append((best[1], f, best[0]))
    scored.sort(key=lambda s: -s[0])
    score, field, column = scored[0]
    if len(ext_ids) > 1:
        notes.append(f"# other External ID fields of {obj.name}: {', '.join(f.name for _, f, _ in scored[1:])}")
    if score < _MIN_SCORE:
        column = _keyish_column(columns, obj.name)
        if column:
            notes.append(f"# no column is named like {field.name}; {column} looks like the row's key")
    return field, column, notes


def _keyish_column(columns: dict[str, str], object_name: str) -> str | None:
    candidates = [c for c, t in columns.items() if _KEYISH.search(c.lower()) and pg_kind(t) in (TEXT, INT)]
    own = [c for c in candidates if _norm(object_name) and _norm(object_name) in _norm(c)]
    return (own or candidates or [None])[0]


@dataclass
class _Link:
    column: str | None
    lines: list[str]


def _parent_link(ref: FieldDescribe, describe: DescribeProvider, columns: dict[str, str], used: set[str]) -> _Link:
    """A parent link line for a lookup field: the parent's External ID fields first, matched to a column."""
    rel = ref.relationship_name or ref.name
    required = " (required)" if ref.required_on_create else ""
    parents: list[tuple[ObjectDescribe, FieldDescribe]] = []
    for parent_name in ref.reference_to:
        try:
            parent = describe.describe(parent_name)
        except ObjectNotFound:
            continue
        parents += [(parent, f) for f in parent.external_id_fields()]
    if not parents:
        targets = ", ".join(ref.reference_to)
        return _Link(None, [f"  # {rel}.<External ID field of {targets}>: <column>   # parent link{required}"])
    best: tuple[float, ObjectDescribe, FieldDescribe, str | None] = (0.0, parents[0][0], parents[0][1], None)
    for parent, ext in parents:
        for c, t in columns.items():
            if c in used or pg_kind(t) not in (TEXT, INT):
                continue
            score = _similarity(c, ext.name, ext.label, parent.name, rel, ref.label)
            if _norm(parent.name) and _norm(c).startswith(_norm(parent.name)):
                score = max(score, 0.85)  # contract_no for a lookup to Contract
            if score > best[0]:
                best = (score, parent, ext, c)
    score, parent, ext, column = best
    others = [f"{rel}.{f.name}" for p, f in parents if f is not ext]
    tail = f"; or {', '.join(others)}" if others else ""
    if column is not None and score >= _MIN_SCORE:
        return _Link(column, [f"  {rel}.{ext.name}: {column}   # parent link to {parent.name} by External ID{required}{tail}"])
    keyish = [c for c, t in columns.items() if c not in used and _KEYISH.search(c.lower()) and pg_kind(t) in (TEXT, INT)]
    hint = f"; candidates: {', '.join(keyish)}" if keyish else ""
    return _Link(None, [f"  # {rel}.{ext.name}: <column holding the {parent.name}'s {ext.name}>   # parent link{required}{tail}{hint}"])


def _assign(fields: list[FieldDescribe], columns: dict[str, str]) -> list[_Match]:
    """Best column per field, each column used once, highest scores first; types must fit."""
    candidates = []
    for f in fields:
        for c, t in columns.items():
            if incompatibility(pg_kind(t), f.type) is not None:
                continue
            score = _similarity(c, f.name, f.label)
            if score >= _MIN_SCORE:
                candidates.append(_Match(f, c, score))
    candidates.sort(key=lambda m: -m.score)
    taken_f: set[str] = set()
    taken_c: set[str] = set()
    out = []
    for m in candidates:
        if m.field.name in taken_f or m.column in taken_c:
            continue
        taken_f.add(m.field.name)
        taken_c.add(m.column)
        out.append(m)
    order = {f.name: i for i, f in enumerate(fields)}
    return sorted(out, key=lambda m: order[m.field.name])


def _describe_field(f: FieldDescribe) -> str:
    text = f"{f.label}, {f.type}"
    if f.type in ("string", "textarea") and f.length:
        text += f"({f.length})"
    if f.required_on_create:
        text += ", required"
    if f.type in ("picklist", "multipicklist") and f.picklist_values:
        shown = ", ".join(f.picklist_values[:_PICKLIST_SHOWN]) + (", ..." if len(f.picklist_values) > _PICKLIST_SHOWN else "")
        text += f"; values: {shown} (add a value_map if the source's differ)"
    return text


def _scalar(text: str) -> str:
    """A YAML scalar for `text`, quoted only when needed."""
    dumped = yaml.safe_dump(text, allow_unicode=True, default_flow_style=True, width=10_000).strip()
    return dumped.removesuffix("\n...").removesuffix("...").strip()
