"""The org: the one write path (validation + storage) shared by REST, sObject Collections and Bulk 2.0.

``Org.write_many`` validates a batch of rows against the schema, resolves parent links by External ID
with one indexed lookup per parent key set, matches existing records, and writes everything in one SQLite
transaction. Outcomes come back one per input row, in order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from salesforce_emulator import ids
from salesforce_emulator.errors import ALL_OR_NONE_ROLLED_BACK, RecordError, SalesforceError, no_such_column
from salesforce_emulator.faults import Faults
from salesforce_emulator.schema import FieldDef, ObjectDef, OrgSchema
from salesforce_emulator.store import FIRST_SERIAL, Store, decode_record, encode_record, match_key
from salesforce_emulator.values import Converter, InvalidValue, TypeMismatch, converter_for, now_datetime, type_error

OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
VALUE_FORMATS = ("json", "csv")
# Bulk CSV: this cell value sets a field to null (an empty cell leaves it as is).
CSV_NULL = "#N/A"

_dumps = encode_record
_loads = decode_record


@dataclass(slots=True)
class WriteOutcome:
    """The result of one input row: the record Id (None if unknown), whether it was created, the error."""

    id: str | None
    created: bool
    error: RecordError | None


# A Bulk CSV column's converted values are remembered per distinct cell text (dates, metrics, amounts repeat over
# millions of rows); up to this many per column before the memory starts again.
CONVERTED_MEMO_SIZE = 4096

# Kinds of column in a row plan.
_SKIP, _ID, _FIELD, _PARENT_EXT, _JSON_PARENT, _UNKNOWN, _BAD_PARENT, _REFERENCE = range(8)


class _Column:
    __slots__ = ("key", "kind", "field", "convert", "index", "parent_obj", "parent_field", "error")

    def __init__(self, key: str, kind: int, index: int, field: FieldDef | None = None, convert: Converter | None = None,
                 parent_obj: ObjectDef | None = None, parent_field: FieldDef | None = None,
                 error: RecordError | None = None) -> None:
        self.key = key
        self.kind = kind
        self.index = index
        self.field = field
        self.convert = convert
        self.parent_obj = parent_obj
        self.parent_field = parent_field
        self.error = error


@dataclass(slots=True)
class _Pending:
    """One row in flight through write_many."""

    values: dict[str, Any]
    # Parent links still to resolve: (reference field, parent object, parent field or None for an Id, value).
    links: list[tuple[str, str, str | None, str]] | None = None
    target: str | None = None  # the Id named by the row (update/delete, upsert by Id)
    key: str | None = None  # the upsert match key
    key_text: str | None = None  # the upsert key as sent, for messages
    existing: str | None = None  # the matched record's Id
    existing_data: bytes | None = None
    new_id: str | None = None  # the Id given to a created record
    error: RecordError | None = None


def _invalid_field(obj: ObjectDef, name: str) -> RecordError:
    return RecordError("INVALID_FIELD", no_such_column(obj.name, name).message, [])


def _not_writable(name: str) -> RecordError:
    return RecordError(
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        f"Unable to create/update fields: {name}. Please check the security settings of this field and verify that "
        "it is read/write for your profile or permission set.",
        [name],
    )


def _not_indexed(obj: ObjectDef, name: str) -> RecordError:
    return RecordError(
        "INVALID_FIELD",
        f"Invalid field for upsert, must be an External Id custom or standard indexed field: {name} ({obj.name})", []
    )


def _foreign_key_missing(value: str, f: FieldDef, parent: ObjectDef) -> RecordError:
    return RecordError("INVALID_FIELD", f"Foreign key external ID: {value} not found for field {f.name} in entity "
                                        f"{parent.name}", [])


def _cross_reference() -> RecordError:
    return RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])


_ENTITY_DELETED = RecordError("ENTITY_IS_DELETED", "entity is deleted", [])
_LOCKED = RecordError("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record", [])


class Org:
    """A Salesforce org: its schema and its records."""

    def __init__(self, schema: OrgSchema, store: Store, faults: Faults | None = None) -> None:
        self.schema = schema
        self.store = store
        self.faults = faults or Faults()
        self._plans: dict[tuple[str, str, str, tuple[str, ...]], list[_Column]] = {}
        self._readers: dict[tuple[Any, ...], Callable[[Any], _Pending]] = {}
        self._converters: dict[tuple[str, str], Converter] = {}
        self._templates: dict[str, dict[str, None]] = {
            o.name: dict.fromkeys(o.fields) for o in schema.objects.values()
        }

    # -- reads ------------------------------------------------------------------------------------------

    def _record(self, obj: ObjectDef, data: str) -> dict[str, Any]:
        record = dict(self._templates[obj.name])
        record.update(_loads(data))
        return record

    def get(self, obj: str, record_id: str, *, include_deleted: bool = False) -> dict | None:
        """The record with this 15- or 18-character Id, or None (also None for a deleted record by default)."""
        odef = self.schema.object(obj)
        full = ids.normalize(record_id)
        if full is None:
            return None
        found = self.store.fetch_by_ids(odef.name, [full]).get(full)
        if found is None or (found[0] and not include_deleted):
            return None
        return self._record(odef, found[1])

    def iter_records(self, obj: str, *, include_deleted: bool = False) -> Iterator[dict]:
        """Every record of ``obj`` in creation order: API field name -> value, every field present (None if unset)."""
        odef = self.schema.object(obj)
        template = self._templates[odef.name]
        for data in self.store.iter_data(odef.name, include_deleted=include_deleted):
            record = dict(template)
            record.update(_loads(data))
            yield record

    def find_by_external_id(self, obj: str, field: str, value: str) -> list[dict]:
        """Live records whose External ID / indexed ``field`` matches ``value`` (as upsert matches)."""
        odef = self.schema.object(obj)
        f = odef.field(field)
        if f is None:
            return []
        if f.type == "id":
            record = self.get(odef.name, value)
            return [record] if record else []
        key = match_key(f, value)
        if key is None:
            return []
        return [self._record(odef, data) for _, data in self._lookup(odef, f, [key]).get(key, []) if data is not None]

    def _lookup(self, odef: ObjectDef, f: FieldDef, keys: Sequence[str], *, with_data: bool = True
                ) -> dict[str, list[tuple[str, bytes | None]]]:
        """``{key: [(id, data)]}`` of live records whose ``f`` match key is in ``keys``: an index lookup
        for External ID / unique fields, a scan for other idLookup fields."""
        if f.name in self.store.table(odef.name).key_names:
            return self.store.fetch_by_keys(odef.name, f, keys, with_data=with_data)
        wanted = set(keys)
        found: dict[str, list[tuple[str, bytes | None]]] = {}
        for data in self.store.iter_data(odef.name, include_deleted=False):
            record = _loads(data)
            key = match_key(f, record.get(f.name))
            if key in wanted:
                found.setdefault(key, []).append((record["Id"], data if with_data else None))
        return found

    def count(self, obj: str, *, include_deleted: bool = False) -> int:
        return self.store.count(self.schema.object(obj).name, include_deleted=include_deleted)

    def reset(self) -> None:
        """Delete every record: the org is empty again."""
        self.store.reset()

    # -- the write path -----------------------------------------------------------------------------------

    def _converter(self, f: FieldDef, obj: ObjectDef) -> Converter:
        key = (obj.name, f.name)
        found = self._converters.get(key)
        if found is None:
            found = self._converters[key] = converter_for(f)
        return found

    def _plan(self, obj: ObjectDef, operation: str, value_format: str, keys: tuple[str, ...]) -> list[_Column]:
        cache_key = (obj.name, operation, value_format, keys)
        plan = self._plans.get(cache_key)
        if plan is not None:
            return plan
        plan = []
        for index, key in enumerate(keys):
            lower = key.lower()
            if lower == "attributes" and value_format == "json":
                plan.append(_Column(key, _SKIP, index))
            elif lower == "id":
                plan.append(_Column(key, _ID, index))
            elif "." in key and value_format == "csv":
                rel_name, _, parent_field_name = key.partition(".")
                rel = obj.relationship(rel_name)
                if rel is None or "." in parent_field_name:
                    plan.append(_Column(key, _UNKNOWN, index, error=_invalid_field(obj, key)))
                    continue
                parent = self.schema.object(rel.reference_to[0])
                pf = parent.field(parent_field_name)
                if pf is None:
                    plan.append(_Column(key, _BAD_PARENT, index, error=_invalid_field(parent, parent_field_name)))
                elif not pf.id_lookup:
                    plan.append(_Column(key, _BAD_PARENT, index, error=_not_indexed(parent, pf.name)))
                else:
                    plan.append(_Column(key, _PARENT_EXT, index, field=rel, parent_obj=parent, parent_field=pf))
            else:
                f = obj.field(key)
                if f is not None:
                    kind = _REFERENCE if f.type == "reference" else _FIELD
                    plan.append(_Column(key, kind, index, field=f, convert=self._converter(f, obj)))
                    continue
                rel = obj.relationship(key) if value_format == "json" else None
                if rel is not None:
                    plan.append(_Column(key, _JSON_PARENT, index, field=rel,
                                        parent_obj=self.schema.object(rel.reference_to[0])))
                else:
                    plan.append(_Column(key, _UNKNOWN, index, error=_invalid_field(obj, key)))
        if len(self._plans) > 1000:
            self._plans.clear()
        self._plans[cache_key] = plan
        return plan

    def write_many(
        self,
        obj: str,
        operation: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        external_id_field: str | None = None,
        all_or_none: bool = False,
        value_format: str = "json",
        dry_run: bool = False,
    ) -> list[WriteOutcome]:
        """Insert, update, upsert, delete or hardDelete ``rows`` of ``obj``; one outcome per row, in order.

        ``value_format`` "json": typed values, parent links as ``{"Rel": {"ExtField": value}}``, null clears.
        ``value_format`` "csv": strings, parent links as ``Rel.ExtField`` keys, "" leaves a field as is (null on
        insert), ``#N/A`` clears. With ``all_or_none`` nothing is written unless every row succeeds. With ``dry_run``
        the rows are checked and nothing is written (outcomes carry the errors; new records have no Id).
        Raises SalesforceError for a request-level problem (unknown object, operation or upsert field).
        """
        odef, upsert_field = self._check_request(obj, operation, external_id_field, value_format)
        with self.store.lock:
            pending = self._read_rows(odef, operation, rows, upsert_field, value_format)
            return self._write_locked(odef, operation, pending, upsert_field, all_or_none, dry_run)

    def write_table(
        self,
        obj: str,
        operation: str,
        header: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        external_id_field: str | None = None,
        all_or_none: bool = False,
        value_format: str = "csv",
        dry_run: bool = False,
    ) -> list[WriteOutcome]:
        """``write_many`` for rows given as sequences in ``header`` order (a Bulk CSV chunk): the same checks
        and outcomes as ``write_many`` of ``[dict(zip(header, row)) for row in rows]``, without building a
        mapping per row. Every row must have ``len(header)`` values."""
        if len(set(header)) != len(header):
            # A repeated column: the mapping form keeps the last value, so go through it.
            return self.write_many(obj, operation, [dict(zip(header, row)) for row in rows],
                                   external_id_field=external_id_field, all_or_none=all_or_none,
                                   value_format=value_format, dry_run=dry_run)
        odef, upsert_field = self._check_request(obj, operation, external_id_field, value_format)
        width = len(header)
        for number, row in enumerate(rows):
            if len(row) != width:
                raise ValueError(f"row {number} has {len(row)} values, the header has {width}")
        with self.store.lock:
            read = self._reader(odef, operation, value_format, tuple(header), True, upsert_field)
            pending = list(map(read, rows))
            return self._write_locked(odef, operation, pending, upsert_field, all_or_none, dry_run)

    def _check_request(self, obj: str, operation: str, external_id_field: str | None, value_format: str
                       ) -> tuple[ObjectDef, FieldDef | None]:
        try:
            odef = self.schema.object(obj)
        except KeyError:
            raise SalesforceError(404, "NOT_FOUND", "The requested resource does not exist") from None
        if operation not in OPERATIONS:
            raise ValueError(f"operation {operation!r} is not one of {', '.join(OPERATIONS)}")
        if value_format not in VALUE_FORMATS:
            raise ValueError(f"value_format {value_format!r} is not one of {', '.join(VALUE_FORMATS)}")
        upsert_field: FieldDef | None = None
        if operation == "upsert":
            if not external_id_field:
                raise SalesforceError(400, "MISSING_ARGUMENT", "External ID field not specified for upsert")
            upsert_field = odef.field(external_id_field)
            if upsert_field is None:
                raise SalesforceError(400, "INVALID_FIELD", _invalid_field(odef, external_id_field).message)
            if not upsert_field.id_lookup:
                raise SalesforceError(400, "INVALID_FIELD", _not_indexed(odef, upsert_field.name).message)
        return odef, upsert_field

    def _write_locked(self, odef: ObjectDef, operation: str, pending: list[_Pending],
                      upsert_field: FieldDef | None, all_or_none: bool, dry_run: bool) -> list[WriteOutcome]:
        if operation in ("delete", "hardDelete"):
            self._match_by_id(odef, pending, operation)
        else:
            self._resolve_parents(odef, pending)
            if operation == "update":
                self._match_by_id(odef, pending, operation)
            elif operation == "upsert":
                assert upsert_field is not None
                self._match_upsert(odef, pending, upsert_field)
            self._check_rows(odef, operation, pending, upsert_field)
        if self.faults.lock_fault_active(odef.name):
            for p in pending:
                if p.error is None and self.faults.lock_row():
                    p.error = _LOCKED
        if dry_run:
            return [WriteOutcome(p.existing or p.target, p.error is None and p.existing is None, p.error)
                    for p in pending]
        if all_or_none and any(p.error is not None for p in pending):
            return [WriteOutcome(p.existing or p.target, False, p.error or ALL_OR_NONE_ROLLED_BACK) for p in pending]
        with self.store.transaction():
            if operation in ("delete", "hardDelete"):
                return self._delete(odef, pending, hard=operation == "hardDelete")
            return self._save(odef, pending)

    # Phase 1: read every row into typed values, with a row reader compiled once per column layout.
    def _read_rows(self, odef: ObjectDef, operation: str, rows: Sequence[Mapping[str, Any]],
                   upsert_field: FieldDef | None, value_format: str) -> list[_Pending]:
        out: list[_Pending] = []
        last_keys: tuple[str, ...] | None = None
        run: list[Mapping[str, Any]] = []
        for row in rows:
            keys = tuple(row)
            if keys != last_keys:
                if run:
                    assert last_keys is not None
                    read = self._reader(odef, operation, value_format, last_keys, False, upsert_field)
                    out.extend(map(read, run))
                run = []
                last_keys = keys
            run.append(row)
        if run:
            assert last_keys is not None
            read = self._reader(odef, operation, value_format, last_keys, False, upsert_field)
            out.extend(map(read, run))
        return out

    def _reader(self, odef: ObjectDef, operation: str, value_format: str, keys: tuple[str, ...], positional: bool,
                upsert_field: FieldDef | None) -> Callable[[Any], _Pending]:
        cache_key = (odef.name, operation, value_format, keys, positional, upsert_field.name if upsert_field else None)
        reader = self._readers.get(cache_key)
        if reader is None:
            if len(self._readers) > 1000:
                self._readers.clear()
            reader = self._readers[cache_key] = self._compile_reader(odef, operation, value_format, keys, positional,
                                                                     upsert_field)
        return reader

    def _compile_reader(self, odef: ObjectDef, operation: str, value_format: str, keys: tuple[str, ...],
                        positional: bool, upsert_field: FieldDef | None) -> Callable[[Any], _Pending]:
        """A function reading one row (a mapping, or a sequence in ``keys`` order when ``positional``) into a
        ``_Pending``: the columns' checks unrolled into straight-line code, so a Bulk load of a million rows does
        no per-cell dispatch. Each column does exactly what the column kinds of ``_plan`` define."""
        csv = value_format == "csv"
        deleting = operation in ("delete", "hardDelete")
        plan = self._plan(odef, operation, value_format, keys)
        if deleting:
            plan = [c for c in plan if c.kind in (_ID, _UNKNOWN, _SKIP)]
        ns: dict[str, Any] = {
            "_Pending": _Pending, "TypeMismatch": TypeMismatch, "InvalidValue": InvalidValue, "type_error": type_error,
            "normalize": ids.normalize, "RecordError": RecordError, "match_key": match_key, "CSV_NULL": CSV_NULL,
            "reference_id": self._reference_id, "json_parent": self._json_parent, "odef": odef,
            "value_format": value_format, "upsert_field": upsert_field, "MEMO_SIZE": CONVERTED_MEMO_SIZE,
        }
        empty = "raw is None or raw == \"\""
        code = ["def read_row(row):", "    values = {}", "    p = _Pending(values)", "    links = None",
                "    target = None", "    try:"]
        emit = code.append
        for n, c in enumerate(plan):
            if c.kind == _SKIP:
                continue
            ns[f"c{n}"] = c
            if c.kind in (_UNKNOWN, _BAD_PARENT):
                emit(f"        p.error = c{n}.error")
                emit("        return p")
                break
            emit(f"        raw = row[{c.index if positional else repr(c.key)}]")
            name = repr(c.field.name) if c.field is not None else ""
            if c.kind == _FIELD:
                ns[f"conv{n}"] = c.convert
                emit(f"        if {empty}:")
                emit("            pass" if csv else f"            values[{name}] = None")
                if csv:
                    emit("        elif raw == CSV_NULL:")
                    emit(f"            values[{name}] = None")
                assert c.field is not None
                if csv and not (c.field.unique or c.field.external_id):
                    # CSV cells are strings and the converters pure functions of them, so a value converted once
                    # is the value every time; refused values are not remembered and fail the same way each time.
                    ns[f"memo{n}"] = {}
                    emit(f"        elif (converted := memo{n}.get(raw)) is not None:")
                    emit(f"            values[{name}] = converted")
                    emit("        else:")
                    emit("            try:")
                    emit(f"                values[{name}] = converted = conv{n}(raw)")
                    emit("            except TypeMismatch:")
                    emit(f"                p.error = type_error(c{n}.field, raw, value_format, c{n}.index)")
                    emit("                return p")
                    emit(f"            if len(memo{n}) >= MEMO_SIZE:")
                    emit(f"                memo{n}.clear()")
                    emit(f"            memo{n}[raw] = converted")
                    continue
                emit("        else:")
                emit("            try:")
                emit(f"                values[{name}] = conv{n}(raw)")
                emit("            except TypeMismatch:")
                emit(f"                p.error = type_error(c{n}.field, raw, value_format, c{n}.index)")
                emit("                return p")
            elif c.kind in (_PARENT_EXT, _REFERENCE):
                emit(f"        if {empty}:")
                emit(f"            values[{name}] = None" if not csv and c.kind == _REFERENCE else "            pass")
                if csv:
                    emit("        elif raw == CSV_NULL:")
                    emit(f"            values[{name}] = None")
                emit("        else:")
                if c.kind == _PARENT_EXT:
                    assert c.parent_obj is not None and c.parent_field is not None
                    emit(f"            link = ({name}, {c.parent_obj.name!r}, {c.parent_field.name!r}, raw)")
                else:
                    emit(f"            link = reference_id(odef, c{n}.field, raw)")
                emit("            if links is None:")
                emit("                links = [link]")
                emit("            else:")
                emit("                links.append(link)")
            elif c.kind == _ID:
                emit(f"        if not ({empty}):")
                emit("            full = normalize(raw) if isinstance(raw, str) else None")
                emit(f"            if full is None or not full.startswith({odef.key_prefix!r}):")
                if deleting:
                    emit("                p.error = RecordError(\"MALFORMED_ID\", f\"malformed id {raw}\", [])")
                else:
                    emit("                p.error = RecordError(\"MALFORMED_ID\", "
                         "f\"Record ID: id value of incorrect type: {raw}\", [\"Id\"])")
                emit("                return p")
                emit("            p.target = target = full")
            elif c.kind == _JSON_PARENT:
                emit("        if raw is not None:")
                emit(f"            link = json_parent(odef, c{n}, raw)")
                emit("            if links is None:")
                emit("                links = [link]")
                emit("            else:")
                emit("                links.append(link)")
            else:  # pragma: no cover - every kind of _plan is handled above
                raise AssertionError(f"unknown column kind {c.kind}")
        emit("        pass")
        emit("    except InvalidValue as exc:")
        emit("        p.error = exc.error")
        emit("        return p")
        emit("    p.links = links")
        if upsert_field is not None:
            if upsert_field.name == "Id":
                emit("    p.key = target")
            else:
                upsert_name = upsert_field.name
                emit(f"    raw_key = values.get({upsert_name!r})")
                emit("    if raw_key is None:")
                emit(f"        p.error = RecordError(\"MISSING_ARGUMENT\", {upsert_name + ' not specified'!r}, [])")
                emit("        return p")
                emit("    p.key = match_key(upsert_field, raw_key)")
                emit("    p.key_text = str(raw_key)")
        elif operation == "insert":
            emit("    if target is not None:")
            emit("        p.error = RecordError(\"INVALID_FIELD_FOR_INSERT_UPDATE\", "
                 "\"cannot specify Id in an insert call\", [\"Id\"])")
        else:
            verb = "an update" if operation == "update" else "a delete"
            emit("    if target is None:")
            emit(f"        p.error = RecordError(\"MISSING_ARGUMENT\", {'Id not specified in ' + verb + ' call'!r}, [])")
        emit("    return p")
        exec(compile("\n".join(code), f"<row reader {odef.name} {operation} {value_format}>", "exec"), ns)
        return ns["read_row"]  # type: ignore[no-any-return]

    def _reference_id(self, odef: ObjectDef, f: FieldDef, raw: Any) -> tuple[str, str, None, str]:
        full = ids.normalize(raw) if isinstance(raw, str) else None
        if full is None:
            raise InvalidValue(RecordError("MALFORMED_ID", f"{f.label}: id value of incorrect type: {raw}", [f.name]))
        targets = [self.schema.object(t) for t in f.reference_to if self.schema.has_object(t)]
        for target in targets:
            if full.startswith(target.key_prefix):
                return (f.name, target.name, None, full)
        raise InvalidValue(RecordError("FIELD_INTEGRITY_EXCEPTION", f"{f.label}: id value of incorrect type: {raw}",
                                       [f.name]))

    def _json_parent(self, odef: ObjectDef, column: _Column, raw: Any) -> tuple[str, str, str | None, str]:
        parent = column.parent_obj
        assert parent is not None and column.field is not None
        if not isinstance(raw, Mapping):
            raise InvalidValue(RecordError(
                "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{column.field.label}: value not of required type: {raw}",
                [column.field.name]))
        keys = [k for k in raw if k != "attributes"]
        if len(keys) != 1:
            raise InvalidValue(RecordError(
                "INVALID_FIELD", f"More than one External ID field in relationship {column.key}: "
                                 f"{', '.join(keys)}" if keys else f"No External ID field in relationship {column.key}",
                []))
        pf = parent.field(keys[0])
        if pf is None:
            raise InvalidValue(_invalid_field(parent, keys[0]))
        if not pf.id_lookup:
            raise InvalidValue(_not_indexed(parent, pf.name))
        value = raw[keys[0]]
        if value is None or value == "":
            raise InvalidValue(_foreign_key_missing("", pf, parent))
        if pf.type == "id":
            full = ids.normalize(str(value))
            if full is None:
                raise InvalidValue(RecordError("MALFORMED_ID", f"{column.field.label}: id value of incorrect type: "
                                                               f"{value}", [column.field.name]))
            return (column.field.name, parent.name, None, full)
        return (column.field.name, parent.name, pf.name, str(value))

    # Phase 2: parent links (by External ID or Id) -> parent Ids, one indexed lookup per parent key set.
    def _resolve_parents(self, odef: ObjectDef, pending: list[_Pending]) -> None:
        linked = [p for p in pending if p.links is not None and p.error is None]
        if not linked:
            return
        key_fields: dict[tuple[str, str | None], FieldDef | None] = {}
        # Per parent group: value as sent -> match key; a Bulk chunk repeats a few parents many times, so each
        # distinct value is keyed once.
        wanted: dict[tuple[str, str | None], dict[str, str | None]] = {}
        for p in linked:
            for _, parent_name, parent_field, value in p.links or ():
                group = (parent_name, parent_field)
                values = wanted.get(group)
                if values is None:
                    values = wanted[group] = {}
                    key_fields[group] = (None if parent_field is None
                                         else self.schema.object(parent_name).field(parent_field))
                if value not in values:
                    pf = key_fields[group]
                    values[value] = value if pf is None else match_key(pf, value)
        # Per parent group: value as sent -> the matching parent Ids (empty when none).
        resolved: dict[tuple[str, str | None], dict[str, list[str]]] = {}
        for group, values in wanted.items():
            parent_name = group[0]
            pf = key_fields[group]
            keys = {k for k in values.values() if k is not None}
            if pf is None or pf.type == "id":
                normalized = {k: ids.normalize(k) or k for k in keys}
                live = {rid for rid, (deleted, _) in self.store.fetch_by_ids(parent_name, normalized.values()).items()
                        if not deleted}
                found = {k: [full] for k, full in normalized.items() if full in live}
            else:
                matches = self._lookup(self.schema.object(parent_name), pf, list(keys), with_data=False)
                found = {k: [rid for rid, _ in v] for k, v in matches.items()}
            resolved[group] = {value: (found.get(key) or []) if key is not None else []
                               for value, key in values.items()}
        for p in linked:
            for field_name, parent_name, parent_field, value in p.links or ():
                hits = resolved[(parent_name, parent_field)][value]
                if len(hits) == 1:
                    p.values[field_name] = hits[0]
                    continue
                if not hits:
                    pf = key_fields[(parent_name, parent_field)]
                    p.error = (_cross_reference() if pf is None or pf.type == "id"
                               else _foreign_key_missing(value, pf, self.schema.object(parent_name)))
                else:
                    p.error = RecordError("INVALID_FIELD", f"Foreign key external ID: {value} matched more than 1 "
                                                           f"record for field {parent_field} in entity {parent_name}",
                                          [])
                break

    # Phase 3: match existing records.
    def _match_by_id(self, odef: ObjectDef, pending: list[_Pending], operation: str) -> None:
        targets = [p.target for p in pending if p.error is None and p.target]
        existing = self.store.fetch_by_ids(odef.name, targets)
        for p in pending:
            if p.error is not None or not p.target:
                continue
            found = existing.get(p.target)
            if found is None:
                p.error = _cross_reference()
            elif found[0]:
                p.error = _ENTITY_DELETED
            else:
                p.existing, p.existing_data = p.target, found[1]

    def _match_upsert(self, odef: ObjectDef, pending: list[_Pending], f: FieldDef) -> None:
        if f.type == "id":
            self._match_by_id(odef, [p for p in pending if p.key], "update")
            return
        seen: dict[str, list[_Pending]] = {}
        for p in pending:
            if p.error is None and p.key is not None:
                seen.setdefault(p.key, []).append(p)
        for key, group in seen.items():
            if len(group) > 1:
                for p in group:
                    p.error = RecordError("DUPLICATE_EXTERNAL_ID", f"Duplicate external id specified: {p.key_text}",
                                          [f.name])
        keys = [k for k, g in seen.items() if len(g) == 1]
        if not keys:
            return
        matches = self._lookup(odef, f, keys)
        for key in keys:
            hits = matches.get(key)
            if not hits:
                continue
            p = seen[key][0]
            if len(hits) > 1:
                p.error = RecordError("DUPLICATE_EXTERNAL_ID", "A user-specified external ID matches more than one "
                                                               "record during an upsert", [f.name])
            else:
                p.existing, p.existing_data = hits[0]

    # Phase 4: what needs the matched record: writability, required fields, unique values.
    def _check_rows(self, odef: ObjectDef, operation: str, pending: list[_Pending], upsert_field: FieldDef | None
                    ) -> None:
        fields = odef.fields
        required = [f.name for f in fields.values() if f.required_on_create]
        not_nillable = {f.name for f in fields.values() if not f.nillable and f.type != "boolean"}
        not_createable = {name for name, f in fields.items() if not f.createable}
        not_updateable = {name for name, f in fields.items() if not f.updateable}
        for p in pending:
            if p.error is not None:
                continue
            creating = p.existing is None
            refused = (not_createable if creating else not_updateable).intersection(p.values)
            if refused:
                p.error = _not_writable(next(name for name in p.values if name in refused))
                continue
            if creating:
                missing = [name for name in required if p.values.get(name) is None]
            else:
                missing = [name for name, value in p.values.items() if value is None and name in not_nillable]
            if missing:
                p.error = RecordError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]",
                                      missing)
        self._check_unique(odef, pending, upsert_field)

    def _check_unique(self, odef: ObjectDef, pending: list[_Pending], upsert_field: FieldDef | None) -> None:
        for f in odef.fields.values():
            if not f.unique or (upsert_field is not None and f.name == upsert_field.name):
                continue
            owners: dict[str, _Pending] = {}
            for p in pending:
                if p.error is not None or p.values.get(f.name) is None:
                    continue
                key = match_key(f, p.values[f.name])
                if key in owners:
                    p.error = RecordError("DUPLICATE_VALUE", f"duplicate value found: {f.name} duplicates value on "
                                                             "record with id: <unknown>", [])
                else:
                    owners[key] = p
            if not owners:
                continue
            stored = self._lookup(odef, f, list(owners), with_data=False)
            for key, hits in stored.items():
                p = owners[key]
                other = next((rid for rid, _ in hits if rid != p.existing), None)
                if other is not None:
                    p.error = RecordError("DUPLICATE_VALUE", f"duplicate value found: {f.name} duplicates value on "
                                                             f"record with id: {other[:15]}", [])

    # Phase 5: write.
    def _save(self, odef: ObjectDef, pending: list[_Pending]) -> list[WriteOutcome]:
        table = self.store.table(odef.name)
        now = now_datetime()
        creates = [p for p in pending if p.error is None and p.existing is None]
        auto_fields = [f for f in odef.fields.values() if f.auto_number]
        if creates:
            serial = self.store.take_counter(f"id:{odef.name}", len(creates), FIRST_SERIAL)
            autos = {f.name: _auto_number(f, self.store.take_counter(f"auto:{odef.name}.{f.name}", len(creates), 1),
                                          len(creates)) for f in auto_fields}
            defaults = {f.name: f.default_value for f in odef.fields.values()
                        if f.default_value is not None and f.createable}
            new_record_ids = ids.make_ids(odef.key_prefix, serial, len(creates))
            base = {"Id": None, "IsDeleted": False, **defaults, "CreatedDate": now, "LastModifiedDate": now,
                    "SystemModstamp": now}
            insert_row = table.insert_row
            copy = base.copy
            insert_rows = []
            append = insert_rows.append
            for offset, p in enumerate(creates):
                rid = p.new_id = new_record_ids[offset]
                record = copy()
                record["Id"] = rid
                values = p.values
                record.update(values)
                if None in values.values():
                    # An explicit null on insert leaves the field unset (its default, if any, applies).
                    for name, value in values.items():
                        if value is None:
                            if name in defaults:
                                record[name] = defaults[name]
                            else:
                                del record[name]
                for name, numbers in autos.items():
                    record[name] = numbers[offset]
                append(insert_row(serial + offset, rid, record))
            self.store.insert(odef.name, insert_rows)
        update_rows = []
        before = []
        for p in pending:
            if p.error is None and p.existing is not None:
                record = (_loads(p.existing_data) if p.existing_data else {})
                before.append(table.key_values(record))
                for name, value in p.values.items():
                    if value is None and odef.fields[name].type == "boolean":
                        value = False
                    if value is None:
                        record.pop(name, None)
                    else:
                        record[name] = value
                record["LastModifiedDate"] = record["SystemModstamp"] = now
                update_rows.append((0, _dumps(record), *table.row_values(record), _serial(odef, p.existing)))
        if update_rows:
            self.store.update(odef.name, update_rows, before)
        return [
            WriteOutcome(p.existing or p.target, False, p.error) if p.error is not None
            else WriteOutcome(p.new_id, True, None) if p.existing is None
            else WriteOutcome(p.existing, False, None)
            for p in pending
        ]

    def _delete(self, odef: ObjectDef, pending: list[_Pending], *, hard: bool) -> list[WriteOutcome]:
        victims = {p.existing: p.existing_data for p in pending if p.error is None and p.existing}
        self._delete_records(odef, victims, hard=hard, now=now_datetime())
        return [WriteOutcome(p.existing or p.target, False, p.error) for p in pending]

    def _delete_records(self, odef: ObjectDef, victims: dict[str, bytes | None], *, hard: bool, now: str) -> None:
        if not victims:
            return
        table = self.store.table(odef.name)
        before = [table.key_values(_loads(data) if data else {}) for data in victims.values()]
        if hard:
            self.store.hard_delete(odef.name, list(victims), before)
        else:
            rows = []
            for rid, data in victims.items():
                record = (_loads(data) if data else {})
                record["IsDeleted"] = True
                record["LastModifiedDate"] = record["SystemModstamp"] = now
                rows.append((1, _dumps(record), *table.row_values(record), _serial(odef, rid)))
            self.store.update(odef.name, rows, before)
        # Children: master-detail (and other cascading) children go with the parent; lookups are cleared.
        for child, f in self.schema.children_of(odef.name):
            children = self.store.children(child.name, f, list(victims))
            if not children:
                continue
            if f.cascade_delete:
                self._delete_records(child, dict(children), hard=hard, now=now)
            else:
                child_table = self.store.table(child.name)
                rows = []
                kept = []
                for rid, data in children:
                    record = _loads(data)
                    kept.append(child_table.key_values(record))
                    record.pop(f.name, None)
                    record["LastModifiedDate"] = record["SystemModstamp"] = now
                    rows.append((0, _dumps(record), *child_table.row_values(record), _serial(child, rid)))
                self.store.update(child.name, rows, kept)


def _serial(obj: ObjectDef, record_id: str) -> int:
    serial = ids.serial_of(record_id, obj.key_prefix)
    if serial is None:
        raise ValueError(f"{record_id} is not an Id of this org's {obj.name} records")
    return serial


def _auto_number(f: FieldDef, first: int, count: int) -> list[str]:
    """``count`` auto-number texts from ``first`` in the field's display format, e.g. ``U-{0000000000}``."""
    fmt = f.auto_number_format or "{0}"
    head, _, rest = fmt.partition("{")
    zeros, _, tail = rest.partition("}")
    width = len(zeros)
    return [f"{head}{str(n).zfill(width)}{tail}" for n in range(first, first + count)]
