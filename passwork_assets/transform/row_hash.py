"""A stable fingerprint of what a record would write, to send only rows that changed since the last run.

The hash must be equal for equal rows across runs, chunks, processes and library upgrades. Polars'
`hash_rows` / `Expr.hash` are explicitly not stable across versions, so the fingerprint is SHA-1 (as a
change detector, not for security) of the row's Salesforce text values joined with a unit separator,
prefixed by the column names so that mapping a new field marks every row as changed.
"""

from __future__ import annotations

import hashlib

import polars as pl

_SEPARATOR = "\x1f"


def _sha1_hex(values: pl.Series) -> pl.Series:
    sha1 = hashlib.sha1
    return pl.Series(values.name, [sha1(v.encode()).hexdigest() for v in values.to_list()], dtype=pl.Utf8)


def row_hash(columns: list[str]) -> pl.Expr:
    """An expression giving the hex SHA-1 of `columns` (all Utf8, no nulls) of each row."""
    header = _SEPARATOR.join(columns)
    joined = pl.concat_str([pl.lit(header), *[pl.col(c) for c in columns]], separator=_SEPARATOR)
    return joined.map_batches(_sha1_hex, return_dtype=pl.Utf8)
