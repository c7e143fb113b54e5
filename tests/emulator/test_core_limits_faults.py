"""API budget, /limits, operator counters, and fault injection (deterministic under a seed)."""

from __future__ import annotations

import pytest
import requests
from simple_salesforce.exceptions import SalesforceGeneralError, SalesforceRefusedRequest

pytestmark = pytest.mark.integration


@pytest.fixture
def sf(emulator):
    emulator.reset()
    yield emulator.salesforce()
    emulator.reset()


def test_every_call_is_counted_and_reported(sf, emulator) -> None:
    sf.Account.create({"Name": "A"})
    sf.describe()
    assert sf.api_usage["api-usage"].used == 2
    limits = sf.limits()
    assert limits["DailyApiRequests"] == {"Max": 15000, "Remaining": 15000 - 3}
    for name in ("DailyBulkApiBatches", "DailyBulkV2QueryJobs", "DailyBulkV2QueryFileStorageMB"):
        assert set(limits[name]) == {"Max", "Remaining"}
    assert list(limits) == sorted(limits)
    calls = emulator.operator("api-calls")
    assert calls["total"] == 3
    assert calls["by_endpoint"] == {"GET /limits/": 1, "GET /sobjects": 1, "POST /sobjects/Account/": 1}


def test_operator_calls_are_not_counted(sf, emulator) -> None:
    emulator.operator("records/Account")
    emulator.operator("api-calls")
    assert emulator.operator("api-calls")["total"] == 0


def test_request_limit_exceeded(sf, emulator) -> None:
    emulator.operator("limits", method="POST", json={"api_limit": 100, "api_used": 99})
    sf.describe()
    assert sf.api_usage["api-usage"].used == 100 and sf.api_usage["api-usage"].total == 100
    with pytest.raises(SalesforceRefusedRequest) as failure:
        sf.Account.create({"Name": "one too many"})
    assert failure.value.status == 403
    assert failure.value.content == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]


def test_record_count(sf) -> None:
    sf.Account.create({"Name": "A"})
    assert sf.restful("limits/recordCount", params={"sObjects": "Account,Contract"}) == {
        "sObjects": [{"count": 1, "name": "Account"}, {"count": 0, "name": "Contract"}]}


def test_server_errors(sf, emulator) -> None:
    emulator.operator("faults", method="POST", json={"error_rate": 1.0, "error_statuses": [503]})
    with pytest.raises(SalesforceGeneralError) as failure:
        sf.Account.create({"Name": "A"})
    assert failure.value.status == 503
    assert failure.value.content[0]["errorCode"] == "SERVER_UNAVAILABLE"


def test_dropped_connections(sf, emulator) -> None:
    emulator.operator("faults", method="POST", json={"drop_rate": 1.0})
    with pytest.raises(requests.exceptions.RequestException):
        sf.Account.create({"Name": "A"})


def _fault_pattern(sf, emulator, seed: int) -> list[int]:
    emulator.operator("faults", method="POST", json={"seed": seed, "error_rate": 0.5})
    pattern = []
    for _ in range(16):
        try:
            sf.describe()
            pattern.append(200)
        except SalesforceGeneralError as failure:
            pattern.append(failure.status)
    return pattern


def test_faults_are_deterministic_under_a_seed(sf, emulator) -> None:
    first = _fault_pattern(sf, emulator, seed=7)
    assert _fault_pattern(sf, emulator, seed=7) == first
    assert 200 in first and any(status >= 500 for status in first)
    assert _fault_pattern(sf, emulator, seed=8) != first


def test_unable_to_lock_row_on_a_share_of_records(sf, emulator) -> None:
    emulator.operator("faults", method="POST", json={"seed": 1, "lock_rate": 0.5, "lock_objects": ["Account"]})
    records = [{"attributes": {"type": "Account"}, "Name": f"A{i}", "AccountKey__c": f"K{i}"} for i in range(40)]
    results = sf.restful("composite/sobjects/Account/AccountKey__c", method="PATCH", json={"records": records})
    locked = [r for r in results if not r["success"]]
    assert 0 < len(locked) < 40
    assert locked[0]["errors"] == [{"statusCode": "UNABLE_TO_LOCK_ROW",
                                    "message": "unable to obtain exclusive access to this record", "fields": []}]
    assert len(emulator.operator("records/Account")) == 40 - len(locked)


def test_bulk_job_failures_are_counted_down(sf, emulator) -> None:
    state = emulator.operator("faults", method="POST", json={"failing_bulk_jobs": 2})
    assert state["failing_bulk_jobs_left"] == 2


def test_bad_fault_settings_are_refused(emulator) -> None:
    with pytest.raises(Exception, match="error_rate: Input should be less than or equal to 1"):
        emulator.operator("faults", method="POST", json={"error_rate": 2})


def test_reset_restores_the_configured_daily_limit(sf, emulator) -> None:
    emulator.operator("limits", method="POST", json={"api_limit": 123, "api_used": 7})
    emulator.reset()
    assert emulator.operator("limits") == {"api_limit": 15000, "api_used": 0}
