"""Bulk API 2.0 query jobs: through unmodified simple-salesforce over HTTPS, plus the job states on a real Org."""

from __future__ import annotations

import base64
import csv
import io
from pathlib import Path

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from salesforce_emulator.bulk2 import Bulk2
from salesforce_emulator.context import EmulatorConfig, create_context
from salesforce_emulator.errors import SalesforceError

WAIT = 0.1


@pytest.fixture
def sf(emulator):
    emulator.reset()
    client = emulator.salesforce()
    client.bulk2.Account.upsert(
        records=[{"AccountKey__c": f"A-{i}", "Name": name} for i, name in enumerate(["Echo", "alpha", "Delta", "bravo",
                                                                                      "Charlie"])],
        external_id_field="AccountKey__c", wait=WAIT)
    client.bulk2.Contract.upsert(records=[{"ContractKey__c": "C-1", "Account.AccountKey__c": "A-1", "Status": "Draft"}],
                                 external_id_field="ContractKey__c", wait=WAIT)
    return client


@pytest.mark.integration
def test_query_pages_through_the_locator(sf) -> None:
    pages = list(sf.bulk2.Account.query("SELECT Name, AccountKey__c FROM Account ORDER BY Name", max_records=2,
                                        wait=WAIT))
    assert len(pages) == 3
    rows = [row for page in pages for row in csv.DictReader(io.StringIO(page))]
    assert [r["Name"] for r in rows] == ["alpha", "bravo", "Charlie", "Delta", "Echo"]
    assert all(page.startswith('"Name","AccountKey__c"\n') for page in pages)


@pytest.mark.integration
def test_results_headers_and_job_info(sf) -> None:
    created = sf.restful("jobs/query", method="POST",
                         json={"operation": "query", "query": "SELECT Id, Name, Account.Name FROM Contract"})
    # Create answer as recorded (amp-labs bulk/read-launch-job-account.json).
    assert list(created) == ["id", "operation", "object", "createdById", "createdDate", "systemModstamp", "state",
                             "concurrencyMode", "contentType", "apiVersion", "lineEnding", "columnDelimiter"]
    assert (created["object"], created["state"]) == ("Contract", "UploadComplete")
    for _ in range(100):
        info = sf.restful(f"jobs/query/{created['id']}")
        if info["state"] == "JobComplete":
            break
    assert info["jobType"] == "V2Query" and info["numberRecordsProcessed"] == 1
    assert "numberRecordsFailed" not in info  # not part of a query job's info (heroku get-info recording)
    response = sf.session.get(f"{sf.base_url}jobs/query/{created['id']}/results", params={"maxRecords": 10},
                              headers=sf.headers)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv"
    assert response.headers["Sforce-NumberOfRecords"] == "1"
    assert response.headers["Sforce-Locator"] == "null"
    header, row = response.text.splitlines()
    assert header == '"Id","Name","Account.Name"'  # columns in SOQL order, parent paths dotted
    assert row.endswith('"","alpha"')


@pytest.mark.integration
def test_query_all_sees_deleted_rows_and_bad_soql_is_refused(sf) -> None:
    [record] = sf.query("SELECT Id FROM Account WHERE AccountKey__c = 'A-0'")["records"]
    sf.Account.delete(record["Id"])
    live = "".join(sf.bulk2.Account.query("SELECT Name FROM Account", wait=WAIT))
    everything = "".join(sf.bulk2.Account.query_all("SELECT Name FROM Account", wait=WAIT))
    assert '"Echo"' not in live and '"Echo"' in everything
    with pytest.raises(SalesforceMalformedRequest) as info:
        list(sf.bulk2.Account.query("SELECT Bacon__c FROM Account", wait=WAIT))
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD"


@pytest.mark.integration
def test_query_job_list_abort_and_delete(sf) -> None:
    list(sf.bulk2.Account.query("SELECT Id FROM Account", wait=WAIT))
    jobs = sf.restful("jobs/query")
    assert jobs["done"] is True and jobs["nextRecordsUrl"] is None
    finished = jobs["records"][-1]
    assert finished["jobType"] == "V2Query" and finished["state"] == "JobComplete"
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.restful(f"jobs/query/{finished['id']}", method="PATCH", json={"state": "Aborted"})
    assert info.value.content[0]["errorCode"] == "INVALIDJOBSTATE"
    response = sf.session.delete(f"{sf.base_url}jobs/query/{finished['id']}", headers=sf.headers)
    assert response.status_code == 204
    assert finished["id"] not in [job["id"] for job in sf.restful("jobs/query")["records"]]


def test_results_of_an_unfinished_job_are_refused(tmp_path: Path) -> None:
    """412 JOB_NOT_COMPLETE until the job is JobComplete (checked on a real Org, without the HTTP layer)."""
    ctx = create_context(EmulatorConfig(data_dir=tmp_path))
    bulk = Bulk2(ctx.org, tmp_path / "bulk2", ctx.limits, ctx.faults, ctx.config.user_id)
    try:
        job = bulk._new_job("query", {"operation": "query", "object": "Account", "query": "SELECT Id FROM Account"},
                            "59.0")
        job.state = "InProgress"
        with pytest.raises(SalesforceError) as info:
            bulk.query_results(job, 10, None)
        assert (info.value.status, info.value.error_code) == (412, "JOB_NOT_COMPLETE")
        job.state = "JobComplete"
        job.processed = 0
        (tmp_path / "bulk2" / job.id).mkdir(parents=True)
        (tmp_path / "bulk2" / job.id / "results.csv").write_bytes(b'"Id"\n')
        (tmp_path / "bulk2" / job.id / "offsets.bin").write_bytes((5).to_bytes(8, "little"))
        body, count, locator = bulk.query_results(job, 10, None)
        assert (body, count, locator) == (b'"Id"\n', 0, "null")
        bad = base64.b64encode(b"99").decode()
        with pytest.raises(SalesforceError):
            bulk.query_results(job, 10, bad)
    finally:
        bulk.jobs.close()
