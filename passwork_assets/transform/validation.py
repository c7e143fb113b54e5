"""Checks against the describe that Salesforce would otherwise make after the API calls were spent.

Each check is a pair of Polars expressions over the coerced rows: a boolean "fails" and the message, so one
vectorised pass finds every failing row; codes and messages follow Salesforce's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from passwork_assets.salesforce.describe import FieldDescribe

TEXT_TYPES = frozenset({"string", "textarea", "email", "phone", "url", "picklist", "multipicklist",
                        "encryptedstring", "combobox"})


@dataclass
class Check:
    """Rows where `fails` is true are rejected with `code`, for `field`, with `message` (an expression)."""

    code: str
    field: str
    fails: pl.Expr
    message: pl.Expr
    value: pl.Expr


def _msg(*parts: str | pl.Expr) -> pl.Expr:
    return pl.concat_str([p if isinstance(p, pl.Expr) else pl.lit(p) for p in parts])


def field_checks(target: str, field: FieldDescribe, text: pl.Expr, source_text: pl.Expr, *,
                 bad_type: pl.Expr | None, out_of_range: pl.Expr | None, required: str | None) -> list[Check]:
    """Checks for one mapped field: `text` is the coerced value (null = no value), `source_text` the input.

    `required` names the field Salesforce requires on create (for a parent link, the reference field it
    sets), or is None.
    """
    checks: list[Check] = []
    if bad_type is not None:
        checks.append(Check(
            "INVALID_TYPE_ON_FIELD_IN_RECORD", target, bad_type,
            _msg(f"{field.name}: value not of required type ({field.type}): ", source_text.fill_null("")),
            source_text))
    if out_of_range is not None:
        digits = field.digits if field.type in ("int", "long") else field.precision
        checks.append(Check(
            "NUMBER_OUTSIDE_VALID_RANGE", target, out_of_range,
            _msg(f"{field.name}: value outside of valid range on numeric field: ", source_text.fill_null(""),
                 f" (precision {digits}, scale {field.scale})"),
            source_text))
    if required:
        # After the type and range checks: a value that is present but unusable is reported as such.
        checks.append(Check(
            "REQUIRED_FIELD_MISSING", target, text.is_null() | (text == ""),
            _msg(f"Required fields are missing: [{required}]"), source_text))
    if field.type in TEXT_TYPES and field.length > 0:
        # Characters, not bytes: 80 Japanese characters fit an 80-character field although they are 240 bytes.
        checks.append(Check(
            "STRING_TOO_LONG", target, text.str.len_chars() > field.length,
            _msg(f"{field.name}: data value too large: ", text.str.slice(0, 60),
                 pl.when(text.str.len_chars() > 60).then(pl.lit("...")).otherwise(pl.lit("")),
                 f" (max length={field.length}, value has ", text.str.len_chars().cast(pl.Utf8), " characters)"),
            text))
    if field.type in ("picklist", "multipicklist") and field.restricted_picklist:
        allowed = list(field.picklist_values)
        if field.type == "multipicklist":
            bad = text.str.split(";").list.eval(pl.element().is_in(allowed).not_()).list.any()
        else:
            bad = text.is_in(allowed).not_()
        checks.append(Check(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", target, text.is_not_null() & (text != "") & bad,
            _msg(f"{field.name}: bad value for restricted picklist field: ", text,
                 f" (allowed: {', '.join(allowed)})"),
            text))
    return checks


def key_checks(target: str, key: pl.Expr, count: pl.Expr) -> list[Check]:
    """The upsert key must be present and unique within the batch; every row of a duplicated key is rejected
    (Salesforce would fail the batch or keep an arbitrary one). `count` is how often the row's key occurs
    in the whole batch (computed once over the batch, so messages may be built for failing rows only)."""
    return [
        Check("MISSING_EXTERNAL_ID", target, key.is_null() | (key.str.strip_chars() == ""),
              _msg(f"{target}: the External ID is empty, so the row cannot be matched to a record"),
              key),
        Check("DUPLICATE_EXTERNAL_ID", target, key.is_not_null() & (count > 1),
              _msg(f"{target}: the External ID ", key, " appears ", count.cast(pl.Utf8),
                   " times in the source; none of these rows is sent until it is unique"),
              key),
    ]
