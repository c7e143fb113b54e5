"""Calendar months of dated rows, and which month is the last one whose data is complete.

Both analytics (usage trends and profitability) report per contract and month, and both must ignore the
month still in progress: a half-filled month would always look like a drop in usage or revenue.
Dates stay `pl.Date` throughout, so no local time zone ever shifts a row into the neighbouring month.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl


def month_of(column: str) -> pl.Expr:
    """The first day of the month of a `pl.Date` (or datetime) column, as a `pl.Date`."""
    return pl.col(column).cast(pl.Date).dt.truncate("1mo")


def last_complete_month(last_date: date) -> date:
    """The first day of the last month fully covered by data that runs up to `last_date` (inclusive).

    Data ending on the 31st of January covers January; data ending on the 15th of February does not cover
    February, so January is the last complete month.
    """
    if (last_date + timedelta(days=1)).month != last_date.month:
        return last_date.replace(day=1)
    first_of_month = last_date.replace(day=1)
    return (first_of_month - timedelta(days=1)).replace(day=1)


def month_grid(keys: pl.DataFrame, key: str, first: str, last_month: date) -> pl.DataFrame:
    """Every month from each key's `first` month up to `last_month`: one row per (key, month).

    Months without rows must exist as zero rows, otherwise a contract that stopped using the product would
    simply vanish from the trend instead of showing the drop.
    """
    return (
        keys.filter(pl.col(first) <= last_month)
        .select(
            pl.col(key),
            pl.date_ranges(pl.col(first), pl.lit(last_month), interval="1mo").alias("month"),
        )
        .explode("month")
    )
