"""The org's objects and fields: loaded from an org-schema YAML file or from real describe JSON output.

``FieldDef`` carries what validation and describe need, named after the describe keys. Lookups by
object, field or relationship name are case-insensitive, as in Salesforce.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_ORG_SCHEMA = Path(__file__).with_name("default_org.yaml")

FIELD_TYPES = {
    "id", "string", "textarea", "picklist", "multipicklist", "combobox", "reference", "date", "datetime", "time",
    "double", "currency", "percent", "int", "long", "boolean", "email", "phone", "url", "encryptedstring",
    "base64", "address", "location", "anyType", "complexvalue",
}
TEXT_TYPES = {"string", "textarea", "picklist", "multipicklist", "combobox", "email", "phone", "url", "encryptedstring"}
NUMBER_TYPES = {"double", "currency", "percent", "int", "long"}


class SchemaError(ValueError):
    """An org-schema file that cannot be used; the message names the file, object and field."""


@dataclass
class FieldDef:
    """One field of an object, with the attributes describe reports."""

    name: str
    label: str
    type: str
    length: int = 0
    precision: int = 0
    scale: int = 0
    digits: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    defaulted_on_create: bool = False
    external_id: bool = False
    id_lookup: bool = False
    unique: bool = False
    case_sensitive: bool = False
    reference_to: list[str] = field(default_factory=list)
    relationship_name: str | None = None
    child_relationship_name: str | None = None
    relationship_order: int | None = None
    cascade_delete: bool = False
    picklist_values: list[str] = field(default_factory=list)
    restricted_picklist: bool = False
    default_value: Any = None
    calculated: bool = False
    auto_number: bool = False
    auto_number_format: str | None = None
    name_field: bool = False
    custom: bool = False
    filterable: bool = True
    raw: dict[str, Any] | None = None

    @property
    def required_on_create(self) -> bool:
        """Salesforce's notion of a required field: not nillable, createable and not defaulted on create."""
        return not self.nillable and self.createable and not self.defaulted_on_create and self.type != "boolean"


@dataclass
class ObjectDef:
    """One sObject: its name, label, key prefix and fields (keyed by API name, in describe order)."""

    name: str
    label: str
    key_prefix: str
    fields: dict[str, FieldDef]
    label_plural: str = ""
    custom: bool = False
    raw: dict[str, Any] | None = None
    _by_lower: dict[str, FieldDef] = field(default_factory=dict, repr=False)
    _by_relationship: dict[str, FieldDef] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.reindex()

    def reindex(self) -> None:
        """Rebuild the case-insensitive indexes after ``fields`` changed."""
        self._by_lower = {name.lower(): f for name, f in self.fields.items()}
        self._by_relationship = {
            f.relationship_name.lower(): f for f in self.fields.values() if f.relationship_name
        }

    def field(self, name: str) -> FieldDef | None:
        """The field named ``name`` (case-insensitive), or None."""
        return self._by_lower.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        """The reference field whose relationshipName is ``name`` (case-insensitive), or None."""
        return self._by_relationship.get(name.lower())

    def external_id_fields(self) -> list[FieldDef]:
        return [f for f in self.fields.values() if f.external_id]

    def name_field(self) -> FieldDef | None:
        return next((f for f in self.fields.values() if f.name_field), None)


@dataclass
class OrgSchema:
    """All objects of the org, keyed by API name."""

    objects: dict[str, ObjectDef]
    source: str = ""

    def __post_init__(self) -> None:
        self._by_lower = {name.lower(): o for name, o in self.objects.items()}

    def object(self, name: str) -> ObjectDef:
        """The object named ``name`` (case-insensitive); KeyError if the org has none."""
        try:
            return self._by_lower[name.lower()]
        except KeyError:
            raise KeyError(name) from None

    def has_object(self, name: str) -> bool:
        return name.lower() in self._by_lower

    def children_of(self, obj: str) -> list[tuple[ObjectDef, FieldDef]]:
        """The (child object, reference field) pairs that point at ``obj``."""
        target = self.object(obj).name
        return [
            (child, f)
            for child in self.objects.values()
            for f in child.fields.values()
            if f.type == "reference" and target in f.reference_to
        ]


# ---------------------------------------------------------------------------------------------------------
# System fields every object has.

def _system_fields(custom: bool, name_spec: dict[str, Any] | None, object_name: str) -> dict[str, FieldDef]:
    fields: dict[str, FieldDef] = {
        "Id": FieldDef(
            "Id", "Record ID", "id", length=18, nillable=False, createable=False, updateable=False,
            defaulted_on_create=True, id_lookup=True, filterable=True,
        ),
        "IsDeleted": FieldDef(
            "IsDeleted", "Deleted", "boolean", nillable=False, createable=False, updateable=False,
            defaulted_on_create=True,
        ),
    }
    if custom:
        spec = name_spec or {}
        auto = spec.get("auto_number")
        fields["Name"] = FieldDef(
            "Name", str(spec.get("label", f"{object_name} Name")), "string",
            # As in real describe output: an auto-number Name is not nillable, not createable, defaulted on create.
            length=int(spec.get("length", 80)),
            nillable=False, createable=not auto, updateable=not auto, defaulted_on_create=bool(auto),
            auto_number=bool(auto), auto_number_format=auto, name_field=True, id_lookup=bool(auto),
        )
    return fields


def _audit_fields() -> dict[str, FieldDef]:
    return {
        name: FieldDef(name, label, "datetime", nillable=False, createable=False, updateable=False,
                       defaulted_on_create=True)
        for name, label in (
            ("CreatedDate", "Created Date"), ("LastModifiedDate", "Last Modified Date"),
            ("SystemModstamp", "System Modstamp"),
        )
    }


# ---------------------------------------------------------------------------------------------------------
# The YAML org-schema format (default_org.yaml).

def _field_from_yaml(path: Path, obj: str, name: str, spec: Any) -> FieldDef:
    where = f"{path}: objects.{obj}.fields.{name}"
    if not isinstance(spec, dict):
        raise SchemaError(f"{where}: expected a mapping of field attributes, got {spec!r}")
    ftype = spec.get("type")
    if ftype not in FIELD_TYPES:
        raise SchemaError(f"{where}: type {ftype!r} is not one of {', '.join(sorted(FIELD_TYPES))}")
    required = bool(spec.get("required", False))
    auto = spec.get("auto_number")
    reference_to = spec.get("reference_to", [])
    if isinstance(reference_to, str):
        reference_to = [reference_to]
    if ftype == "reference" and (not reference_to or not spec.get("relationship_name")):
        raise SchemaError(f"{where}: a reference field needs reference_to and relationship_name")
    master_detail = bool(spec.get("master_detail", False))
    values = [str(v) for v in spec.get("values", [])]
    default = spec.get("default")
    if default is not None and values and str(default) not in values:
        raise SchemaError(f"{where}: default {default!r} is not one of the picklist values")
    external_id = bool(spec.get("external_id", False))
    custom = name.endswith("__c")
    precision = int(spec.get("precision", 18 if ftype in {"double", "currency", "percent"} else 0))
    scale = int(spec.get("scale", 2 if ftype == "currency" else 0))
    if ftype in {"double", "currency", "percent"} and scale > precision:
        raise SchemaError(f"{where}: scale {scale} is larger than precision {precision}")
    length = int(spec.get("length", {"picklist": 255, "email": 80, "phone": 40, "url": 255,
                                     "textarea": 255, "reference": 18}.get(ftype, 0)))
    if ftype == "string" and length <= 0:
        raise SchemaError(f"{where}: a string field needs a positive length")
    return FieldDef(
        name=name,
        label=str(spec.get("label", name.removesuffix("__c").replace("_", " "))),
        type=ftype,
        length=length,
        precision=precision,
        scale=scale,
        digits=int(spec.get("digits", 9 if ftype == "int" else 0)),
        nillable=not (required or master_detail or auto),
        createable=not auto and not spec.get("calculated", False),
        updateable=not auto and not spec.get("calculated", False),
        defaulted_on_create=bool(auto) or default is not None or ftype == "boolean",
        external_id=external_id,
        id_lookup=external_id or bool(spec.get("id_lookup", False)) or bool(auto),
        unique=bool(spec.get("unique", False)),
        case_sensitive=bool(spec.get("case_sensitive", False)),
        reference_to=list(reference_to),
        relationship_name=spec.get("relationship_name"),
        child_relationship_name=spec.get("child_relationship_name"),
        relationship_order=0 if master_detail else None,
        cascade_delete=master_detail or bool(spec.get("cascade_delete", False)),
        picklist_values=values,
        restricted_picklist=bool(spec.get("restricted", False)),
        default_value=(False if ftype == "boolean" and default is None else default),
        calculated=bool(spec.get("calculated", False)),
        auto_number=bool(auto),
        auto_number_format=auto,
        name_field=bool(spec.get("name_field", False)),
        custom=custom,
    )


def _load_yaml(path: Path) -> OrgSchema:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SchemaError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("objects"), dict):
        raise SchemaError(f"{path}: expected a top-level 'objects' mapping")
    objects: dict[str, ObjectDef] = {}
    prefixes: set[str] = set()
    for obj_name, spec in document["objects"].items():
        where = f"{path}: objects.{obj_name}"
        if not isinstance(spec, dict) or not isinstance(spec.get("fields"), dict):
            raise SchemaError(f"{where}: expected a mapping with 'fields'")
        prefix = str(spec.get("key_prefix", ""))
        if len(prefix) != 3 or not prefix.isalnum() or prefix in prefixes:
            raise SchemaError(f"{where}.key_prefix: {prefix!r} must be 3 letters/digits, unique in the org")
        prefixes.add(prefix)
        custom = obj_name.endswith("__c")
        fields = _system_fields(custom, spec.get("name"), str(spec.get("label", obj_name)))
        for field_name, field_spec in spec["fields"].items():
            if field_name in fields:
                raise SchemaError(f"{where}.fields.{field_name}: a system field cannot be redefined")
            fields[field_name] = _field_from_yaml(path, obj_name, field_name, field_spec)
        fields.update(_audit_fields())
        objects[obj_name] = ObjectDef(
            name=obj_name, label=str(spec.get("label", obj_name)), key_prefix=prefix, fields=fields,
            label_plural=str(spec.get("label_plural", f"{spec.get('label', obj_name)}s")), custom=custom,
        )
    schema = OrgSchema(objects, source=str(path))
    _check_references(schema, path)
    return schema


def _check_references(schema: OrgSchema, path: Path) -> None:
    for obj in schema.objects.values():
        for f in obj.fields.values():
            for target in f.reference_to:
                if f.type == "reference" and not schema.has_object(target) and target not in {"User", "Group",
                                                                                           "RecordType"}:
                    raise SchemaError(f"{path}: {obj.name}.{f.name} refers to unknown object {target!r}")


# ---------------------------------------------------------------------------------------------------------
# Real describe output (a JSON file per object, a folder of them, or a list in one file).

def _field_from_describe(raw: dict[str, Any]) -> FieldDef:
    ftype = str(raw.get("type", "string"))
    return FieldDef(
        name=raw["name"],
        label=str(raw.get("label", raw["name"])),
        type=ftype if ftype in FIELD_TYPES else "anyType",
        length=int(raw.get("length") or 0),
        precision=int(raw.get("precision") or 0),
        scale=int(raw.get("scale") or 0),
        digits=int(raw.get("digits") or 0),
        nillable=bool(raw.get("nillable", True)),
        createable=bool(raw.get("createable", False)),
        updateable=bool(raw.get("updateable", False)),
        defaulted_on_create=bool(raw.get("defaultedOnCreate", False)),
        external_id=bool(raw.get("externalId", False)),
        id_lookup=bool(raw.get("idLookup", False)),
        unique=bool(raw.get("unique", False)),
        case_sensitive=bool(raw.get("caseSensitive", False)),
        reference_to=list(raw.get("referenceTo") or []),
        relationship_name=raw.get("relationshipName"),
        relationship_order=raw.get("relationshipOrder"),
        cascade_delete=bool(raw.get("cascadeDelete", False)),
        picklist_values=[p["value"] for p in raw.get("picklistValues") or [] if p.get("active", True)],
        restricted_picklist=bool(raw.get("restrictedPicklist", False)),
        default_value=raw.get("defaultValue"),
        calculated=bool(raw.get("calculated", False)),
        auto_number=bool(raw.get("autoNumber", False)),
        auto_number_format=None,
        name_field=bool(raw.get("nameField", False)),
        custom=bool(raw.get("custom", False)),
        filterable=bool(raw.get("filterable", True)),
        raw=raw,
    )


def _describe_documents(path: Path) -> list[tuple[str, dict[str, Any]]]:
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise SchemaError(f"{path}: no *.json describe files in this folder")
    documents: list[tuple[str, dict[str, Any]]] = []
    for file in files:
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise SchemaError(f"{file}: line {exc.lineno}: not valid JSON: {exc.msg}") from exc
        items = data if isinstance(data, list) else [data]
        for index, item in enumerate(items):
            if not isinstance(item, dict) or "name" not in item or not isinstance(item.get("fields"), list):
                raise SchemaError(f"{file}: item {index}: not an sObject describe (needs 'name' and 'fields')")
            documents.append((str(file), item))
    return documents


def _load_describe(path: Path) -> OrgSchema:
    objects: dict[str, ObjectDef] = {}
    used_prefixes = set()
    generated = 0
    for file, raw in _describe_documents(path):
        fields = {f["name"]: _field_from_describe(f) for f in raw["fields"]}
        if "Id" not in fields:
            raise SchemaError(f"{file}: {raw['name']}: describe has no Id field")
        for name, default in _audit_fields().items():
            fields.setdefault(name, default)
        fields.setdefault("IsDeleted", _system_fields(False, None, raw["name"])["IsDeleted"])
        prefix = raw.get("keyPrefix")
        if not prefix:
            # Objects without a key prefix (rare) get one from a range real orgs do not use.
            generated += 1
            prefix = f"z{generated:02d}"
        if prefix in used_prefixes:
            raise SchemaError(f"{file}: {raw['name']}: key prefix {prefix} used by two objects")
        used_prefixes.add(prefix)
        objects[raw["name"]] = ObjectDef(
            name=raw["name"], label=str(raw.get("label", raw["name"])), key_prefix=prefix, fields=fields,
            label_plural=str(raw.get("labelPlural", raw.get("label", raw["name"]))),
            custom=bool(raw.get("custom", False)), raw=raw,
        )
    return OrgSchema(objects, source=str(path))


def load_org_schema(path: Path | None = None) -> OrgSchema:
    """The org schema at ``path``: a YAML org-schema file, or describe JSON (a file or a folder of files).

    Without a path, the default org (default_org.yaml). Raises SchemaError naming the file and entry.
    """
    path = Path(path) if path is not None else DEFAULT_ORG_SCHEMA
    if not path.exists():
        raise SchemaError(f"{path}: org schema not found")
    if path.is_file() and path.suffix.lower() in {".yaml", ".yml"}:
        return _load_yaml(path)
    return _load_describe(path)
