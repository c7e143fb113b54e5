"""A typed model of Salesforce sObject describe JSON (`GET /sobjects/{Obj}/describe`, `sf.<Obj>.describe()`).

Validation, suggestion and transformation all reason about the same facts of a field (type, length,
External ID, writability, picklist values); this module reads them once from the raw describe and nothing
here talks to the network. A `DescribeProvider` is anything that answers `describe(object_name)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class ObjectNotFound(LookupError):
    """The org has no sObject of that name; `known` lists the names it does have (when the provider knows)."""

    def __init__(self, object_name: str, known: Iterable[str] = ()) -> None:
        self.object_name = object_name
        self.known = sorted(known)
        super().__init__(f"no sObject named {object_name!r} in the org")


class DescribeError(ValueError):
    """The describe JSON lacks something every real describe has (e.g. `name` or `fields`)."""


@dataclass(frozen=True)
class FieldDescribe:
    """One entry of a describe's `fields[]`, with the attributes the sync relies on."""

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
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    picklist_values: tuple[str, ...] = ()
    """Active picklist values only: inactive ones are rejected on write like unknown ones."""
    restricted_picklist: bool = False
    calculated: bool = False
    auto_number: bool = False
    custom: bool = False
    default_value: Any = None

    @property
    def required_on_create(self) -> bool:
        """Salesforce rejects an insert without this field (REQUIRED_FIELD_MISSING)."""
        return not self.nillable and self.createable and not self.defaulted_on_create

    @property
    def is_reference(self) -> bool:
        return self.type == "reference"

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FieldDescribe:
        """Build from one `fields[]` entry of a describe; unknown keys are ignored (describe grows per release)."""
        try:
            name = d["name"]
            ftype = d["type"]
        except KeyError as exc:
            raise DescribeError(f"describe field entry without {exc.args[0]!r}: {dict(d)!r:.200}") from exc
        picklist = tuple(
            str(v["value"]) for v in d.get("picklistValues") or () if v.get("active", True) and "value" in v
        )
        return cls(
            name=str(name),
            label=str(d.get("label") or name),
            type=str(ftype),
            length=int(d.get("length") or 0),
            precision=int(d.get("precision") or 0),
            scale=int(d.get("scale") or 0),
            digits=int(d.get("digits") or 0),
            nillable=bool(d.get("nillable", True)),
            createable=bool(d.get("createable", False)),
            updateable=bool(d.get("updateable", False)),
            defaulted_on_create=bool(d.get("defaultedOnCreate", False)),
            external_id=bool(d.get("externalId", False)),
            id_lookup=bool(d.get("idLookup", False)),
            unique=bool(d.get("unique", False)),
            reference_to=tuple(str(r) for r in d.get("referenceTo") or ()),
            relationship_name=d.get("relationshipName") or None,
            picklist_values=picklist,
            restricted_picklist=bool(d.get("restrictedPicklist", False)),
            calculated=bool(d.get("calculated", False)),
            auto_number=bool(d.get("autoNumber", False)),
            custom=bool(d.get("custom", False)),
            default_value=d.get("defaultValue"),
        )


@dataclass(frozen=True)
class ObjectDescribe:
    """One sObject's describe: its name, label and fields (by API name, in describe order)."""

    name: str
    label: str
    fields: dict[str, FieldDescribe]
    key_prefix: str | None = None
    custom: bool = False
    _by_lower: dict[str, FieldDescribe] = field(init=False, repr=False, compare=False)
    _by_relationship: dict[str, FieldDescribe] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_lower", {n.lower(): f for n, f in self.fields.items()})
        object.__setattr__(
            self,
            "_by_relationship",
            {f.relationship_name.lower(): f for f in self.fields.values() if f.relationship_name},
        )

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ObjectDescribe:
        """Build from the JSON of `GET /sobjects/{Obj}/describe` (as returned by `sf.<Obj>.describe()`)."""
        if "name" not in d or "fields" not in d:
            missing = [k for k in ("name", "fields") if k not in d]
            raise DescribeError(f"not an sObject describe: missing {', '.join(missing)}")
        fields = {f.name: f for f in (FieldDescribe.from_json(e) for e in d["fields"])}
        return cls(
            name=str(d["name"]),
            label=str(d.get("label") or d["name"]),
            fields=fields,
            key_prefix=d.get("keyPrefix"),
            custom=bool(d.get("custom", False)),
        )

    def field(self, name: str) -> FieldDescribe | None:
        """The field with this API name, case-insensitive as in SOQL and the REST API."""
        return self._by_lower.get(name.lower())

    def relationship(self, name: str) -> FieldDescribe | None:
        """The reference field whose relationshipName is `name` (e.g. `Contract__r`, `Account`), case-insensitive."""
        return self._by_relationship.get(name.lower())

    def external_id_fields(self) -> list[FieldDescribe]:
        """Fields usable as an upsert key: External ID fields, in describe order (Id is not one)."""
        return [f for f in self.fields.values() if f.external_id]

    def reference_fields(self) -> list[FieldDescribe]:
        """Lookup and master-detail fields that have a relationship name (parent links go through these)."""
        return [f for f in self.fields.values() if f.is_reference and f.relationship_name]


class DescribeProvider(Protocol):
    """Answers the describe of an sObject; raises `ObjectNotFound` for a name the org does not have."""

    def describe(self, object_name: str) -> ObjectDescribe: ...


class StaticDescribes:
    """A provider over describe JSON already at hand (an org's saved describes, test fixtures)."""

    def __init__(self, describes: Iterable[Mapping[str, Any] | ObjectDescribe]) -> None:
        self._objects: dict[str, ObjectDescribe] = {}
        for d in describes:
            obj = d if isinstance(d, ObjectDescribe) else ObjectDescribe.from_json(d)
            self._objects[obj.name.lower()] = obj

    def describe(self, object_name: str) -> ObjectDescribe:
        try:
            return self._objects[object_name.lower()]
        except KeyError:
            raise ObjectNotFound(object_name, (o.name for o in self._objects.values())) from None

    def object_names(self) -> list[str]:
        return sorted(o.name for o in self._objects.values())


class CachedDescribes:
    """A provider that fetches each describe once through `fetch(object_name) -> describe JSON`.

    `fetch` raises `ObjectNotFound` for an unknown object (e.g. `lambda n: getattr(sf, n).describe()` wrapped
    to translate simple-salesforce's 404 `SalesforceResourceNotFound`). One instance per run: the describe is
    re-read each run because an admin may change a field between runs.
    """

    def __init__(self, fetch: Callable[[str], Mapping[str, Any]]) -> None:
        self._fetch = fetch
        self._objects: dict[str, ObjectDescribe] = {}

    def describe(self, object_name: str) -> ObjectDescribe:
        key = object_name.lower()
        if key not in self._objects:
            self._objects[key] = ObjectDescribe.from_json(self._fetch(object_name))
        return self._objects[key]
