"""The usage sensor evaluated against the real embedded PostgreSQL: with and without new usage rows."""

from __future__ import annotations

import json
import warnings

import dagster as dg
import psycopg
import pytest

from passwork_assets.defs.resources import PassworkSyncResource
from passwork_assets.demo.sample_data import seed_product
from passwork_assets.state.store import StateStore

pytestmark = pytest.mark.integration

USAGE_ASSETS = {"salesforce/Usage__c", "salesforce/Contract", "salesforce/Account"}


@pytest.fixture
def product_and_state(fresh_database: str, postgres, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    seed_product(fresh_database, accounts=3, contracts_per_account=1, usage_days=3, dirty=False)
    state_url = postgres.create_database(f"{fresh_database.rsplit('/', 1)[1]}_state")
    monkeypatch.setenv("PRODUCT_DATABASE_URL", fresh_database)
    return fresh_database, state_url


@pytest.fixture(scope="module")
def usage_sensor() -> dg.SensorDefinition:
    from passwork_assets.definitions import defs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return defs().resolve_sensor_def("product_usage_new_rows")


def evaluate(sensor: dg.SensorDefinition, cursor: str | None, state_url: str) -> dg.SensorResult:
    context = dg.build_sensor_context(cursor=cursor, resources={"passwork_sync": PassworkSyncResource(state_url=state_url)})
    result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def max_updated_at(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT max(updated_at)::text FROM public.usage_events").fetchone()
    assert row is not None
    return row[0]


def add_usage_row(url: str) -> str:
    with psycopg.connect(url) as conn:
        contract = conn.execute("SELECT contract_no FROM public.contracts ORDER BY id LIMIT 1").fetchone()[0]
        conn.execute(
            "INSERT INTO public.usage_events (id, contract_no, usage_date, metric, quantity, unit_price, updated_at) "
            "VALUES (999999, %s, DATE '2025-07-01', 'api_calls', 42, 0.05, TIMESTAMPTZ '2025-07-02 09:00:00.123456+00')",
            (contract,),
        )
    return max_updated_at(url)


def test_first_tick_requests_all_unsynced_rows_then_skips(usage_sensor: dg.SensorDefinition,
                                                          product_and_state: tuple[str, str]) -> None:
    product_url, state_url = product_and_state
    first = evaluate(usage_sensor, None, state_url)
    top = max_updated_at(product_url)
    assert len(first.run_requests) == 1
    request = first.run_requests[0]
    assert request.run_key == f"product_usage:{top}"
    assert {k.to_user_string() for k in request.asset_selection} == USAGE_ASSETS
    assert request.tags["passwork/flow"] == "product_usage"
    assert json.loads(first.cursor) == {"flow": "product_usage", "last_seen": top}

    again = evaluate(usage_sensor, first.cursor, state_url)
    assert again.run_requests == []
    assert again.skip_reason is not None
    assert json.loads(again.cursor) == {"flow": "product_usage", "last_seen": top}


def test_new_usage_row_requests_a_run_with_a_new_run_key(usage_sensor: dg.SensorDefinition,
                                                         product_and_state: tuple[str, str]) -> None:
    product_url, state_url = product_and_state
    before = max_updated_at(product_url)
    cursor = json.dumps({"flow": "product_usage", "last_seen": before})
    assert evaluate(usage_sensor, cursor, state_url).run_requests == []

    newest = add_usage_row(product_url)
    result = evaluate(usage_sensor, cursor, state_url)
    assert [r.run_key for r in result.run_requests] == [f"product_usage:{newest}"]
    assert newest.endswith(".123456+00")  # the cursor keeps microseconds, so no row is skipped or repeated
    assert json.loads(result.cursor)["last_seen"] == newest


def test_first_tick_starts_from_the_sync_cursor(usage_sensor: dg.SensorDefinition,
                                               product_and_state: tuple[str, str]) -> None:
    product_url, state_url = product_and_state
    store = StateStore(state_url)
    store.migrate()
    store.set_cursor("product_usage", max_updated_at(product_url))
    nothing_new = evaluate(usage_sensor, None, state_url)
    assert nothing_new.run_requests == []

    newest = add_usage_row(product_url)
    result = evaluate(usage_sensor, None, state_url)
    assert [r.run_key for r in result.run_requests] == [f"product_usage:{newest}"]


def test_cursor_of_another_flow_is_refused(usage_sensor: dg.SensorDefinition,
                                           product_and_state: tuple[str, str]) -> None:
    _, state_url = product_and_state
    with pytest.raises(Exception, match="does not belong to flow product_usage"):
        evaluate(usage_sensor, json.dumps({"flow": "erp_costs", "last_seen": "x"}), state_url)
