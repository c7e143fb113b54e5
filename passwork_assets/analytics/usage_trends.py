"""Usage trends per contract and month, and the upsell / churn-risk signal Sales sees on the Contract.

Input is the product database's metered usage, one row per contract, day and metric. The signal is read
from the 3-month trend (the mean of the last three month-over-month changes) against thresholds that RevOps
tunes in `passwork_assets/defs/passwork/defs.yaml`, so "growing" means the same thing in the asset, in the
test and on the Contract page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from passwork_assets.analytics.months import last_complete_month, month_grid, month_of

SIGNALS = ("growing", "stable", "declining", "churn_risk")
"""Every signal a contract can carry, best first."""

USAGE_COLUMNS = {"contract_key": pl.String, "usage_date": pl.Date, "quantity": pl.Float64}
"""The columns (and types) the usage query must return."""


class AnalyticsInputError(ValueError):
    """An analytics query returned a frame without a column the computation needs."""


@dataclass(frozen=True)
class TrendThresholds:
    """Where the signal changes, as fractions of the 3-month trend (0.10 = +10 % a month on average).

    Boundaries are inclusive: a trend exactly at `growing_min` is growing, exactly at `declining_max` is
    declining, exactly at `churn_risk_max` is a churn risk.
    """

    growing_min: float = 0.10
    declining_max: float = -0.05
    churn_risk_max: float = -0.30

    def __post_init__(self) -> None:
        if not self.churn_risk_max <= self.declining_max < self.growing_min:
            raise ValueError(
                "trend thresholds must satisfy churn_risk_max <= declining_max < growing_min; got "
                f"churn_risk_max={self.churn_risk_max}, declining_max={self.declining_max}, "
                f"growing_min={self.growing_min}"
            )


def require_columns(frame: pl.DataFrame, wanted: dict[str, pl.DataType | type[pl.DataType]], what: str) -> pl.DataFrame:
    """`frame` reduced to the `wanted` columns cast to their types; a clear error names any missing column."""
    missing = [name for name in wanted if name not in frame.columns]
    if missing:
        raise AnalyticsInputError(
            f"the {what} query must return the columns {', '.join(wanted)}; missing: {', '.join(missing)} "
            f"(it returned: {', '.join(frame.columns) or 'no columns'})"
        )
    return frame.select(pl.col(name).cast(dtype) for name, dtype in wanted.items())


def signal_expr(thresholds: TrendThresholds) -> pl.Expr:
    """The signal of one contract-month from its usage, its history and its 3-month trend."""
    went_silent = (pl.col("usage") == 0) & (pl.col("usage_before") > 0)
    trend = pl.col("trend_3m")
    return (
        pl.when(went_silent | (trend <= thresholds.churn_risk_max))
        .then(pl.lit("churn_risk"))
        .when(trend <= thresholds.declining_max)
        .then(pl.lit("declining"))
        .when(trend >= thresholds.growing_min)
        .then(pl.lit("growing"))
        .otherwise(pl.lit("stable"))
    )


def usage_trends(usage: pl.DataFrame, thresholds: TrendThresholds, *, through: date | None = None) -> pl.DataFrame:
    """Monthly usage per contract with month-over-month change, 3-month trend and signal.

    Columns: contract_key, month (first day), usage, mom_change (fraction, null when the previous month had
    no usage), trend_3m (mean of the available month-over-month changes of the last three months), signal.
    Months run from each contract's first usage up to `through` (default: the last complete month of the
    data); months without usage count as zero.
    """
    rows = require_columns(usage, USAGE_COLUMNS, "usage").drop_nulls(["contract_key", "usage_date"])
    if rows.is_empty():
        return pl.DataFrame(
            schema={"contract_key": pl.String, "month": pl.Date, "usage": pl.Float64, "mom_change": pl.Float64,
                    "trend_3m": pl.Float64, "signal": pl.String}
        )
    last_month = through.replace(day=1) if through else last_complete_month(rows["usage_date"].max())
    monthly = (
        rows.with_columns(month_of("usage_date").alias("month"))
        .group_by("contract_key", "month")
        .agg(pl.col("quantity").fill_null(0).sum().alias("usage"))
    )
    firsts = monthly.group_by("contract_key").agg(pl.col("month").min().alias("first_month"))
    by_contract = pl.col("contract_key")
    return (
        month_grid(firsts, "contract_key", "first_month", last_month)
        .join(monthly, on=["contract_key", "month"], how="left")
        .with_columns(pl.col("usage").fill_null(0.0))
        .sort("contract_key", "month")
        .with_columns(
            pl.col("usage").shift(1).over(by_contract).alias("previous"),
            pl.col("usage").cum_max().shift(1).over(by_contract).fill_null(0.0).alias("usage_before"),
        )
        .with_columns(
            pl.when(pl.col("previous") > 0)
            # Rounded so that a change of exactly +10 % is 0.1 and meets a 0.1 threshold.
            .then(((pl.col("usage") - pl.col("previous")) / pl.col("previous")).round(6))
            .otherwise(None)
            .alias("mom_change")
        )
        .with_columns(
            pl.col("mom_change").rolling_mean(window_size=3, min_samples=1).over(by_contract).round(6).alias("trend_3m")
        )
        .with_columns(signal_expr(thresholds).alias("signal"))
        .select("contract_key", "month", "usage", "mom_change", "trend_3m", "signal")
    )


def latest_signals(trends: pl.DataFrame) -> pl.DataFrame:
    """The last month of each contract: what goes to the Contract record."""
    if trends.is_empty():
        return trends
    last = trends["month"].max()
    return trends.filter(pl.col("month") == last).sort("contract_key")


def top_movers(trends: pl.DataFrame, limit: int = 10) -> pl.DataFrame:
    """The contracts whose usage moved most (either way) in the last month, biggest change first."""
    return (
        latest_signals(trends)
        .filter(pl.col("mom_change").is_not_null())
        .sort(pl.col("mom_change").abs(), "contract_key", descending=[True, False])
        .head(limit)
    )
