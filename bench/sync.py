"""Sync benchmark: 1,000,000 usage rows from PostgreSQL to the emulator, Passwork versus a plain script.

Phases, each in its own process so that peak memory (ru_maxrss) is the phase's own:
- Passwork full sync of product_usage (parents synced first, untimed);
- Passwork no-change re-sync;
- Passwork re-sync after 1% of the usage rows changed;
- the straightforward script: psycopg fetchall, dicts, `sf.bulk2.Usage__c.upsert(records=...)`, run twice
  (it has no state, so a re-sync resends everything).

`python -m bench sync [--rows N]` prints one table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
METRICS = 3


def _scale(rows: int) -> dict[str, int]:
    accounts = 200
    contracts_per_account = 5
    # About 90% of the sample contracts exist in the product database (the rest are ERP-only).
    days = max(1, -(-rows // int(accounts * contracts_per_account * METRICS * 0.9)))
    return {"accounts": accounts, "contracts_per_account": contracts_per_account, "usage_days": days}


def _phase_passwork(args: argparse.Namespace) -> dict[str, Any]:
    from passwork_assets.mapping.loader import load_mappings
    from passwork_assets.sync.engine import run_flows
    from passwork_assets.sync.settings import SyncSettings

    settings = SyncSettings.from_env(bulk_poll_s=0.5)
    mappings = load_mappings(REPO / "mappings")
    started = time.perf_counter()
    results = run_flows(mappings, flows=args.flows.split(","), full=args.full, settings=settings)
    elapsed = time.perf_counter() - started
    usage = next(r for r in results if r.flow == args.flows.split(",")[-1])
    failed = [r.error for r in results if r.status != "ok"]
    return {"seconds": elapsed, "api_calls": sum(r.api_calls_used for r in results), "sent": usage.sent,
            "created": usage.created, "updated": usage.updated, "rejected": usage.rejected,
            "extracted": usage.extracted, "failed": failed}


def _phase_script(args: argparse.Namespace) -> dict[str, Any]:
    """What a straightforward script does: read everything, upsert everything through Bulk 2.0."""
    import psycopg
    import requests
    from simple_salesforce import Salesforce

    env = os.environ
    session = requests.Session()
    session.verify = env["SALESFORCE_CA_BUNDLE"]
    session.trust_env = False
    calls = {"n": 0}
    session.hooks["response"].append(lambda r, *a, **k: calls.__setitem__("n", calls["n"] + 1))
    sf = Salesforce(instance_url=env["SALESFORCE_INSTANCE_URL"], session_id=env["SALESFORCE_ACCESS_TOKEN"],
                    version=env["SALESFORCE_API_VERSION"], session=session)
    started = time.perf_counter()
    with psycopg.connect(env["PRODUCT_DATABASE_URL"]) as conn:
        rows = conn.execute("SELECT contract_no, usage_date, metric, quantity, unit_price FROM public.usage_events "
                            "WHERE contract_no IS NOT NULL").fetchall()
    records = [
        {"UsageKey__c": f"{c}:{d.isoformat()}:{m}", "Contract__r.ContractKey__c": c, "UsageDate__c": d.isoformat(),
         "Metric__c": m, "Quantity__c": str(q), "Amount__c": "" if p is None else str(q * p)}
        for c, d, m, q, p in rows
    ]
    results = sf.bulk2.Usage__c.upsert(records=records, external_id_field="UsageKey__c", wait=1)
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "api_calls": calls["n"], "sent": len(records),
            "failed_rows": sum(int(r["numberRecordsFailed"]) for r in results)}


def _run_phase(kind: str, env: dict[str, str], *extra: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "bench.sync", "--phase", kind, *extra], env=env, cwd=REPO,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"phase {kind} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench sync", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--phase", choices=["passwork", "script"], help=argparse.SUPPRESS)
    parser.add_argument("--flows", default="product_usage", help=argparse.SUPPRESS)
    parser.add_argument("--full", action="store_true", help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args(argv)
    if args.phase:
        result = _phase_passwork(args) if args.phase == "passwork" else _phase_script(args)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return 0
    return _orchestrate(args.rows)


def _orchestrate(rows: int) -> int:
    import psycopg

    from passwork_assets.demo.embedded_postgres import EmbeddedPostgres
    from passwork_assets.demo.sample_data import seed_product
    from salesforce_emulator.testing import EmulatorProcess

    work = Path(tempfile.mkdtemp(prefix="passwork-bench-"))
    pg = EmbeddedPostgres(work / "pg").start()
    emulator = EmulatorProcess(data_dir=work / "emulator", extra_args=["--api-limit", "100000000"]).start()
    try:
        product = pg.create_database("product")
        scale = _scale(rows)
        t = time.perf_counter()
        seeded = seed_product(product, dirty=False, seed=1, **scale)
        n_rows = seeded.rows["public.usage_events"]
        print(f"seeded {n_rows:,} usage rows in {time.perf_counter() - t:.1f}s", flush=True)
        c = emulator.connection
        base_env = dict(os.environ, PRODUCT_DATABASE_URL=product, ERP_DATABASE_URL=product,
                        SALESFORCE_INSTANCE_URL=c["instance_url"], SALESFORCE_ACCESS_TOKEN=c["access_token"],
                        SALESFORCE_CA_BUNDLE=c["ca_cert"], SALESFORCE_API_VERSION=c["api_version"],
                        PASSWORK_API_RESERVE="0")

        def fresh_state(name: str) -> dict[str, str]:
            return dict(base_env, PASSWORK_STATE_URL=pg.create_database(name, drop_existing=True))

        # The plain script, on an org that has the parents already.
        emulator.reset()
        env = fresh_state("state_script")
        _run_phase("passwork", env, "--flows", "product_accounts,product_contracts")
        script_full = _run_phase("script", env)
        print(f"script full sync: {script_full['seconds']:.1f}s", flush=True)
        script_again = _run_phase("script", env)

        # Passwork, on a fresh org and state.
        emulator.reset()
        env = fresh_state("state_passwork")
        _run_phase("passwork", env, "--flows", "product_accounts,product_contracts")
        full = _run_phase("passwork", env, "--flows", "product_usage")
        print(f"passwork full sync: {full['seconds']:.1f}s", flush=True)
        again = _run_phase("passwork", env, "--flows", "product_usage")
        changed = max(1, n_rows // 100)
        with psycopg.connect(product) as conn:
            conn.execute("UPDATE public.usage_events SET quantity = quantity + 1, updated_at = now() "
                         "WHERE id IN (SELECT id FROM public.usage_events ORDER BY random() LIMIT %s)", (changed,))
        one_pct = _run_phase("passwork", env, "--flows", "product_usage")

        table = [
            ("full sync", full, script_full),
            ("no-change re-sync", again, script_again),
            ("1% change re-sync", one_pct, None),
        ]
        print(f"\nSync of {n_rows:,} Usage__c rows (2 cores; emulator over HTTPS on loopback)")
        print(f"{'phase':<20}{'passwork s':>11}{'rows sent':>11}{'API calls':>10}{'peak MB':>9}"
              f"{'script s':>10}{'script sent':>12}{'script API':>11}{'script MB':>10}")
        for name, p, s in table:
            s = s or script_again
            print(f"{name:<20}{p['seconds']:>11.1f}{p['sent']:>11,}{p['api_calls']:>10}{p['peak_rss_mb']:>9.0f}"
                  f"{s['seconds']:>10.1f}{s['sent']:>12,}{s['api_calls']:>11}{s['peak_rss_mb']:>10.0f}")
        print(f"\nfull sync: passwork {full['seconds'] / script_full['seconds']:.2f}x the script's time; "
              f"1% change: {one_pct['sent']:,} rows sent (expected {changed:,}), "
              f"{one_pct['seconds'] / script_again['seconds']:.2f}x the script's time")
        problems = [p["failed"] for p in (full, again, one_pct) if p["failed"]]
        if problems or one_pct["sent"] != changed or again["sent"] != 0:
            print(f"UNEXPECTED: {problems or ''} sent on re-sync={again['sent']}, on 1%={one_pct['sent']}")
            return 1
        return 0
    finally:
        emulator.stop()
        pg.destroy()


if __name__ == "__main__":
    sys.exit(main())
