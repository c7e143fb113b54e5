"""Polars values to the text Salesforce's Bulk 2.0 CSV expects for a field's describe type.

Dates are `YYYY-MM-DD` and datetimes `YYYY-MM-DDTHH:MM:SSZ` in UTC, computed from the values themselves:
nothing here reads the machine's time zone, so a run in Asia/Tokyo writes the same dates as one in UTC.
Timestamps without a time zone are taken to be UTC. Numbers are rounded to the field's scale and written in
fixed-point notation; booleans as `true` / `false`.

Each coercion gives the text (null where the source is null) and, where a value can be unusable, an
expression that is true for the rows whose value does not fit (wrong type, out of range).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from passwork_assets.salesforce.describe import FieldDescribe

DATE_FORMAT = "%Y-%m-%d"
DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
NUMBER_TYPES = frozenset({"double", "currency", "percent", "int", "long"})
_TRUE = ["true", "t", "1", "yes", "y"]
_FALSE = ["false", "f", "0", "no", "n"]
# Decimal(38, s) is Polars' widest fixed-point type; Salesforce numbers have at most 18 digits.
_DECIMAL_PRECISION = 38


@dataclass
class Coerced:
    text: pl.Expr
    """The Salesforce text, null where the value is null or unusable."""
    bad_type: pl.Expr | None = None
    """True where a non-null source value could not be read as the field's type."""
    out_of_range: pl.Expr | None = None
    """True where a number has more integer digits than the field's precision allows."""


def _is_temporal(dtype: pl.DataType) -> bool:
    return isinstance(dtype, (pl.Date, pl.Datetime))


def _utc(value: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A Datetime as UTC; naive timestamps are taken as UTC (never as the machine's local time)."""
    assert isinstance(dtype, pl.Datetime)
    if dtype.time_zone is None:
        return value.dt.replace_time_zone("UTC")
    return value.dt.convert_time_zone("UTC")


def as_text(value: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Any value as the text Salesforce reads for a text field."""
    if isinstance(dtype, pl.Date):
        return value.dt.strftime(DATE_FORMAT)
    if isinstance(dtype, pl.Datetime):
        return _utc(value, dtype).dt.strftime(DATETIME_FORMAT)
    if isinstance(dtype, pl.Boolean):
        return pl.when(value).then(pl.lit("true")).when(~value).then(pl.lit("false"))
    return value.cast(pl.Utf8)


def _date(value: pl.Expr, dtype: pl.DataType) -> Coerced:
    if isinstance(dtype, pl.Date):
        return Coerced(value.dt.strftime(DATE_FORMAT))
    if isinstance(dtype, pl.Datetime):
        return Coerced(_utc(value, dtype).dt.date().dt.strftime(DATE_FORMAT))
    parsed = value.cast(pl.Utf8).str.strip_chars().str.to_date(DATE_FORMAT, strict=False)
    return Coerced(parsed.dt.strftime(DATE_FORMAT), bad_type=value.is_not_null() & parsed.is_null())


def _datetime(value: pl.Expr, dtype: pl.DataType) -> Coerced:
    if isinstance(dtype, pl.Datetime):
        return Coerced(_utc(value, dtype).dt.strftime(DATETIME_FORMAT))
    if isinstance(dtype, pl.Date):
        return Coerced(value.cast(pl.Datetime("us")).dt.strftime(DATETIME_FORMAT))
    text = value.cast(pl.Utf8).str.strip_chars()
    # ISO 8601 with an offset (or Z); a text timestamp without an offset is ambiguous and refused.
    parsed = text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%#z", time_unit="us", time_zone="UTC", strict=False)
    parsed = parsed.fill_null(
        text.str.to_datetime("%Y-%m-%d %H:%M:%S%.f%#z", time_unit="us", time_zone="UTC", strict=False)
    )
    return Coerced(parsed.dt.strftime(DATETIME_FORMAT), bad_type=value.is_not_null() & parsed.is_null())


def _number(value: pl.Expr, dtype: pl.DataType, field: FieldDescribe) -> Coerced:
    scale = 0 if field.type in ("int", "long") else max(field.scale, 0)
    digits = field.digits or field.precision or 18
    integer_digits = max((digits if field.type in ("int", "long") else field.precision or 18) - scale, 1)
    if isinstance(dtype, pl.Boolean) or _is_temporal(dtype):
        return Coerced(pl.lit(None, dtype=pl.Utf8), bad_type=value.is_not_null())
    if dtype.is_numeric():
        number = value
        bad = None
    else:
        number = value.cast(pl.Utf8).str.strip_chars().cast(pl.Float64, strict=False)
        bad = value.is_not_null() & number.is_null()
    rounded = number.round(scale) if (dtype.is_float() or isinstance(dtype, pl.Decimal) or bad is not None) else number
    limit = 10 ** integer_digits
    out = rounded.cast(pl.Float64).abs() >= limit
    if dtype.is_float() or bad is not None:
        out = out | rounded.cast(pl.Float64).is_nan() | rounded.cast(pl.Float64).is_infinite()
    fits = pl.when(out.not_()).then(rounded)
    text = fits.cast(pl.Decimal(_DECIMAL_PRECISION, scale), strict=False).cast(pl.Utf8)
    return Coerced(text, bad_type=bad, out_of_range=value.is_not_null() & out.fill_null(False))


def _boolean(value: pl.Expr, dtype: pl.DataType) -> Coerced:
    if isinstance(dtype, pl.Boolean):
        return Coerced(as_text(value, dtype))
    text = value.cast(pl.Utf8).str.strip_chars().str.to_lowercase()
    result = pl.when(text.is_in(_TRUE)).then(pl.lit("true")).when(text.is_in(_FALSE)).then(pl.lit("false"))
    return Coerced(result, bad_type=value.is_not_null() & result.is_null())


def coerce(value: pl.Expr, dtype: pl.DataType, field: FieldDescribe) -> Coerced:
    """The Salesforce text of `value` (of Polars type `dtype`) for `field`."""
    if isinstance(dtype, pl.Null):
        return Coerced(pl.lit(None, dtype=pl.Utf8))
    if field.type == "date":
        return _date(value, dtype)
    if field.type == "datetime":
        return _datetime(value, dtype)
    if field.type in NUMBER_TYPES:
        return _number(value, dtype, field)
    if field.type == "boolean":
        return _boolean(value, dtype)
    return Coerced(as_text(value, dtype))
