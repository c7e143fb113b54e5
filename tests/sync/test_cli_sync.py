"""`passwork sync | rejects | validate` run as a user runs them: a subprocess with environment variables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
import yaml

if TYPE_CHECKING:
    from conftest import World

pytestmark = pytest.mark.integration


def passwork(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "passwork_assets.cli", *args], capture_output=True, text=True,
                          env=env or dict(os.environ), timeout=300)


def _no_secret_in(world: World, *outputs: str) -> None:
    secrets = [world.emulator.connection[k] for k in ("access_token", "password", "consumer_secret")]
    for out in outputs:
        for secret in secrets:
            assert secret not in out


def test_sync_json_then_rejects(world: World) -> None:
    done = passwork("sync", "--mappings", str(world.mappings_dir), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True
    usage = next(f for f in report["flows"] if f["flow"] == "product_usage")
    assert usage["extracted"] == usage["created"] + usage["rejected"] and usage["rejected"] >= 3
    assert "usage_events" in usage["sql"] and usage["api_calls_used"] > 0
    listed = passwork("rejects", "--flow", "product_usage")
    assert listed.returncode == 0
    assert "Foreign key external ID: C-999999 not found" in listed.stdout
    assert "DUPLICATE_EXTERNAL_ID" in listed.stdout and "MISSING_EXTERNAL_ID" in listed.stdout
    _no_secret_in(world, done.stdout, done.stderr, listed.stdout, listed.stderr)


def test_sync_table_and_dry_run(world: World) -> None:
    dry = passwork("sync", "--mappings", str(world.mappings_dir), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "(dry run)" in dry.stdout and "product_usage" in dry.stdout
    assert world.sf().query("SELECT COUNT() FROM Account")["totalSize"] == 0


def test_sync_stops_before_the_api_reserve(world: World) -> None:
    state = world.emulator.operator("limits")
    # Room for a few calls above the reserve: the run starts, then must stop before going under it.
    world.emulator.operator("limits", method="POST", json={"api_limit": state["api_used"] + 1005})
    env = dict(os.environ, PASSWORK_API_RESERVE="1000")
    done = passwork("sync", "--mappings", str(world.mappings_dir), env=env)
    world.emulator.operator("limits", method="POST", json={"api_limit": 1_000_000})
    assert done.returncode == 1
    assert "stopped before sending" in done.stderr and "PASSWORK_API_RESERVE" in done.stderr
    assert "Traceback" not in done.stderr
    # The budget ran out part-way: whatever was not sent is not claimed as synced.
    report = passwork("sync", "--mappings", str(world.mappings_dir), "--json")
    assert report.returncode == 0, report.stderr
    flows = json.loads(report.stdout)["flows"]
    assert all(f["status"] == "ok" for f in flows)
    assert world.sf().query("SELECT COUNT() FROM Usage__c")["totalSize"] > 0


def test_unreachable_source_database_is_a_clear_failure(world: World) -> None:
    env = dict(os.environ, PRODUCT_DATABASE_URL="postgresql://reader:s3cr3t-pw@127.0.0.1:1/product")
    done = passwork("sync", "--mappings", str(world.mappings_dir), "--flow", "product_accounts", env=env)
    assert done.returncode == 1
    assert "product_accounts" in done.stderr and "127.0.0.1" in done.stderr
    assert "s3cr3t-pw" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_missing_salesforce_settings_name_the_variables(world: World) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESFORCE_")}
    done = passwork("sync", "--mappings", str(world.mappings_dir), env=env)
    assert done.returncode == 2
    assert "SALESFORCE_INSTANCE_URL" in done.stderr and "Traceback" not in done.stderr


def test_wrong_password_login_says_so_without_the_password(world: World) -> None:
    c = world.emulator.connection
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESFORCE_")}
    env.update(SALESFORCE_USERNAME=c["username"], SALESFORCE_PASSWORD="not-the-password-42",
               SALESFORCE_SECURITY_TOKEN=c["security_token"], SALESFORCE_DOMAIN=c["domain"],
               SALESFORCE_CA_BUNDLE=c["ca_cert"])
    done = passwork("sync", "--mappings", str(world.mappings_dir), env=env)
    assert done.returncode == 2
    assert "INVALID_LOGIN" in done.stderr
    assert "not-the-password-42" not in done.stderr + done.stdout


def test_password_login_flow_syncs(world: World) -> None:
    c = world.emulator.connection
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESFORCE_")}
    env.update(SALESFORCE_USERNAME=c["username"], SALESFORCE_PASSWORD=c["password"],
               SALESFORCE_SECURITY_TOKEN=c["security_token"], SALESFORCE_DOMAIN=c["domain"],
               SALESFORCE_CA_BUNDLE=c["ca_cert"])
    done = passwork("sync", "--mappings", str(world.mappings_dir), "--flow", "product_accounts", env=env)
    assert done.returncode == 0, done.stderr
    assert world.sf().query("SELECT COUNT() FROM Account")["totalSize"] > 0


def test_validate_accepts_the_shipped_mappings(world: World) -> None:
    done = passwork("validate", "--mappings", str(world.mappings_dir))
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stdout


def test_validate_names_file_line_and_the_right_fields(world: World) -> None:
    world.edit_flow("product_usage", external_id="Metric__c")
    done = passwork("validate", "--mappings", str(world.mappings_dir))
    assert done.returncode == 1
    line = next(l for l in done.stderr.splitlines() if "Metric__c" in l)
    assert "product_usage.yaml:" in line
    assert "External ID" in line and "UsageKey__c" in line


def test_suggest_drafts_a_mapping_with_external_ids_first(world: World) -> None:
    done = passwork("suggest", "--mappings", str(world.mappings_dir), "--connection", "product",
                    "--table", "public.usage_events", "--object", "Usage__c")
    assert done.returncode == 0, done.stderr
    draft = yaml.safe_load(done.stdout)
    assert draft["target"]["object"] == "Usage__c"
    assert draft["target"]["external_id"] == "UsageKey__c"
    assert draft["source"]["table"] == "public.usage_events"
    # The parent link goes through the Contract's External ID, never its Salesforce Id.
    assert any(k.startswith("Contract__r.ContractKey__c") for k in draft["fields"])
    unknown = passwork("suggest", "--mappings", str(world.mappings_dir), "--connection", "nowhere",
                       "--table", "t", "--object", "Usage__c")
    assert unknown.returncode == 2 and "connections: erp, product" in unknown.stderr
