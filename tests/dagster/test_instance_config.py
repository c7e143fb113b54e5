"""dagster.yaml is a valid instance configuration on the embedded PostgreSQL (dagster-postgres storage)."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_instance_storage_and_pools_from_dagster_yaml(postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = postgres.create_database("dagster_instance_test", drop_existing=True)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_URL", url.replace("postgresql://", "postgresql+psycopg2://", 1))
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        # A run's events go through the PostgreSQL event log (NOTIFY included) without error.
        run = instance.create_run_for_job(dg.GraphDefinition("empty").to_job())
        instance.report_engine_event("stored in PostgreSQL", run)
        assert any(r.message == "stored in PostgreSQL" for r in instance.all_logs(run.run_id))
