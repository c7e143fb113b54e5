"""The analytics assets over the seeded sample databases in the embedded PostgreSQL (no Salesforce needed)."""

from __future__ import annotations

import uuid
import warnings

import dagster as dg
import psycopg
import pytest

from passwork_assets.demo.sample_data import seed_erp, seed_product

pytestmark = pytest.mark.integration


@pytest.fixture
def seeded(postgres, monkeypatch: pytest.MonkeyPatch) -> str:
    suffix = uuid.uuid4().hex[:8]
    product = postgres.create_database(f"an_product_{suffix}")
    erp = postgres.create_database(f"an_erp_{suffix}")
    state = postgres.create_database(f"an_state_{suffix}")
    seed_product(product, accounts=3, contracts_per_account=2, usage_days=120)
    seed_erp(erp, accounts=3, contracts_per_account=2)
    monkeypatch.setenv("PRODUCT_DATABASE_URL", product)
    monkeypatch.setenv("ERP_DATABASE_URL", erp)
    monkeypatch.setenv("PASSWORK_STATE_URL", state)
    return state


def test_usage_trends_and_profitability_materialize_and_store_their_tables(seeded: str) -> None:
    from passwork_assets.definitions import defs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        job = defs().resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance, raise_on_error=False,
            asset_selection=[dg.AssetKey("usage_trends"), dg.AssetKey("contract_profitability")],
        )
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    meta = {e.asset_key.to_user_string(): e.materialization.metadata
            for e in result.get_asset_materialization_events()}
    trends = meta["usage_trends"]
    assert trends["month"].value == "2025-06-01"  # the sample data ends on 2025-06-30, a complete month
    assert sum(trends["signals"].value.values()) == trends["contracts"].value > 0
    assert len(trends["top_movers"].records) > 0
    assert "data:image/png;base64," in trends["top_movers_chart"].value
    profit = meta["contract_profitability"]
    assert profit["revenue"].value > 0

    with psycopg.connect(seeded) as conn:
        stored = conn.execute("SELECT count(*), count(DISTINCT contract_key) FROM passwork_analytics.usage_trends").fetchone()
        signals = {r[0] for r in conn.execute("SELECT DISTINCT signal FROM passwork_analytics.usage_trends")}
        margins = conn.execute(
            "SELECT count(*) FROM passwork_analytics.contract_profitability WHERE abs(margin - (revenue - cost)) > 0.005"
        ).fetchone()
    assert stored[0] == trends["dagster/row_count"].value and stored[1] > 0
    assert signals <= {"growing", "stable", "declining", "churn_risk"}
    assert margins == (0,)
