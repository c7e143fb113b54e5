"""The mapping files as typed models: `connections.yaml`, one file per flow, and `ownership.yaml`.

The pydantic models are the truth of what a mapping file may contain (unknown keys are rejected). Field
mappings are written in a shorthand (`Quantity__c: quantity`) that `FieldSpec.parse` expands; parent links are
written `Relationship.ExternalIdField` (`Contract__r.ContractKey__c`, `Account.AccountKey__c`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator

from passwork_assets.mapping.issues import MappingError, MappingIssue, display_path

# PostgreSQL identifiers may be Unicode (Japanese column names are common in ERP databases).
IDENTIFIER = re.compile(r"^[^\W\d]\w*$")
TABLE_NAME = re.compile(r"^[^\W\d][\w$]*(\.[^\W\d][\w$]*)?$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FLOW_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
SF_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
Operation = Literal["upsert", "update", "insert"]
OnNull = Literal["leave", "clear"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _env_name(value: str | None) -> str | None:
    # The value is never echoed: a user who pastes a URL or a password here must not see it in a log.
    if value is not None and not ENV_NAME.match(value):
        raise ValueError(
            "must be the NAME of an environment variable (letters, digits, underscores, e.g. PRODUCT_DATABASE_URL), "
            "not the value itself"
        )
    return value


# ---------------------------------------------------------------------------------------------- connections


class SshBastion(_Strict):
    """An SSH jump host in front of the database; the key file path or password comes from an environment variable."""

    host: str
    port: int = Field(default=22, ge=1, le=65535)
    user: str
    key_file_env: str | None = None
    password_env: str | None = None
    known_hosts: str | None = None
    """A known_hosts file to check the bastion's host key against (path, `~` allowed)."""

    @field_validator("key_file_env", "password_env")
    @classmethod
    def _env(cls, v: str | None) -> str | None:
        return _env_name(v)

    @model_validator(mode="after")
    def _one_credential(self) -> SshBastion:
        if (self.key_file_env is None) == (self.password_env is None):
            raise ValueError("set exactly one of key_file_env or password_env")
        return self


class ConnectionConfig(_Strict):
    """A source database: the URL and secrets come from environment variables named here, never from the file."""

    name: str = ""
    url_env: str
    sslmode: SslMode | None = None
    sslrootcert_env: str | None = None
    ssh: SshBastion | None = None
    statement_timeout_s: PositiveInt = 300
    path: Path | None = Field(default=None, exclude=True)
    line: int | None = Field(default=None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _no_internal_keys(cls, data: Any) -> Any:
        # name comes from the key under `connections:`; path and line from the loader.
        if isinstance(data, dict):
            for k in ("name", "path", "line"):
                if k in data:
                    raise ValueError(f"unknown key {k!r}; the connection's name is its key under connections:")
        return data

    @field_validator("url_env", "sslrootcert_env")
    @classmethod
    def _env(cls, v: str | None) -> str | None:
        return _env_name(v)

    def _missing(self, key: str, var: str, what: str) -> MappingError:
        return MappingError(
            [
                MappingIssue(
                    display_path(self.path) if self.path else "connections.yaml",
                    self.line,
                    f"connections.{self.name}.{key}",
                    f"environment variable {var} is not set; it must hold {what}",
                )
            ]
        )

    def resolve_url(self) -> str:
        """The database URL from the environment variable `url_env`; an error names the variable, never a value."""
        value = os.environ.get(self.url_env, "")
        if not value.strip():
            raise self._missing("url_env", self.url_env, f"the PostgreSQL URL of connection {self.name!r}")
        return value

    def resolve_sslrootcert(self) -> str | None:
        """The CA certificate file path from `sslrootcert_env`, or None when not configured."""
        if self.sslrootcert_env is None:
            return None
        value = os.environ.get(self.sslrootcert_env, "")
        if not value.strip():
            raise self._missing("sslrootcert_env", self.sslrootcert_env, "the path of the CA certificate file")
        return value

    def resolve_ssh_secret(self) -> tuple[str, str]:
        """("key_file", path) or ("password", password) for the SSH bastion, from its environment variable."""
        if self.ssh is None:
            raise ValueError(f"connection {self.name!r} has no ssh bastion")
        kind, var = ("key_file", self.ssh.key_file_env) if self.ssh.key_file_env else ("password", self.ssh.password_env)
        assert var is not None
        value = os.environ.get(var, "")
        if not value:
            raise self._missing(f"ssh.{kind}_env", var, f"the SSH {kind.replace('_', ' ')} for the bastion")
        return kind, value


class ConnectionsFile(_Strict):
    """`mappings/connections.yaml`."""

    connections: dict[str, ConnectionConfig]


# ---------------------------------------------------------------------------------------------- flows


class SourceSpec(_Strict):
    """Where a flow reads: a table and its columns (no SQL), or one read-only SELECT."""

    connection: str
    table: str | None = None
    columns: list[str] | None = None
    sql: str | None = None
    cursor: str | None = None
    """A column that grows with every change (e.g. updated_at); rows past the stored cursor are extracted."""
    key: str | None = None
    """A column identifying a source row; breaks ties between rows with the same cursor value."""

    @field_validator("table")
    @classmethod
    def _table_name(cls, v: str | None) -> str | None:
        if v is not None and not TABLE_NAME.match(v):
            raise ValueError("must be a table name, optionally with its schema (e.g. public.usage_events)")
        return v

    @field_validator("columns")
    @classmethod
    def _column_names(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        bad = [c for c in v if not IDENTIFIER.match(c)]
        if bad:
            raise ValueError(f"not column names: {', '.join(map(repr, bad))} (use sql: for expressions)")
        dupes = sorted({c for c in v if v.count(c) > 1})
        if dupes:
            raise ValueError(f"listed twice: {', '.join(dupes)}")
        if not v:
            raise ValueError("must list at least one column")
        return v

    @field_validator("cursor", "key")
    @classmethod
    def _single_column(cls, v: str | None) -> str | None:
        if v is not None and not IDENTIFIER.match(v):
            raise ValueError("must be one column name")
        return v

    @model_validator(mode="after")
    def _one_mode(self) -> SourceSpec:
        if (self.table is None) == (self.sql is None):
            raise ValueError("set either table (with columns) or sql, not both and not neither")
        if self.sql is not None and self.columns is not None:
            raise ValueError("columns go with table; in sql mode the SELECT list names the columns")
        if self.table is not None and self.columns is None:
            raise ValueError(f"table {self.table} needs columns: the list of columns to read")
        if self.table is not None and self.columns is not None:
            for name, col in (("cursor", self.cursor), ("key", self.key)):
                if col is not None and col not in self.columns:
                    raise ValueError(f"{name} column {col} must be one of the columns: {', '.join(self.columns)}")
        return self


class TargetSpec(_Strict):
    """What a flow writes in Salesforce: the object, the operation and the External ID field that keys it."""

    object: str
    operation: Operation = "upsert"
    external_id: str
    bulk_threshold: PositiveInt | None = None
    """At or above this many changed rows the flow loads with Bulk API 2.0, below with sObject Collections."""
    serial: bool = False
    """Load one batch at a time (avoids UNABLE_TO_LOCK_ROW when many children share a parent)."""

    @field_validator("object", "external_id")
    @classmethod
    def _api_name(cls, v: str) -> str:
        if not SF_NAME.match(v):
            raise ValueError("must be a Salesforce API name (e.g. Usage__c, ContractKey__c)")
        return v


class FieldOptions(_Strict):
    """The long form of one field mapping, as written in YAML."""

    column: str | None = None
    expr: str | None = None
    const: str | int | float | bool | None = None
    value_map: dict[str, str] | None = None
    on_null: OnNull = "leave"
    parent_object: str | None = None

    @field_validator("value_map", mode="before")
    @classmethod
    def _map_keys_as_text(cls, v: Any) -> Any:
        # YAML reads `1: Activated` or `true: Activated` with non-text keys; source values are compared as text.
        if isinstance(v, dict):
            return {(str(k).lower() if isinstance(k, bool) else str(k)): val for k, val in v.items()}
        return v

    @field_validator("column")
    @classmethod
    def _column_name(cls, v: str | None) -> str | None:
        if v is not None and not IDENTIFIER.match(v):
            raise ValueError("must be a column name (use expr: for an expression)")
        return v

    @model_validator(mode="after")
    def _one_source(self) -> FieldOptions:
        given = [k for k in ("column", "expr", "const") if k in self.model_fields_set]
        if len(given) != 1:
            raise ValueError(f"set exactly one of column, expr or const (found: {', '.join(given) or 'none'})")
        return self


class FlowDocument(_Strict):
    """One flow file as written; `fields` is checked entry by entry by the loader (shorthand or FieldOptions)."""

    flow: str
    description: str = ""
    source: SourceSpec
    target: TargetSpec
    fields: dict[str, Any]

    @field_validator("flow")
    @classmethod
    def _flow_name(cls, v: str) -> str:
        if not FLOW_NAME.match(v):
            raise ValueError("must start with a letter and hold only letters, digits and underscores")
        return v

    @field_validator("fields")
    @classmethod
    def _not_empty(cls, v: dict[str, Any]) -> dict[str, Any]:
        if not v:
            raise ValueError("map at least the External ID field")
        return v


@dataclass(frozen=True)
class FieldSpec:
    """One Salesforce field (or parent link) of a flow and where its value comes from."""

    target: str
    """A field API name, or `Relationship.ExternalIdField` for a parent link."""
    column: str | None = None
    expr: str | None = None
    const: str | int | float | bool | None = None
    value_map: dict[str, str] | None = None
    on_null: OnNull = "leave"
    parent_object: str | None = None
    line: int | None = None
    expr_columns: tuple[str, ...] = ()
    """The source columns an `expr` reads (from Polars' parse of it)."""

    @property
    def is_parent_link(self) -> bool:
        return "." in self.target

    @property
    def relationship(self) -> str | None:
        """`Contract__r` of `Contract__r.ContractKey__c`; None for a plain field."""
        return self.target.split(".", 1)[0] if self.is_parent_link else None

    @property
    def parent_external_id(self) -> str | None:
        """`ContractKey__c` of `Contract__r.ContractKey__c`; None for a plain field."""
        return self.target.split(".", 1)[1] if self.is_parent_link else None

    @property
    def written_field(self) -> str:
        """The field of the target object this mapping sets: the reference field for a link (`Contract__c`,
        `AccountId`, by Salesforce's naming convention), the target itself otherwise."""
        rel = self.relationship
        if rel is None:
            return self.target
        return rel[:-3] + "__c" if rel.lower().endswith("__r") else rel + "Id"

    @property
    def source_columns(self) -> tuple[str, ...]:
        """The source columns this mapping reads."""
        if self.column is not None:
            return (self.column,)
        return self.expr_columns


@dataclass(frozen=True)
class FlowMapping:
    """One loaded flow file."""

    flow: str
    description: str
    path: Path
    content_hash: str
    source: SourceSpec
    target: TargetSpec
    fields: list[FieldSpec]
    lines: dict[str, int] = field(default_factory=dict, repr=False, compare=False)
    """Line of each dotted key of the file (`target.external_id` -> 9)."""

    @property
    def parent_links(self) -> list[FieldSpec]:
        return [f for f in self.fields if f.is_parent_link]

    @property
    def key_field(self) -> FieldSpec | None:
        """The mapping of the External ID field (the upsert key)."""
        key = self.target.external_id.lower()
        return next((f for f in self.fields if f.target.lower() == key), None)

    def field(self, target: str) -> FieldSpec | None:
        t = target.lower()
        return next((f for f in self.fields if f.target.lower() == t), None)

    def line_of(self, key: str) -> int | None:
        """The line of a dotted key, or of its nearest parent key."""
        parts = key.split(".")
        while parts:
            line = self.lines.get(".".join(parts))
            if line is not None:
                return line
            parts.pop()
        return None

    @property
    def source_columns(self) -> list[str]:
        """Every source column the flow reads: mapped columns, expression inputs and the cursor, in first-use order."""
        cols: list[str] = []
        for f in self.fields:
            cols.extend(c for c in f.source_columns if c not in cols)
        for extra in (self.source.cursor, self.source.key):
            if extra is not None and extra not in cols:
                cols.append(extra)
        return cols


@dataclass(frozen=True)
class MappingSet:
    """All flows and connections of a mappings folder, cross-checked (connections exist, ownership, no cycles)."""

    directory: Path
    connections: dict[str, ConnectionConfig]
    flows: dict[str, FlowMapping]
    precedence: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    """(object lower, field lower) -> flows allowed to write that field, highest precedence first."""

    def flows_for_object(self, obj: str) -> list[FlowMapping]:
        """The flows writing `obj`, in run order: flows that own more of the shared fields first, then by name."""
        mine = [f for f in self.flows.values() if f.target.object.lower() == obj.lower()]
        return sorted(mine, key=lambda f: (len(self.yielded_fields(f.flow)), f.flow))

    def objects(self) -> list[str]:
        """Every object some flow writes, spelled as in the first flow that names it."""
        seen: dict[str, str] = {}
        for f in self.flows.values():
            seen.setdefault(f.target.object.lower(), f.target.object)
        return sorted(seen.values())

    def parent_objects(self, obj: str) -> set[str]:
        """Objects that `obj` links to through its flows' parent links (self-links excluded)."""
        out: set[str] = set()
        for flow in self.flows_for_object(obj):
            for link in flow.parent_links:
                if link.parent_object and link.parent_object.lower() != obj.lower():
                    out.add(self._spelling(link.parent_object))
        return out

    def object_order(self) -> list[str]:
        """Objects parents first; raises `MappingError` naming the cycle if the parent links form one."""
        from passwork_assets.mapping.order import CycleError, parents_first

        graph: dict[str, set[str]] = {}
        for flow in self.flows.values():
            node = self._spelling(flow.target.object)
            graph.setdefault(node, set())
            for link in flow.parent_links:
                if link.parent_object:
                    graph[node].add(self._spelling(link.parent_object))
        try:
            return parents_first(graph)
        except CycleError as exc:
            issues = []
            for child, parent in zip(exc.cycle, exc.cycle[1:]):
                for flow in self.flows_for_object(child):
                    for link in flow.parent_links:
                        if link.parent_object and link.parent_object.lower() == parent.lower():
                            issues.append(
                                MappingIssue(
                                    display_path(flow.path),
                                    link.line,
                                    f"fields.{link.target}",
                                    f"parent links form a cycle: {' -> '.join(exc.cycle)}; a child's parent must be "
                                    "written before it, so one of these links has to go",
                                )
                            )
            raise MappingError(issues) from None

    def field_precedence(self, obj: str, field_name: str) -> tuple[str, ...]:
        """The flows declared to write `obj.field_name`, highest precedence first (empty if one flow writes it)."""
        return self.precedence.get((obj.lower(), field_name.lower()), ())

    def yielded_fields(self, flow_name: str) -> dict[str, tuple[str, ...]]:
        """Fields this flow writes but does not own: target -> the flows ahead of it.

        The flow must send such a field only for records none of those flows has written.
        """
        flow = self.flows[flow_name]
        out: dict[str, tuple[str, ...]] = {}
        for spec in flow.fields:
            order = self.field_precedence(flow.target.object, spec.written_field)
            if order and order[0] != flow_name:
                out[spec.target] = order[: order.index(flow_name)]
        return out

    def _spelling(self, obj: str) -> str:
        for f in self.flows.values():
            if f.target.object.lower() == obj.lower():
                return f.target.object
        return obj
