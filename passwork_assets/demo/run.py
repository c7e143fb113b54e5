"""`passwork demo [--once]`: the whole product on one machine, started by one command.

Starts an embedded PostgreSQL server with four databases (product, erp, passwork state, Dagster storage),
seeds the product and ERP databases at the demo's size (Japanese names, a few dirty rows that show rejects),
starts the Salesforce emulator over HTTPS, points every Passwork and Dagster variable at them, then either runs
`dagster dev` on 127.0.0.1:3000 (webserver and daemon) or, with `once`, materializes every asset once headless,
prints a summary and exits.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DEMO_ACCOUNTS = 200
DEMO_CONTRACTS_PER_ACCOUNT = 2
DEMO_USAGE_DAYS = 365
DEMO_HOME = Path(".passwork") / "demo"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
"""The repository root, where workspace.yaml names the code location `passwork`."""
WEBSERVER_HOST = "127.0.0.1"
WEBSERVER_PORT = 3000


@dataclass(frozen=True)
class DemoServices:
    """Where the demo's services listen, as environment variables for Passwork and Dagster."""

    environment: dict[str, str]
    dagster_home: Path


@contextmanager
def demo_services(home: Path) -> Iterator[DemoServices]:
    """Start PostgreSQL (seeded) and the emulator; stop both when the block ends."""
    from passwork_assets.demo.embedded_postgres import EmbeddedPostgres
    from passwork_assets.demo.sample_data import seed_erp, seed_product
    from salesforce_emulator.testing import EmulatorProcess

    home.mkdir(parents=True, exist_ok=True)
    postgres = EmbeddedPostgres(home / "postgres").start()
    emulator = None
    try:
        urls = {name: postgres.create_database(name, drop_existing=True)
                for name in ("product", "erp", "passwork_state", "dagster")}
        print(f"seeding the product and ERP databases ({DEMO_ACCOUNTS} accounts, "
              f"{DEMO_ACCOUNTS * DEMO_CONTRACTS_PER_ACCOUNT} contracts, {DEMO_USAGE_DAYS} days of usage)...", flush=True)
        seed_product(urls["product"], accounts=DEMO_ACCOUNTS, contracts_per_account=DEMO_CONTRACTS_PER_ACCOUNT,
                     usage_days=DEMO_USAGE_DAYS)
        seed_erp(urls["erp"], accounts=DEMO_ACCOUNTS, contracts_per_account=DEMO_CONTRACTS_PER_ACCOUNT)
        emulator_dir = home / "emulator"
        shutil.rmtree(emulator_dir, ignore_errors=True)  # a fresh org for a fresh demo
        emulator = EmulatorProcess(data_dir=emulator_dir).start()
        connection = emulator.connection
        dagster_home = home / "dagster_home"
        dagster_home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(__file__).resolve().parents[2] / "dagster.yaml", dagster_home / "dagster.yaml")
        environment = {
            "PRODUCT_DATABASE_URL": urls["product"],
            "ERP_DATABASE_URL": urls["erp"],
            "PASSWORK_STATE_URL": urls["passwork_state"],
            # dagster-postgres runs on psycopg2; SQLAlchemy's plain postgresql:// would pick psycopg 3.
            "DAGSTER_PG_URL": urls["dagster"].replace("postgresql://", "postgresql+psycopg2://", 1),
            "DAGSTER_HOME": str(dagster_home.resolve()),
            "SALESFORCE_INSTANCE_URL": emulator.instance_url,
            "SALESFORCE_ACCESS_TOKEN": connection["access_token"],
            "SALESFORCE_CA_BUNDLE": emulator.ca_cert,
            "SALESFORCE_API_VERSION": str(connection["api_version"]),
        }
        yield DemoServices(environment=environment, dagster_home=dagster_home)
    finally:
        if emulator is not None:
            emulator.stop()
        postgres.stop()


def _materialize_everything() -> int:
    """Observe the sources, then materialize every asset and run every check once; print a summary."""
    import warnings

    import dagster as dg

    from passwork_assets.definitions import defs as build_defs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        defs = build_defs()
    graph = defs.resolve_asset_graph()
    instance = dg.DagsterInstance.get()
    job = defs.resolve_implicit_global_asset_job_def()
    observed = job.execute_in_process(instance=instance, raise_on_error=False,
                                      asset_selection=list(graph.observable_asset_keys))
    print("\nPasswork demo: the source tables observed")
    for event in observed.all_events:
        if event.event_type_value == "ASSET_OBSERVATION" and event.asset_key is not None:
            rows = event.event_specific_data.asset_observation.metadata.get("dagster/row_count")  # type: ignore[union-attr]
            print(f"  observed     {event.asset_key.to_user_string():40s} rows {rows.value if rows else '?'}")
    result = job.execute_in_process(instance=instance, raise_on_error=False,
                                    asset_selection=list(graph.materializable_asset_keys))
    print("\nPasswork demo: one run of every asset")
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        assert mat is not None
        meta = mat.metadata
        figures = ", ".join(f"{name.removeprefix('rows_')} {meta[name].value}" for name in
                            ("rows_extracted", "rows_sent", "rows_created", "rows_updated", "rows_rejected")
                            if name in meta)
        print(f"  materialized {mat.asset_key.to_user_string():40s} {figures}")
    for evaluation in result.get_asset_check_evaluations():
        state = "passed" if evaluation.passed else f"FAILED ({evaluation.severity.value})"
        print(f"  check {evaluation.asset_check_key.to_user_string():60s} {state}")
    failed_steps = [e.step_key for e in result.all_events if e.is_step_failure]
    for step in failed_steps:
        print(f"  step FAILED: {step}")
    print(f"run {result.run_id}: {'success' if result.success else 'failure'}")
    return 0 if result.success and observed.success else 1


def _create_pool_limits() -> None:
    """Create every op pool's concurrency limit in the fresh Dagster storage before the daemon starts runs.

    On its first tick every sensor requests a run, and those runs start together. A run that is first to use a
    pool inserts the pool's limit row; with PostgreSQL storage, a run that loses that race retries with an
    UPDATE inside the aborted transaction and fails (InFailedSqlTransaction). Rows created here up front leave
    nothing to race for.
    """
    import warnings

    import dagster as dg

    from passwork_assets.definitions import defs as build_defs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        defs = build_defs()
    pools = {assets_def.node_def.pool for assets_def in defs.resolve_asset_graph().assets_defs
             if assets_def.is_executable and isinstance(assets_def.node_def, dg.OpDefinition)}
    with dg.DagsterInstance.get() as instance:
        existing = instance.event_log_storage.get_concurrency_keys()
        for pool in sorted(p for p in pools if p and p not in existing):
            instance.event_log_storage.initialize_concurrency_limit_to_default(pool)


def run_demo(once: bool) -> int:
    """Run the demo; returns the process exit code (0 on success)."""
    home = Path(os.environ.get("PASSWORK_DEMO_HOME", DEMO_HOME)).resolve()
    with demo_services(home) as services:
        os.environ.update(services.environment)
        if once:
            return _materialize_everything()
        _create_pool_limits()
        print(f"\nDagster UI:        http://{WEBSERVER_HOST}:{WEBSERVER_PORT}")
        print(f"Asset graph:       http://{WEBSERVER_HOST}:{WEBSERVER_PORT}/asset-groups")
        print(f"Salesforce (emu):  {services.environment['SALESFORCE_INSTANCE_URL']}")
        print(f"Demo data folder:  {home}\nPress Ctrl+C to stop.\n", flush=True)
        command = [sys.executable, "-m", "dagster", "dev", "-h", WEBSERVER_HOST, "-p", str(WEBSERVER_PORT),
                   "-w", str(PROJECT_ROOT / "workspace.yaml")]
        process = subprocess.Popen(command, env=os.environ.copy())
        try:
            return process.wait()
        except KeyboardInterrupt:
            process.terminate()
            return process.wait()

