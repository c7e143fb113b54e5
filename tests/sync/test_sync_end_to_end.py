"""The six flows end to end: real PostgreSQL sources and state, the emulator over HTTPS, simple-salesforce.

The invariants under test are the product's promises: every extracted row is written or kept as a reject
with its reason; children point at the right parents by External ID; a re-sync creates no duplicates and
sends nothing; a change sends exactly the changed rows; a held-back child syncs once its parent exists;
faults and crashes lose nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from typing import TYPE_CHECKING

import psycopg
import pytest

if TYPE_CHECKING:
    from conftest import World

pytestmark = pytest.mark.integration

FLOWS = ("product_accounts", "erp_partners", "product_contracts", "erp_contracts", "product_usage", "erp_costs")


def _source_usage(world: World) -> dict[str, tuple[str, str, float]]:
    """UsageKey__c -> (contract_no, usage_date, quantity) for the source rows with a key."""
    with psycopg.connect(world.product_url) as conn:
        rows = conn.execute(
            "SELECT contract_no, usage_date, metric, quantity FROM public.usage_events WHERE contract_no IS NOT NULL"
        ).fetchall()
    return {f"{c}:{d.isoformat()}:{m}": (c, d.isoformat(), float(q)) for c, d, m, q in rows}


def _assert_every_row_accounted(results: dict) -> None:
    for name, r in results.items():
        assert r.status == "ok", f"{name}: {r.error}"
        assert r.extracted == r.created + r.updated + r.rejected, (
            f"{name}: {r.extracted} extracted but {r.created} created + {r.updated} updated + {r.rejected} rejected"
        )


def test_six_flows_end_to_end_with_parent_links(world: World) -> None:
    results = world.sync()
    assert set(results) == set(FLOWS)
    objects = [r.object for r in results.values()]
    # Parents' objects first: Account, then Contract, then the children.
    assert objects.index("Usage__c") > max(i for i, o in enumerate(objects) if o == "Contract")
    assert min(i for i, o in enumerate(objects) if o == "Contract") > max(i for i, o in enumerate(objects) if o == "Account")
    _assert_every_row_accounted(results)

    sf = world.sf()
    usage = sf.query_all("SELECT UsageKey__c, UsageDate__c, Quantity__c, Contract__r.ContractKey__c FROM Usage__c")
    source = _source_usage(world)
    assert usage["totalSize"] == results["product_usage"].created
    for record in usage["records"]:
        contract_no, usage_date, quantity = source[record["UsageKey__c"]]
        assert record["Contract__r"]["ContractKey__c"] == contract_no
        assert record["UsageDate__c"] == usage_date
        assert record["Quantity__c"] == pytest.approx(quantity)

    costs = sf.query_all("SELECT CostKey__c, Contract__r.ContractKey__c FROM Cost__c")["records"]
    with psycopg.connect(world.erp_url) as conn:
        cost_parent = dict(conn.execute("SELECT cost_no, contract_no FROM erp.cost_lines WHERE cost_no IS NOT NULL"))
    assert costs and all(c["Contract__r"]["ContractKey__c"] == cost_parent[c["CostKey__c"]] for c in costs)

    contracts = sf.query_all("SELECT ContractKey__c, Account.AccountKey__c FROM Contract")["records"]
    assert contracts and all(c["Account"]["AccountKey__c"] for c in contracts)

    # Every planted dirty row is a reject with the expected code, none reached Salesforce.
    rejected = {(r["flow"], r["key"], r["code"]) for r in _rejects(world)}
    usage_keys = {r["UsageKey__c"] for r in usage["records"]}
    for dirty in world.product_seed.dirty + world.erp_seed.dirty:
        if dirty.key is not None:
            assert dirty.key not in usage_keys
        assert any(code == dirty.expected_code and (dirty.key is None or key == dirty.key)
                   for _, key, code in rejected), f"{dirty} not among the rejects"


def _rejects(world: World) -> list[dict]:
    from passwork_assets.state.store import StateStore

    return StateStore(world.state_url).rejects()


KEY_FIELDS = (("Account", "AccountKey__c"), ("Contract", "ContractKey__c"), ("Usage__c", "UsageKey__c"),
              ("Cost__c", "CostKey__c"))


def test_resync_sends_nothing_and_creates_no_duplicates(world: World) -> None:
    world.sync()
    before = {obj: Counter(world.keys_in_salesforce(obj, field)) for obj, field in KEY_FIELDS}
    again = world.sync()
    for name, r in again.items():
        assert r.status == "ok", r.error
        assert (r.changed, r.sent, r.created) == (0, 0, 0), f"{name} sent {r.sent} rows on a no-change re-sync"
    full = world.sync(full=True)
    assert full["product_usage"].sent > 0 and full["product_usage"].created == 0
    for obj, field in KEY_FIELDS:
        after = Counter(world.keys_in_salesforce(obj, field))
        assert after == before[obj]
        assert all(n == 1 for n in after.values()), f"duplicate {field} in {obj}"


def test_one_percent_change_sends_exactly_those_rows(world: World) -> None:
    world.sync()
    with psycopg.connect(world.product_url) as conn:
        total = conn.execute("SELECT count(*) FROM public.usage_events WHERE contract_no IS NOT NULL").fetchone()[0]
        n = max(1, total // 100)
        changed = conn.execute(
            "UPDATE public.usage_events SET quantity = quantity + 1, updated_at = now() "
            "WHERE id IN (SELECT id FROM public.usage_events WHERE contract_no IN "
            "(SELECT contract_no FROM public.contracts) ORDER BY id LIMIT %s) "
            "RETURNING contract_no, usage_date, metric, quantity", (n,)
        ).fetchall()
    results = world.sync(flows=["product_usage"])
    r = results["product_usage"]
    assert r.status == "ok", r.error
    assert (r.changed, r.sent, r.updated, r.created) == (n, n, n, 0)
    sf = world.sf()
    for contract_no, day, metric, quantity in changed:
        key = f"{contract_no}:{day.isoformat()}:{metric}"
        record = sf.query(f"SELECT Quantity__c FROM Usage__c WHERE UsageKey__c = '{key}'")["records"][0]
        assert record["Quantity__c"] == pytest.approx(float(quantity))


def test_orphan_usage_is_held_back_then_syncs_when_its_contract_arrives(world: World) -> None:
    world.sync()
    orphan = [d for d in world.product_seed.dirty if d.problem == "usage for an unknown contract"][0]
    held = [r for r in _rejects(world) if r["key"] == orphan.key]
    assert held and held[0]["code"] == "INVALID_FIELD"
    assert "Foreign key external ID: C-999999 not found" in held[0]["message"]
    assert world.sf().query(f"SELECT Id FROM Usage__c WHERE UsageKey__c = '{orphan.key}'")["totalSize"] == 0

    with psycopg.connect(world.product_url) as conn:
        conn.execute(
            "INSERT INTO public.contracts (id, contract_no, customer_code, plan, status, start_date, term_months, "
            "monthly_fee, updated_at) SELECT 999999, 'C-999999', customer_code, plan, status, start_date, "
            "term_months, monthly_fee, now() FROM public.contracts WHERE status = 'active' LIMIT 1"
        )
    results = world.sync()
    assert results["product_contracts"].created == 1
    assert results["product_usage"].retried_rejects >= 1
    assert world.sf().query(f"SELECT Id FROM Usage__c WHERE UsageKey__c = '{orphan.key}'")["totalSize"] == 1
    assert not [r for r in _rejects(world) if r["key"] == orphan.key]


def test_bulk_path_with_faults_loses_nothing(world: World) -> None:
    # Force Bulk 2.0 for usage, then inject 5xx answers, dropped connections and row locks.
    world.edit_flow("product_usage", bulk_threshold=10)
    world.emulator.operator("faults", method="POST", json={
        "seed": 3, "error_rate": 0.08, "drop_rate": 0.04, "lock_rate": 0.15, "lock_objects": ["Usage__c"],
    })
    results = world.sync()
    world.emulator.operator("faults", method="POST", json={})
    _assert_every_row_accounted(results)
    usage = results["product_usage"]
    assert usage.bulk_job_ids, "usage went through Bulk 2.0"
    keys = Counter(world.keys_in_salesforce("Usage__c", "UsageKey__c"))
    assert all(n == 1 for n in keys.values())
    rejected_keys = {r["key"] for r in _rejects(world) if r["flow"] == "product_usage"}
    # After retries nothing is left locked: each source key is in Salesforce or a reject, never both.
    assert not {r["code"] for r in _rejects(world)} & {"UNABLE_TO_LOCK_ROW", "UNPROCESSED"}
    assert set(_source_usage(world)) <= set(keys) | rejected_keys
    assert not set(keys) & rejected_keys


def test_failed_bulk_job_rows_are_retried_not_lost(world: World) -> None:
    world.edit_flow("product_usage", bulk_threshold=10)
    world.emulator.operator("faults", method="POST", json={"failing_bulk_jobs": 1})
    results = world.sync(flows=["product_accounts", "product_contracts", "product_usage"])
    usage = results["product_usage"]
    assert usage.status == "ok", usage.error
    assert len(usage.bulk_job_ids) >= 2  # the failed job and its retry
    assert usage.extracted == usage.created + usage.rejected


def test_killed_run_then_rerun_equals_source(world: World) -> None:
    """Kill `passwork sync` while it loads, rerun it: Salesforce ends equal to the source, no duplicates."""
    world.edit_flow("product_usage", bulk_threshold=10)
    world.emulator.operator("faults", method="POST", json={"latency_ms": 150})
    env = dict(os.environ, PASSWORK_CHUNK_ROWS="40")  # many chunks: the kill lands between cursor moves
    proc = subprocess.Popen([sys.executable, "-m", "passwork_assets.cli", "sync", "--mappings",
                             str(world.mappings_dir)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if world.sf().query("SELECT COUNT() FROM Usage__c")["totalSize"] > 0:
            break
        time.sleep(0.1)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    world.emulator.operator("faults", method="POST", json={})

    results = world.sync()
    _assert_no_loss_after_rerun(world, results)


def _assert_no_loss_after_rerun(world: World, results: dict) -> None:
    for r in results.values():
        assert r.status == "ok", r.error
    keys = Counter(world.keys_in_salesforce("Usage__c", "UsageKey__c"))
    assert all(n == 1 for n in keys.values())
    rejected = {r["key"] for r in _rejects(world) if r["flow"] == "product_usage"}
    assert set(_source_usage(world)) <= set(keys) | rejected
    accounts = Counter(world.keys_in_salesforce("Account", "AccountKey__c"))
    assert all(n == 1 for n in accounts.values())


@pytest.mark.dates
def test_dates_survive_any_local_timezone(world: World) -> None:
    """Usage dates and contract start dates reach Salesforce as the same calendar day, whatever TZ is."""
    world.sync(flows=["product_accounts", "product_contracts", "product_usage"])
    source = _source_usage(world)
    records = world.sf().query_all("SELECT UsageKey__c, UsageDate__c FROM Usage__c")["records"]
    assert records
    assert all(r["UsageDate__c"] == source[r["UsageKey__c"]][1] for r in records)
    with psycopg.connect(world.product_url) as conn:
        starts = dict(conn.execute("SELECT contract_no, start_date FROM public.contracts"))
    for c in world.sf().query_all("SELECT ContractKey__c, StartDate FROM Contract")["records"]:
        assert c["StartDate"] == starts[c["ContractKey__c"]].isoformat()


def test_dry_run_writes_nothing(world: World) -> None:
    results = world.sync(dry_run=True)
    assert results["product_usage"].changed > 0
    assert all(r.sent == 0 and r.dry_run for r in results.values())
    assert world.sf().query("SELECT COUNT() FROM Usage__c")["totalSize"] == 0
    assert _rejects(world) == []


def test_field_owner_wins_whatever_the_run_order(world: World) -> None:
    """ERP owns Account.Name (mappings/ownership.yaml): the product fills it only where the ERP has not."""
    with psycopg.connect(world.erp_url) as conn:
        erp_names = dict(conn.execute(
            "SELECT account_key, partner_name FROM erp.business_partners "
            "WHERE partner_type = 'customer' AND account_key IS NOT NULL"))
    with psycopg.connect(world.product_url) as conn:
        product_names = dict(conn.execute(
            "SELECT customer_code, name FROM public.customers WHERE customer_code IS NOT NULL"))
        shared = sorted(set(erp_names) & set(product_names))
        assert shared, "the sample data shares accounts between the product and the ERP"
        # Make the two sources disagree on every shared account.
        conn.execute("UPDATE public.customers SET name = name || '（製品DB）', updated_at = now() "
                     "WHERE customer_code = ANY(%s)", (shared,))

    world.sync(flows=["product_accounts"])  # the product first: it fills Name everywhere
    world.sync(flows=["erp_partners"])      # the owner overwrites it
    with psycopg.connect(world.product_url) as conn:
        conn.execute("UPDATE public.customers SET name = name || '改', updated_at = now() "
                     "WHERE customer_code = ANY(%s)", (shared,))
    again = world.sync(flows=["product_accounts"])["product_accounts"]
    assert again.status == "ok" and again.sent >= len(shared)  # other fields still flow

    names = {r["AccountKey__c"]: r["Name"] for r in
             world.sf().query_all("SELECT AccountKey__c, Name FROM Account")["records"]}
    for key in shared:
        assert names[key] == erp_names[key]
    product_only = [k for k in product_names if k not in erp_names and k in names]
    assert product_only and all(names[k] == product_names[k] for k in product_only)


def test_many_chunks_with_bulk_jobs_account_for_every_row(world: World) -> None:
    """Small chunks: each chunk's Bulk job is awaited while the next chunk is prepared; nothing is lost,
    the cursor ends at the last row, and a re-sync sends nothing."""
    world.chunk_rows = 40
    world.edit_flow("product_usage", bulk_threshold=5)
    world.emulator.operator("faults", method="POST", json={"seed": 11, "lock_rate": 0.1, "lock_objects": ["Usage__c"]})
    results = world.sync()
    world.emulator.operator("faults", method="POST", json={})
    _assert_every_row_accounted(results)
    usage = results["product_usage"]
    assert usage.extracted > 3 * world.chunk_rows and len(usage.bulk_job_ids) > 3
    keys = Counter(world.keys_in_salesforce("Usage__c", "UsageKey__c"))
    assert all(n == 1 for n in keys.values())
    rejected = {r["key"] for r in _rejects(world) if r["flow"] == "product_usage"}
    assert set(_source_usage(world)) <= set(keys) | rejected
    with psycopg.connect(world.product_url) as conn:
        newest = conn.execute("SELECT max(updated_at) FROM public.usage_events").fetchone()[0]
    from passwork_assets.state.store import StateStore

    assert StateStore(world.state_url).get_cursor("product_usage") == newest.isoformat()
    again = world.sync(flows=["product_usage"])["product_usage"]
    assert (again.extracted, again.sent) == (0, 0)
