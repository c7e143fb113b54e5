"""Unit tests of the analytics on small Polars frames: trends, signals at their thresholds, profitability."""

from __future__ import annotations

import struct
import zlib
from datetime import date

import polars as pl
import pytest

from passwork_assets.analytics.chart import bar_chart_png, markdown_image
from passwork_assets.analytics.months import last_complete_month
from passwork_assets.analytics.profitability import contract_profitability, latest_profitability
from passwork_assets.analytics.usage_trends import (
    AnalyticsInputError,
    TrendThresholds,
    latest_signals,
    top_movers,
    usage_trends,
)

THRESHOLDS = TrendThresholds(growing_min=0.10, declining_max=-0.05, churn_risk_max=-0.30)


def monthly_usage(contract: str, quantities: list[float], *, year: int = 2024) -> pl.DataFrame:
    """One usage row on the 10th of each month from January, one month per quantity."""
    rows = [(contract, date(year, i + 1, 10), q) for i, q in enumerate(quantities)]
    return pl.DataFrame(rows, schema={"contract_key": pl.String, "usage_date": pl.Date, "quantity": pl.Float64},
                        orient="row")


def signal_for_steady_change(change: float) -> str:
    """The signal of a contract whose usage changed by `change` every month for four months."""
    quantities = [1000.0]
    for _ in range(3):
        quantities.append(quantities[-1] * (1 + change))
    trends = usage_trends(monthly_usage("C-1", quantities), THRESHOLDS, through=date(2024, 4, 1))
    last = latest_signals(trends).row(0, named=True)
    assert last["trend_3m"] == pytest.approx(change, abs=1e-6)
    return last["signal"]


@pytest.mark.dates
def test_last_complete_month() -> None:
    assert last_complete_month(date(2024, 1, 31)) == date(2024, 1, 1)
    assert last_complete_month(date(2024, 2, 15)) == date(2024, 1, 1)
    assert last_complete_month(date(2024, 2, 29)) == date(2024, 2, 1)
    assert last_complete_month(date(2024, 1, 1)) == date(2023, 12, 1)


@pytest.mark.dates
@pytest.mark.parametrize(
    ("change", "signal"),
    [
        (0.10, "growing"),      # exactly at growing_min
        (0.099, "stable"),
        (0.0, "stable"),
        (-0.049, "stable"),
        (-0.05, "declining"),   # exactly at declining_max
        (-0.29, "declining"),
        (-0.30, "churn_risk"),  # exactly at churn_risk_max
        (-0.50, "churn_risk"),
    ],
)
def test_signal_at_thresholds(change: float, signal: str) -> None:
    assert signal_for_steady_change(change) == signal


@pytest.mark.dates
def test_thresholds_come_from_config() -> None:
    quantities = [1000.0, 1030.0, 1060.9, 1092.727]  # +3 % a month
    strict = TrendThresholds(growing_min=0.02, declining_max=-0.01, churn_risk_max=-0.2)
    trends = usage_trends(monthly_usage("C-1", quantities), strict, through=date(2024, 4, 1))
    assert latest_signals(trends)["signal"].to_list() == ["growing"]


@pytest.mark.dates
def test_monthly_usage_mom_and_missing_months() -> None:
    usage = pl.concat(
        [
            monthly_usage("A", [100.0, 150.0, 150.0]),
            # B used the product in January and February only, then nothing: March must be a zero month.
            monthly_usage("B", [80.0, 40.0]),
        ]
    )
    usage = pl.concat([usage, pl.DataFrame({"contract_key": ["A"], "usage_date": [date(2024, 1, 20)],
                                            "quantity": [50.0]})])
    trends = usage_trends(usage, THRESHOLDS, through=date(2024, 3, 1))
    a = trends.filter(pl.col("contract_key") == "A")
    assert a["month"].to_list() == [date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)]
    assert a["usage"].to_list() == [150.0, 150.0, 150.0]
    assert a["mom_change"].to_list() == [None, 0.0, 0.0]
    b = trends.filter(pl.col("contract_key") == "B")
    assert b["usage"].to_list() == [80.0, 40.0, 0.0]
    assert b["mom_change"].to_list() == [None, -0.5, -1.0]
    assert b["signal"].to_list()[-1] == "churn_risk"
    assert top_movers(trends, limit=1)["contract_key"].to_list() == ["B"]


@pytest.mark.dates
def test_usage_that_went_silent_is_churn_risk_even_with_a_growing_history() -> None:
    usage = monthly_usage("C", [10.0, 20.0, 40.0, 80.0, 0.0])
    trends = usage_trends(usage, THRESHOLDS, through=date(2024, 5, 1))
    assert latest_signals(trends)["signal"].to_list() == ["churn_risk"]


@pytest.mark.dates
def test_partial_last_month_is_left_out_by_default() -> None:
    usage = monthly_usage("C", [100.0, 100.0, 1.0])  # March only has its 10th: not complete
    trends = usage_trends(usage, THRESHOLDS)
    assert trends["month"].max() == date(2024, 2, 1)
    assert latest_signals(trends)["signal"].to_list() == ["stable"]


def test_missing_column_is_a_clear_error() -> None:
    with pytest.raises(AnalyticsInputError, match="missing: quantity"):
        usage_trends(pl.DataFrame({"contract_key": ["A"], "usage_date": [date(2024, 1, 1)]}), THRESHOLDS)


def test_inconsistent_thresholds_are_refused() -> None:
    with pytest.raises(ValueError, match="churn_risk_max <= declining_max < growing_min"):
        TrendThresholds(growing_min=-0.1, declining_max=0.0, churn_risk_max=-0.3)


@pytest.mark.dates
def test_contract_profitability() -> None:
    usage = pl.DataFrame(
        {
            "contract_key": ["C-1", "C-1", "C-1", "C-2", "C-2"],
            "usage_date": [date(2024, 1, 3), date(2024, 1, 4), date(2024, 2, 1), date(2024, 2, 5), date(2024, 2, 29)],
            "metric": ["api_calls", "storage_gb", "api_calls", "api_calls", "seats"],
            "quantity": [1000.0, 10.0, 2000.0, 500.0, 3.0],
        }
    )
    prices = pl.DataFrame({"metric": ["api_calls", "storage_gb"], "unit_price": [0.5, 20.0]})
    contracts = pl.DataFrame(
        {
            "contract_key": ["C-1", "C-2"],
            "monthly_amount": [10000.0, 0.0],
            "start_date": [date(2024, 1, 1), date(2024, 2, 1)],
            "end_date": [None, None],
        },
        schema_overrides={"end_date": pl.Date},
    )
    costs = pl.DataFrame(
        {"contract_key": ["C-1", "C-2"], "cost_date": [date(2024, 2, 28), date(2024, 2, 10)], "amount": [4000.0, 500.0]}
    )
    result = contract_profitability(usage, prices, contracts, costs)
    c1 = result.monthly.filter(pl.col("contract_key") == "C-1").to_dicts()
    assert [row["month"] for row in c1] == [date(2024, 1, 1), date(2024, 2, 1)]
    assert c1[0]["revenue"] == 10000.0 + 1000 * 0.5 + 10 * 20.0
    assert c1[0]["margin_rate"] == 1.0
    assert c1[1]["revenue"] == 11000.0
    assert c1[1]["cost"] == 4000.0
    assert c1[1]["margin"] == 7000.0
    assert c1[1]["margin_rate"] == pytest.approx(7000 / 11000, abs=1e-6)
    c2 = latest_profitability(result.monthly).filter(pl.col("contract_key") == "C-2").row(0, named=True)
    assert (c2["revenue"], c2["cost"], c2["margin"]) == (250.0, 500.0, -250.0)
    assert c2["margin_rate"] == -1.0
    # "seats" has no price: it is reported, not silently counted as zero revenue.
    assert result.unpriced.to_dicts() == [{"contract_key": "C-2", "metric": "seats", "rows": 1, "quantity": 3.0}]


@pytest.mark.dates
def test_profitability_margin_rate_is_null_without_revenue() -> None:
    empty_usage = pl.DataFrame(schema={"contract_key": pl.String, "usage_date": pl.Date, "metric": pl.String,
                                       "quantity": pl.Float64})
    contracts = pl.DataFrame({"contract_key": ["C-9"], "monthly_amount": [None], "start_date": [None],
                              "end_date": [None]},
                             schema={"contract_key": pl.String, "monthly_amount": pl.Float64,
                                     "start_date": pl.Date, "end_date": pl.Date})
    costs = pl.DataFrame({"contract_key": ["C-9"], "cost_date": [date(2024, 3, 31)], "amount": [100.0]})
    prices = pl.DataFrame({"metric": ["api_calls"], "unit_price": [1.0]})
    monthly = contract_profitability(empty_usage, prices, contracts, costs).monthly
    assert monthly.to_dicts() == [
        {"contract_key": "C-9", "month": date(2024, 3, 1), "usage_revenue": 0.0, "contract_revenue": 0.0,
         "revenue": 0.0, "cost": 100.0, "margin": -100.0, "margin_rate": None}
    ]


def test_bar_chart_is_a_valid_png() -> None:
    png = bar_chart_png([0.5, -0.25], width=40, bar_height=4, gap=2)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (40, 2 + 2 * 6)
    idat_length = struct.unpack(">I", png[33:37])[0]
    raw = zlib.decompress(png[41 : 41 + idat_length])
    assert len(raw) == height * (1 + 3 * width)
    row_of_first_bar = raw[3 * (1 + 3 * width) : 4 * (1 + 3 * width)][1:]
    pixels = [tuple(row_of_first_bar[i : i + 3]) for i in range(0, len(row_of_first_bar), 3)]
    assert (46, 139, 87) in pixels and (200, 55, 55) not in pixels
    assert markdown_image(png, "movers").startswith("![movers](data:image/png;base64,iVBORw0KGgo")
