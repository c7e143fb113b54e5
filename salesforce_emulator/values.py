"""Per-field value converters: a value from a JSON body or a Bulk CSV cell -> the stored Python value.

Converters are built once per field and format and reused for every row of a write (the Bulk path
calls them millions of times). A converter raises ``TypeMismatch`` when the value is not of the
field's type (the caller words the error for its format) and ``InvalidValue`` with the Salesforce error
for everything else (too long, outside the picklist, outside the numeric range).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from salesforce_emulator.errors import RecordError
from salesforce_emulator.schema import FieldDef

Converter = Callable[[Any], Any]

_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_INTEGER = re.compile(r"^[+-]?\d+$")
_BOOLEAN_TEXT = {"true": True, "false": False, "1": True, "0": False}

# xsd type names used in Bulk's "Failed to deserialize field" messages.
XSD_TYPES = {
    "date": "date", "datetime": "dateTime", "double": "double", "currency": "double", "percent": "double",
    "int": "int", "long": "long", "boolean": "boolean", "reference": "ID", "id": "ID",
}


class TypeMismatch(Exception):
    """The value cannot be read as the field's type."""


class InvalidValue(Exception):
    """The value has the right type but Salesforce refuses it; carries the per-record error."""

    def __init__(self, error: RecordError) -> None:
        super().__init__(error.message)
        self.error = error


def now_datetime() -> str:
    """The current time as Salesforce prints datetimes: ``YYYY-MM-DDTHH:MM:SS.000+0000`` (UTC)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _text(f: FieldDef) -> Converter:
    limit = f.length
    label = f.label
    is_email = f.type == "email"

    def convert(value: Any) -> str:
        if type(value) is not str:
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, (int, float)):
                value = str(value)
            else:
                raise TypeMismatch
        if limit and len(value) > limit:
            raise InvalidValue(RecordError(
                "STRING_TOO_LONG", f"{label}: data value too large: {value} (max length={limit})", [f.name]
            ))
        if is_email and not _EMAIL.match(value):
            raise InvalidValue(RecordError("INVALID_EMAIL_ADDRESS", f"{label}: invalid email address: {value}",
                                           [f.name]))
        return value

    return convert


def _picklist(f: FieldDef) -> Converter:
    text = _text(f)
    if not f.restricted_picklist:
        return text
    allowed = set(f.picklist_values)
    label = f.label

    def convert(value: Any) -> str:
        value = text(value)
        if f.type == "multipicklist":
            bad = [v for v in value.split(";") if v not in allowed]
        else:
            bad = [] if value in allowed else [value]
        if bad:
            raise InvalidValue(RecordError(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", f"{label}: bad value for restricted picklist field: {value}",
                [f.name],
            ))
        return value

    return convert


def _out_of_range(f: FieldDef, value: Any) -> InvalidValue:
    return InvalidValue(RecordError(
        "NUMBER_OUTSIDE_VALID_RANGE", f"{f.label}: value outside of valid range on numeric field: {value}", [f.name]
    ))


def _decimal(f: FieldDef) -> Converter:
    scale = f.scale
    # precision 0 (some describe outputs) means no declared limit.
    bound = 10.0 ** (f.precision - f.scale) if f.precision else math.inf

    quantum = Decimal(1).scaleb(-scale)

    def convert(value: Any) -> float:
        if type(value) is str:
            text = value.strip()
            try:
                number = float(text)
            except ValueError:
                raise TypeMismatch from None
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeMismatch
        else:
            number = float(value)
            text = repr(value)
        if not math.isfinite(number):
            raise TypeMismatch
        point = text.find(".")
        if (point >= 0 and len(text) - point - 1 > scale) or "e" in text or "E" in text:
            # Round half up in decimal, as Salesforce does, not in binary floating point.
            number = float(Decimal(text).quantize(quantum, rounding=ROUND_HALF_UP))
        if abs(number) >= bound:
            raise _out_of_range(f, value)
        return number + 0.0  # turns -0.0 into 0.0

    return convert


def _integer(f: FieldDef) -> Converter:
    bound = 10 ** (f.digits or (18 if f.type == "long" else 9))

    def convert(value: Any) -> int:
        if type(value) is str:
            if _INTEGER.match(value):
                number = int(value)
            else:
                try:
                    as_float = float(value)
                except ValueError:
                    raise TypeMismatch from None
                if not as_float.is_integer():
                    raise TypeMismatch
                number = int(as_float)
        elif isinstance(value, bool):
            raise TypeMismatch
        elif isinstance(value, int):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        else:
            raise TypeMismatch
        if abs(number) >= bound:
            raise _out_of_range(f, value)
        return number

    return convert


def _boolean(f: FieldDef) -> Converter:
    def convert(value: Any) -> bool:
        if value is True or value is False:
            return value
        if type(value) is str:
            found = _BOOLEAN_TEXT.get(value.lower())
            if found is not None:
                return found
        raise TypeMismatch

    return convert


# Valid date strings seen lately: a Bulk load repeats a few hundred dates over millions of rows.
_valid_dates: dict[str, str] = {}


def _date(f: FieldDef) -> Converter:
    def convert(value: Any) -> str:
        if type(value) is not str:
            raise TypeMismatch
        if value in _valid_dates:
            return value
        match = _DATE.match(value)
        if not match:
            raise TypeMismatch
        try:
            date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            raise TypeMismatch from None
        if len(_valid_dates) >= 65_536:
            _valid_dates.clear()
        _valid_dates[value] = value
        return value

    return convert


def parse_datetime(value: str) -> str | None:
    """An ISO 8601 date-time (or date) as Salesforce stores it, in UTC; None if it is not one."""
    match = _DATETIME.match(value)
    if not match:
        return None
    year, month, day, hour, minute, second, _fraction, zone = match.groups()
    try:
        moment = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                          tzinfo=timezone.utc)
    except ValueError:
        return None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset_minutes = sign * (int(digits[:2]) * 60 + int(digits[2:]))
        if abs(offset_minutes) > 18 * 60:
            return None
        moment = datetime.fromtimestamp(moment.timestamp() - offset_minutes * 60, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _datetime(f: FieldDef) -> Converter:
    def convert(value: Any) -> str:
        if type(value) is not str:
            raise TypeMismatch
        parsed = parse_datetime(value)
        if parsed is None:
            raise TypeMismatch
        return parsed

    return convert


def _passthrough(f: FieldDef) -> Converter:
    def convert(value: Any) -> Any:
        if isinstance(value, (dict, list)):
            raise TypeMismatch
        return value

    return convert


_BUILDERS: dict[str, Callable[[FieldDef], Converter]] = {
    "string": _text, "textarea": _text, "email": _text, "phone": _text, "url": _text, "encryptedstring": _text,
    "combobox": _text, "picklist": _picklist, "multipicklist": _picklist,
    "double": _decimal, "currency": _decimal, "percent": _decimal, "int": _integer, "long": _integer,
    "boolean": _boolean, "date": _date, "datetime": _datetime,
}


def converter_for(f: FieldDef) -> Converter:
    """The converter of field ``f`` (reference and id fields are handled by the write path)."""
    return _BUILDERS.get(f.type, _passthrough)(f)


def type_error(f: FieldDef, value: Any, value_format: str, column: int) -> RecordError:
    """The error for a value that is not of the field's type, worded as the API of ``value_format`` words it.

    Bulk (CSV) uses the recorded "Failed to deserialize field at col N" form (N counts from 0); REST and
    Collections use INVALID_TYPE_ON_FIELD_IN_RECORD.
    """
    if value_format == "csv":
        return RecordError(
            "INVALID_FIELD",
            f"Failed to deserialize field at col {column}. Due to, '{value}' is not a valid value for the type "
            f"xsd:{XSD_TYPES.get(f.type, 'string')}",
            [f.name],
        )
    return RecordError("INVALID_TYPE_ON_FIELD_IN_RECORD", f"{f.label}: value not of required type: {value}", [f.name])
