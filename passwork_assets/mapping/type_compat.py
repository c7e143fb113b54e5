"""Whether a PostgreSQL column (or a Polars value) can feed a Salesforce field of a given type.

The rule is strict where a silent conversion would change data: a timestamp never feeds a date field (which
day it is depends on a time zone, the Asia/Tokyo off-by-one), text never feeds a number or date field (the
user casts explicitly, in SQL or in an expression, and sees the rows that fail).
"""

from __future__ import annotations

import polars as pl

# Kinds of source values; PostgreSQL and Polars types both reduce to one of these.
TEXT, INT, NUMBER, BOOL, DATE, TIMESTAMP, TIMESTAMPTZ, TIME, OTHER = (
    "text", "whole number", "number", "boolean", "date", "timestamp", "timestamp with time zone", "time", "other",
)

_PG_KINDS: dict[str, str] = {
    "text": TEXT, "character varying": TEXT, "varchar": TEXT, "character": TEXT, "char": TEXT, "bpchar": TEXT,
    "citext": TEXT, "uuid": TEXT, "name": TEXT,
    "smallint": INT, "integer": INT, "bigint": INT, "int2": INT, "int4": INT, "int8": INT,
    "numeric": NUMBER, "decimal": NUMBER, "real": NUMBER, "double precision": NUMBER, "float4": NUMBER,
    "float8": NUMBER, "money": NUMBER,
    "boolean": BOOL, "bool": BOOL,
    "date": DATE,
    "timestamp without time zone": TIMESTAMP, "timestamp": TIMESTAMP,
    "timestamp with time zone": TIMESTAMPTZ, "timestamptz": TIMESTAMPTZ,
    "time without time zone": TIME, "time": TIME,
}

_ACCEPTS: dict[str, frozenset[str]] = {}
_TEXTUAL = frozenset({TEXT, INT, NUMBER, BOOL, DATE})
for _t in ("string", "textarea", "email", "phone", "url", "encryptedstring", "picklist", "multipicklist", "combobox"):
    _ACCEPTS[_t] = _TEXTUAL
for _t in ("double", "currency", "percent"):
    _ACCEPTS[_t] = frozenset({INT, NUMBER})
_ACCEPTS["int"] = frozenset({INT})
_ACCEPTS["boolean"] = frozenset({BOOL})
_ACCEPTS["date"] = frozenset({DATE})
_ACCEPTS["datetime"] = frozenset({TIMESTAMPTZ, TIMESTAMP})
_ACCEPTS["time"] = frozenset({TIME})
_ACCEPTS["id"] = frozenset({TEXT})
_ACCEPTS["reference"] = frozenset({TEXT})


def pg_kind(pg_type: str) -> str:
    """The kind of a PostgreSQL type name as information_schema spells it (`character varying(64)` -> text)."""
    base = pg_type.strip().lower().split("(")[0].strip()
    if base.endswith("[]") or base == "array":
        return OTHER
    return _PG_KINDS.get(base, OTHER)


def polars_kind(dtype: pl.DataType) -> str:
    """The kind of a Polars dtype (the result of a field expression)."""
    if dtype == pl.Utf8 or dtype == pl.Categorical:
        return TEXT
    if dtype.is_integer():
        return INT
    if dtype.is_numeric():
        return NUMBER
    if dtype == pl.Boolean:
        return BOOL
    if dtype == pl.Date:
        return DATE
    if isinstance(dtype, pl.Datetime):
        return TIMESTAMPTZ if dtype.time_zone else TIMESTAMP
    if dtype == pl.Time:
        return TIME
    if dtype == pl.Null:
        return "null"
    return OTHER


def polars_dtype(kind: str) -> pl.DataType:
    """A Polars dtype standing for a kind, to type-check an expression over empty columns."""
    return {
        TEXT: pl.Utf8(), INT: pl.Int64(), NUMBER: pl.Float64(), BOOL: pl.Boolean(), DATE: pl.Date(),
        TIMESTAMP: pl.Datetime("us"), TIMESTAMPTZ: pl.Datetime("us", "UTC"), TIME: pl.Time(),
    }.get(kind, pl.Utf8())


def incompatibility(kind: str, sf_type: str) -> str | None:
    """Why a value of `kind` cannot feed a Salesforce field of `sf_type`, or None when it can."""
    if kind == "null":
        return None
    accepted = _ACCEPTS.get(sf_type)
    if accepted is None or kind in accepted:
        return None
    if sf_type == "date" and kind in (TIMESTAMP, TIMESTAMPTZ):
        return (
            "a timestamp cannot feed a date field: which day it is depends on the time zone; pick the day "
            "explicitly in SQL, e.g. (col AT TIME ZONE 'Asia/Tokyo')::date"
        )
    if sf_type == "datetime" and kind == DATE:
        return "a date cannot feed a datetime field: the time and zone would be invented; use a timestamp column"
    if kind == TEXT:
        return f"text cannot feed a {sf_type} field without a cast; cast it in SQL or an expression (e.g. CAST(col AS numeric))"
    wanted = " or ".join(sorted(accepted))
    return f"a {kind} cannot feed a {sf_type} field (it takes {wanted})"
