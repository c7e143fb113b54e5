"""A restarted emulator serves the same org, trusts the same CA, and expires sessions on time."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from simple_salesforce import Salesforce

from salesforce_emulator.testing import EmulatorProcess

pytestmark = pytest.mark.integration


def test_restart_keeps_the_org(tmp_path: Path) -> None:
    process = EmulatorProcess(tmp_path).start()
    try:
        sf = process.salesforce()
        account = sf.Account.create({"Name": "永続", "AccountKey__c": "A-1"})["id"]
        sf.Contract.upsert("ContractKey__c/C-1", {"Account": {"AccountKey__c": "A-1"}})
        ca = Path(process.ca_cert).read_bytes()
    finally:
        process.stop()
    assert not (tmp_path / "connection.json").exists()
    process = EmulatorProcess(tmp_path).start()
    try:
        assert Path(process.ca_cert).read_bytes() == ca
        sf = process.salesforce()
        assert sf.Account.get(account)["Name"] == "永続"
        contract = sf.Contract.get_by_custom_id("ContractKey__c", "C-1")
        assert contract["AccountId"] == account
        # New Ids continue after the stored ones.
        second = sf.Account.create({"Name": "Second"})["id"]
        assert second > account
    finally:
        process.stop()


def test_sessions_expire_after_the_configured_time(tmp_path: Path) -> None:
    process = EmulatorProcess(tmp_path, extra_args=["--session-seconds", "1"]).start()
    try:
        conn = process.connection
        sf = Salesforce(username=conn["username"], password=conn["password"], security_token=conn["security_token"],
                        domain=process.login_domain, session=process.requests_session())
        first = sf.session_id
        sf.Account.create({"Name": "before"})
        time.sleep(1.2)
        sf.Account.create({"Name": "after"})  # 401, then a new login and a retry
        assert sf.session_id != first
    finally:
        process.stop()
