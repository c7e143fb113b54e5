"""One chunk of source rows to Salesforce records and rejects, in vectorised Polars passes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from passwork_assets.salesforce.describe import FieldDescribe, ObjectDescribe
from passwork_assets.transform.coercion import as_text, coerce
from passwork_assets.transform.field_values import TransformError, field_values, where
from passwork_assets.transform.result import Reject, TransformResult
from passwork_assets.transform.row_hash import row_hash
from passwork_assets.transform.validation import Check, field_checks, key_checks

if TYPE_CHECKING:
    from passwork_assets.mapping.models import FieldSpec, FlowMapping

KEY_COLUMN = "__key"
HASH_COLUMN = "__hash"
CLEAR = "#N/A"  # Bulk 2.0 CSV: set the field to null (an empty cell leaves it as it is)
_ROW = "__row"
_COERCED = "__coerced"
_KEY_COUNT = "__key_count"


def _describe_of(flow: FlowMapping, spec: FieldSpec, describe: ObjectDescribe,
                 parents: dict[str, ObjectDescribe]) -> tuple[FieldDescribe, FieldDescribe]:
    """(the field whose type the value takes, the field of the target object it writes)."""
    written = describe.field(spec.written_field)
    if not spec.is_parent_link:
        if written is None:
            raise TransformError(f"{where(flow, spec)}: {describe.name} has no field {spec.target}")
        return written, written
    relationship = describe.relationship(spec.relationship or "")
    parent_name = spec.parent_object or (relationship.reference_to[0] if relationship and
                                         relationship.reference_to else None)
    parent = parents.get(parent_name or "")
    if relationship is None or parent is None:
        raise TransformError(
            f"{where(flow, spec)}: the parent link {spec.target} needs the describe of {describe.name}'s "
            f"relationship {spec.relationship} and of its parent object ({parent_name or 'unknown'})"
        )
    parent_field = parent.field(spec.parent_external_id or "")
    if parent_field is None:
        raise TransformError(f"{where(flow, spec)}: {parent.name} has no field {spec.parent_external_id}")
    return parent_field, relationship


def build_records(frame: pl.DataFrame, flow: FlowMapping, describe: ObjectDescribe,
                  parents: dict[str, ObjectDescribe]) -> TransformResult:
    """Salesforce-ready records (all Utf8, Bulk 2.0 CSV headers, plus `__key` and `__hash`) and rejects.

    Each field takes its value from its column, expression or constant, is coerced to its describe type,
    and is checked (required on create, length in characters, restricted picklist, number range, type);
    the upsert key must be present and unique in the chunk. A row failing any check is a `Reject` carrying
    the first failure (key checks first, then fields in mapping order) and the source row as read. Null
    values become an empty cell (leave as is) or `#N/A` (clear) per the field's `on_null`.
    """
    values = field_values(frame, flow)
    creating = flow.target.operation in ("insert", "upsert")
    key_target = flow.target.external_id
    key_spec = flow.key_field
    if key_spec is None:
        raise TransformError(f"{flow.path}: fields: the External ID field {key_target} is not mapped")

    # Each field's coerced text (null = no value) is computed once, into a column of `work`; the checks and
    # the records read that column instead of coercing again.
    coerced_columns: list[pl.Expr] = []
    texts: list[pl.Expr] = []
    checks: list[Check] = []
    for index, spec in enumerate(flow.fields):
        value_field, written = _describe_of(flow, spec, describe, parents)
        dtype = values.schema[spec.target]
        value = pl.col(spec.target)
        coerced = coerce(value, dtype, value_field)
        name = f"{_COERCED}{index}"
        coerced_columns.append(coerced.text.alias(name))
        text = pl.col(name)
        if spec is key_spec:
            key_field_checks = field_checks(spec.target, value_field, text, as_text(value, dtype),
                                            bad_type=coerced.bad_type, out_of_range=coerced.out_of_range,
                                            required=None)
            checks = key_checks(spec.target, text, pl.col(_KEY_COUNT)) + key_field_checks + checks
            texts.append(text.alias(spec.target))
            key_text = text
            continue
        required = creating and written.required_on_create
        checks += field_checks(spec.target, value_field, text, as_text(value, dtype), bad_type=coerced.bad_type,
                               out_of_range=coerced.out_of_range, required=written.name if required else None)
        if spec.on_null == "clear" and not required:
            filled = text.fill_null(pl.lit(CLEAR))
        else:
            filled = text.fill_null(pl.lit(""))
        texts.append(filled.alias(spec.target))

    work = values.with_columns(coerced_columns).with_columns(key_text.len().over(key_text).alias(_KEY_COUNT))
    # First only which check (if any) each row fails; messages are built for the failing rows alone.
    first_failure = work.select(
        pl.coalesce([pl.when(c.fails.fill_null(False)).then(pl.lit(i, dtype=pl.UInt32))
                     for i, c in enumerate(checks)]).alias("__check")
    ).to_series()
    targets = [spec.target for spec in flow.fields]
    good = work
    rejects: list[Reject] = []
    if first_failure.null_count() < len(first_failure):
        failing_mask = first_failure.is_not_null()
        failing = work.with_row_index(_ROW).filter(failing_mask).select(
            pl.col(_ROW),
            pl.coalesce([pl.when(c.fails.fill_null(False)).then(pl.lit(i)) for i, c in enumerate(checks)]).alias("__check"),
            pl.coalesce([pl.when(c.fails.fill_null(False)).then(c.message) for c in checks]).alias("__message"),
            pl.coalesce([pl.when(c.fails.fill_null(False)).then(c.value.cast(pl.Utf8)) for c in checks]).alias("__value"),
            key_text.alias("__rkey"),
        )
        source_rows = frame.with_row_index(_ROW).filter(failing_mask)
        detail = failing.join(source_rows, on=_ROW, how="left").sort(_ROW)
        source_columns = frame.columns
        for row in detail.iter_rows(named=True):
            check = checks[row["__check"]]
            key = row["__rkey"]
            rejects.append(Reject(
                flow=flow.flow, key=key if key not in (None, "") else None, code=check.code,
                message=row["__message"], field=check.field, value=row["__value"],
                row={c: row[c] for c in source_columns},
            ))
        good = work.filter(first_failure.is_null())

    records = good.select(*texts, key_text.alias(KEY_COLUMN)).with_columns(row_hash(targets).alias(HASH_COLUMN))
    return TransformResult(records=records, rejects=rejects)
