"""A seeded product + ERP world, a state database and the emulator, wired through environment variables."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from passwork_assets.demo.embedded_postgres import EmbeddedPostgres
from passwork_assets.demo.sample_data import SeedSummary, seed_erp, seed_product
from passwork_assets.mapping.loader import load_mappings
from passwork_assets.sync.engine import run_flows
from passwork_assets.sync.results import FlowRunResult
from passwork_assets.sync.settings import SyncSettings

REPO = Path(__file__).resolve().parents[2]
SCALE = {"accounts": 6, "contracts_per_account": 2, "seed": 7}


@dataclass
class World:
    """Everything one sync test needs; `sync()` runs flows the way `passwork sync` does."""

    product_url: str
    erp_url: str
    state_url: str
    mappings_dir: Path
    emulator: Any
    product_seed: SeedSummary
    erp_seed: SeedSummary

    chunk_rows: int = 200_000

    @property
    def settings(self) -> SyncSettings:
        return SyncSettings(state_url=self.state_url, bulk_poll_s=0.1, retry_base_delay_s=0.02, lock_retries=6,
                            chunk_rows=self.chunk_rows)

    def sync(self, **kwargs: Any) -> dict[str, FlowRunResult]:
        results = run_flows(load_mappings(self.mappings_dir), settings=self.settings, **kwargs)
        return {r.flow: r for r in results}

    def edit_flow(self, name: str, **target: Any) -> None:
        """Change keys of a flow's `target:` section in this world's copy of the mappings."""
        path = self.mappings_dir / f"{name}.yaml"
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        doc["target"].update(target)
        path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")

    def sf(self) -> Any:
        return self.emulator.salesforce()

    def keys_in_salesforce(self, obj: str, field: str) -> list[str]:
        return [r[field] for r in self.sf().query_all(f"SELECT {field} FROM {obj}")["records"]]


@pytest.fixture
def world(postgres: EmbeddedPostgres, emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          ) -> Iterator[World]:
    """A fresh, seeded world and an empty org; environment variables as a user would set them."""
    tag = uuid.uuid4().hex[:8]
    product_url = postgres.create_database(f"product_{tag}")
    erp_url = postgres.create_database(f"erp_{tag}")
    state_url = postgres.create_database(f"state_{tag}")
    product_seed = seed_product(product_url, usage_days=4, **SCALE)
    erp_seed = seed_erp(erp_url, **SCALE)
    mappings_dir = tmp_path / "mappings"
    shutil.copytree(REPO / "mappings", mappings_dir)
    emulator.reset()
    # Other tests share this emulator and may have lowered its daily limit: give each world a fresh budget.
    emulator.operator("limits", method="POST", json={"api_limit": 1_000_000, "api_used": 0})
    connection = emulator.connection
    monkeypatch.setenv("PRODUCT_DATABASE_URL", product_url)
    monkeypatch.setenv("ERP_DATABASE_URL", erp_url)
    monkeypatch.setenv("PASSWORK_STATE_URL", state_url)
    monkeypatch.setenv("SALESFORCE_INSTANCE_URL", connection["instance_url"])
    monkeypatch.setenv("SALESFORCE_ACCESS_TOKEN", connection["access_token"])
    monkeypatch.setenv("SALESFORCE_CA_BUNDLE", connection["ca_cert"])
    monkeypatch.setenv("SALESFORCE_API_VERSION", connection["api_version"])
    for name in ("SALESFORCE_USERNAME", "SALESFORCE_PASSWORD", "SALESFORCE_SECURITY_TOKEN",
                 "SALESFORCE_CONSUMER_KEY", "SALESFORCE_CONSUMER_SECRET", "SALESFORCE_DOMAIN"):
        monkeypatch.delenv(name, raising=False)
    yield World(product_url, erp_url, state_url, mappings_dir, emulator, product_seed, erp_seed)
    emulator.operator("faults", method="POST", json={})
