"""Contract profitability (売上と収益性): revenue against cost per contract and month.

Revenue is the metered usage priced at the product database's unit prices plus the contract's fixed
monthly amount; cost is the ERP's cost lines (外注費 and other costs booked per contract). Margin is
revenue minus cost and the margin rate is margin over revenue (null when there was no revenue, since a
rate over nothing means nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from passwork_assets.analytics.months import last_complete_month, month_grid, month_of
from passwork_assets.analytics.usage_trends import AnalyticsInputError, require_columns

PRICED_USAGE_COLUMNS = {"contract_key": pl.String, "usage_date": pl.Date, "metric": pl.String,
                        "quantity": pl.Float64}
CONTRACT_COLUMNS = {"contract_key": pl.String, "monthly_amount": pl.Float64, "start_date": pl.Date,
                    "end_date": pl.Date}
COST_COLUMNS = {"contract_key": pl.String, "cost_date": pl.Date, "amount": pl.Float64}
PRICE_KEYS = ("contract_key", "metric")
"""A price row applies to every usage row that matches it on the keys it has: per metric, per contract, or both."""


@dataclass(frozen=True)
class Profitability:
    """Per contract and month figures, and the usage that could not be priced (never silently dropped)."""

    monthly: pl.DataFrame
    unpriced: pl.DataFrame
    """Usage rows with no unit price, grouped by contract and metric: revenue is understated by these."""


def _prices(prices: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    keys = [key for key in PRICE_KEYS if key in prices.columns]
    if "unit_price" not in prices.columns or not keys:
        raise AnalyticsInputError(
            "the prices query must return unit_price and at least one of contract_key, metric; it returned: "
            + (", ".join(prices.columns) or "no columns")
        )
    typed = prices.select(*(pl.col(key).cast(pl.String) for key in keys), pl.col("unit_price").cast(pl.Float64))
    return typed.unique(subset=keys, keep="last", maintain_order=True), keys


def contract_profitability(
    usage: pl.DataFrame,
    prices: pl.DataFrame,
    contracts: pl.DataFrame,
    costs: pl.DataFrame,
    *,
    through: date | None = None,
) -> Profitability:
    """Revenue, cost, margin and margin rate per contract and month, up to the last complete month.

    `through` defaults to the last complete month of the usage data (or of the costs when there is no usage).
    """
    usage_rows = require_columns(usage, PRICED_USAGE_COLUMNS, "usage").drop_nulls(["contract_key", "usage_date"])
    contract_rows = require_columns(contracts, CONTRACT_COLUMNS, "contracts").drop_nulls(["contract_key"])
    cost_rows = require_columns(costs, COST_COLUMNS, "costs").drop_nulls(["contract_key", "cost_date"])
    price_rows, price_keys = _prices(prices)

    if through is not None:
        last_month = through.replace(day=1)
    elif not usage_rows.is_empty():
        last_month = last_complete_month(usage_rows["usage_date"].max())
    elif not cost_rows.is_empty():
        last_month = last_complete_month(cost_rows["cost_date"].max())
    else:
        last_month = None

    priced = usage_rows.join(price_rows, on=price_keys, how="left")
    unpriced = (
        priced.filter(pl.col("unit_price").is_null())
        .group_by("contract_key", "metric")
        .agg(pl.len().alias("rows"), pl.col("quantity").sum().alias("quantity"))
        .sort("contract_key", "metric")
    )
    usage_revenue = (
        priced.with_columns(month_of("usage_date").alias("month"))
        .group_by("contract_key", "month")
        .agg((pl.col("quantity").fill_null(0) * pl.col("unit_price").fill_null(0)).sum().alias("usage_revenue"))
    )
    cost = (
        cost_rows.with_columns(month_of("cost_date").alias("month"))
        .group_by("contract_key", "month")
        .agg(pl.col("amount").fill_null(0).sum().alias("cost"))
    )
    schema = {"contract_key": pl.String, "month": pl.Date, "usage_revenue": pl.Float64,
              "contract_revenue": pl.Float64, "revenue": pl.Float64, "cost": pl.Float64, "margin": pl.Float64,
              "margin_rate": pl.Float64}
    if last_month is None:
        return Profitability(pl.DataFrame(schema=schema), unpriced)

    starts = pl.concat(
        [
            usage_revenue.select("contract_key", "month"),
            cost.select("contract_key", "month"),
            contract_rows.filter(pl.col("start_date").is_not_null()).select(
                "contract_key", month_of("start_date").alias("month")
            ),
        ]
    ).group_by("contract_key").agg(pl.col("month").min().alias("first_month"))
    in_term = (pl.col("start_date").is_null() | (pl.col("month") >= pl.col("start_date").dt.truncate("1mo"))) & (
        pl.col("end_date").is_null() | (pl.col("month") <= pl.col("end_date"))
    )
    monthly = (
        month_grid(starts, "contract_key", "first_month", last_month)
        .join(usage_revenue, on=["contract_key", "month"], how="left")
        .join(cost, on=["contract_key", "month"], how="left")
        .join(contract_rows, on="contract_key", how="left")
        .with_columns(
            pl.col("usage_revenue").fill_null(0.0),
            pl.col("cost").fill_null(0.0),
            pl.when(in_term).then(pl.col("monthly_amount").fill_null(0.0)).otherwise(0.0).alias("contract_revenue"),
        )
        .with_columns((pl.col("usage_revenue") + pl.col("contract_revenue")).alias("revenue"))
        .with_columns((pl.col("revenue") - pl.col("cost")).round(2).alias("margin"))
        .with_columns(
            pl.when(pl.col("revenue") != 0)
            .then((pl.col("margin") / pl.col("revenue")).round(6))
            .otherwise(None)
            .alias("margin_rate")
        )
        .select(list(schema))
        .sort("contract_key", "month")
    )
    return Profitability(monthly, unpriced)


def latest_profitability(monthly: pl.DataFrame) -> pl.DataFrame:
    """The last complete month of each contract: what goes to the Contract record."""
    if monthly.is_empty():
        return monthly
    return monthly.filter(pl.col("month") == monthly["month"].max()).sort("contract_key")
