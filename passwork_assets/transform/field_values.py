"""Where each mapped field's value comes from: a source column, a SQL expression evaluated by Polars, a constant.

Mistakes here are mapping mistakes, not row problems, so they raise `TransformError` naming the mapping
file, line, field and expression instead of rejecting every row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from passwork_assets.mapping.models import FieldSpec, FlowMapping


class TransformError(ValueError):
    """A field mapping cannot be evaluated against the extracted rows; names file, line, field and reason."""


def where(flow: FlowMapping, spec: FieldSpec) -> str:
    """`file:line: fields.Target` for messages about one field mapping."""
    line = spec.line or flow.line_of(f"fields.{spec.target}")
    return f"{flow.path}:{line or '?'}: fields.{spec.target}"


def _source_expr(flow: FlowMapping, spec: FieldSpec, columns: list[str]) -> pl.Expr:
    if spec.column is not None:
        if spec.column not in columns:
            raise TransformError(
                f"{where(flow, spec)}: column {spec.column!r} is not in the extracted rows "
                f"(columns: {', '.join(columns)})"
            )
        return pl.col(spec.column)
    if spec.expr is not None:
        try:
            return pl.sql_expr(spec.expr)
        except pl.exceptions.PolarsError as exc:
            raise TransformError(
                f"{where(flow, spec)}: the expression {spec.expr!r} is not valid SQL for Polars: {exc}"
            ) from None
    return pl.lit(spec.const)


def _mapped(spec: FieldSpec, expr: pl.Expr) -> pl.Expr:
    """Apply the picklist value map: source values are compared as text; unmapped values pass unchanged."""
    if not spec.value_map:
        return expr
    text = expr.cast(pl.Utf8)
    # Booleans cast to "true"/"false", which is how the mapping model spells boolean keys.
    return text.replace(spec.value_map)


def field_values(frame: pl.DataFrame, flow: FlowMapping) -> pl.DataFrame:
    """One column per field mapping (named by its target), in the Polars type the source gave it."""
    columns = list(frame.columns)
    exprs = [_mapped(spec, _source_expr(flow, spec, columns)).alias(spec.target) for spec in flow.fields]
    targets = [spec.target for spec in flow.fields]
    try:
        # with_columns (not select) so that a constant is repeated for every row.
        return frame.with_columns(exprs).select(targets)
    except pl.exceptions.PolarsError:
        pass  # evaluate one by one below, to name the field whose expression fails
    values = {}
    for spec, expr in zip(flow.fields, exprs):
        try:
            values[spec.target] = frame.with_columns(expr).get_column(spec.target)
        except pl.exceptions.PolarsError as exc:
            shown = spec.expr if spec.expr is not None else spec.column
            raise TransformError(
                f"{where(flow, spec)}: evaluating {shown!r} failed: {str(exc).splitlines()[0]}"
            ) from None
    return pl.DataFrame(values)
