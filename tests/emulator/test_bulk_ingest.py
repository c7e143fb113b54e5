"""Bulk API 2.0 ingest against the running emulator over HTTPS, through unmodified simple-salesforce."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceOperationError

from salesforce_emulator.testing import EmulatorProcess

pytestmark = pytest.mark.integration

WAIT = 0.1
# Key order of a finished job's info, as recorded from a real org (amp-labs bulk/info/partial-failure.json).
RECORDED_INFO_KEYS = [
    "id", "operation", "object", "createdById", "createdDate", "systemModstamp", "state", "externalIdFieldName",
    "concurrencyMode", "contentType", "apiVersion", "jobType", "lineEnding", "columnDelimiter",
    "numberRecordsProcessed", "numberRecordsFailed", "retries", "totalProcessingTime", "apiActiveProcessingTime",
    "apexProcessingTime",
]


@pytest.fixture
def sf(emulator):
    emulator.reset()  # also clears the fault settings
    yield emulator.salesforce()
    emulator.reset()


def _parents(sf) -> None:
    sf.bulk2.Account.upsert(records=[{"AccountKey__c": "A-1", "Name": "Acme"}], external_id_field="AccountKey__c",
                            wait=WAIT)
    sf.bulk2.Contract.upsert(records=[{"ContractKey__c": "C-1", "Account.AccountKey__c": "A-1", "Status": "Draft"}],
                             external_id_field="ContractKey__c", wait=WAIT)


def _usage_file(tmp_path: Path, rows: list[list[str]], name: str = "usage.csv") -> str:
    path = tmp_path / name
    with open(path, "w", encoding="utf-8", newline="") as target:
        writer = csv.writer(target, lineterminator="\n")
        writer.writerow(["UsageKey__c", "Contract__r.ContractKey__c", "UsageDate__c", "Quantity__c"])
        writer.writerows(rows)
    return str(path)


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _last_job(sf) -> dict:
    return sf.restful("jobs/ingest")["records"][-1]


def test_upsert_with_parent_links_and_results(sf, tmp_path: Path) -> None:
    _parents(sf)
    file = _usage_file(tmp_path, [["U-1", "C-1", "2024-05-01", "1.5"], ["U-2", "C-404", "2024-05-02", "2"],
                                  ["U-3", "C-1", "2024-05-03", "3"]])
    [job] = sf.bulk2.Usage__c.upsert(csv_file=file, external_id_field="UsageKey__c", wait=WAIT)
    assert job["numberRecordsProcessed"] == 3  # includes the failed row, as in Salesforce
    assert job["numberRecordsFailed"] == 1
    assert job["numberRecordsTotal"] == 3

    info = sf.restful(f"jobs/ingest/{job['job_id']}")
    assert list(info) == RECORDED_INFO_KEYS
    assert info["state"] == "JobComplete" and info["jobType"] == "V2Ingest" and info["apiVersion"] == 59.0

    successful = _rows(sf.bulk2.Usage__c.get_successful_records(job["job_id"]))
    assert [(r["UsageKey__c"], r["sf__Created"]) for r in successful] == [("U-1", "true"), ("U-3", "true")]
    assert all(r["sf__Id"].startswith("a01") and len(r["sf__Id"]) == 18 for r in successful)

    failed_text = sf.bulk2.Usage__c.get_failed_records(job["job_id"])
    header, row = failed_text.splitlines()
    assert header == '"sf__Id","sf__Error",UsageKey__c,Contract__r.ContractKey__c,UsageDate__c,Quantity__c'
    assert row == ('"","INVALID_FIELD:Foreign key external ID: C-404 not found for field ContractKey__c in entity '
                   'Contract:--","U-2","C-404","2024-05-02","2"')
    assert sf.bulk2.Usage__c.get_unprocessed_records(job["job_id"]) == (
        "UsageKey__c,Contract__r.ContractKey__c,UsageDate__c,Quantity__c\n")

    stored = sf.query("SELECT UsageKey__c, Quantity__c, Contract__r.ContractKey__c FROM Usage__c ORDER BY UsageKey__c")
    assert [(r["UsageKey__c"], r["Quantity__c"], r["Contract__r"]["ContractKey__c"]) for r in stored["records"]] == [
        ("U-1", 1.5, "C-1"), ("U-3", 3.0, "C-1")]

    # The same file again updates the same records: no duplicates, sf__Created false.
    [again] = sf.bulk2.Usage__c.upsert(csv_file=file, external_id_field="UsageKey__c", wait=WAIT)
    again_rows = _rows(sf.bulk2.Usage__c.get_successful_records(again["job_id"]))
    assert [(r["sf__Id"], r["sf__Created"]) for r in again_rows] == [(r["sf__Id"], "false") for r in successful]
    assert sf.query("SELECT COUNT() FROM Usage__c")["totalSize"] == 2


def test_insert_update_delete_hard_delete(sf) -> None:
    [inserted] = sf.bulk2.Account.insert(records=[{"Name": "One"}, {"Name": "Two"}], wait=WAIT)
    assert inserted["numberRecordsFailed"] == 0
    ids = [r["sf__Id"] for r in _rows(sf.bulk2.Account.get_successful_records(inserted["job_id"]))]
    assert len(ids) == 2

    [updated] = sf.bulk2.Account.update(records=[{"Id": ids[0], "Name": "Uno"}], wait=WAIT)
    [row] = _rows(sf.bulk2.Account.get_successful_records(updated["job_id"]))
    assert (row["sf__Id"], row["sf__Created"]) == (ids[0], "false")
    assert sf.Account.get(ids[0])["Name"] == "Uno"

    [deleted] = sf.bulk2.Account.delete(records=[{"Id": ids[0]}], wait=WAIT)
    assert deleted["numberRecordsFailed"] == 0
    deleted_rows = sf.query_all("SELECT Id, IsDeleted FROM Account WHERE IsDeleted = true", include_deleted=True)
    assert [r["Id"] for r in deleted_rows["records"]] == [ids[0]]

    [hard] = sf.bulk2.Account.hard_delete(records=[{"Id": ids[1]}], wait=WAIT)
    assert hard["numberRecordsFailed"] == 0
    assert sf.query_all("SELECT Id FROM Account", include_deleted=True)["totalSize"] == 1


def test_header_error_fails_the_job(sf, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("UsageKey__c,Bogus__c\nU-1,x\nU-2,y\n", encoding="utf-8")
    with pytest.raises(SalesforceOperationError) as info:
        sf.bulk2.Usage__c.upsert(csv_file=str(path), external_id_field="UsageKey__c", wait=WAIT)
    assert "InvalidBatch : Field name not found : Bogus__c" in str(info.value)
    job = sf.restful(f"jobs/ingest/{_last_job(sf)['id']}")
    assert job["state"] == "Failed"
    assert (job["numberRecordsProcessed"], job["numberRecordsFailed"]) == (0, 0)
    assert job["errorMessage"] == "InvalidBatch : Field name not found : Bogus__c"
    assert list(job)[-1] == "errorMessage"
    assert _rows(sf.bulk2.Usage__c.get_unprocessed_records(job["id"])) == [
        {"UsageKey__c": "U-1", "Bogus__c": "x"}, {"UsageKey__c": "U-2", "Bogus__c": "y"}]


def test_lock_faults_land_in_failed_results(sf, emulator, tmp_path: Path) -> None:
    _parents(sf)
    emulator.operator("faults", method="POST",
                      json={"seed": 3, "lock_rate": 1.0, "lock_objects": ["Usage__c"]})
    file = _usage_file(tmp_path, [["U-1", "C-1", "2024-05-01", "1"], ["U-2", "C-1", "2024-05-02", "2"]])
    [job] = sf.bulk2.Usage__c.upsert(csv_file=file, external_id_field="UsageKey__c", wait=WAIT)
    assert (job["numberRecordsProcessed"], job["numberRecordsFailed"]) == (2, 2)
    failed = _rows(sf.bulk2.Usage__c.get_failed_records(job["job_id"]))
    assert [r["UsageKey__c"] for r in failed] == ["U-1", "U-2"]
    assert all(r["sf__Error"].startswith("UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record")
               for r in failed)
    assert sf.query("SELECT COUNT() FROM Usage__c")["totalSize"] == 0


def test_fault_injected_job_failure_leaves_unprocessed_records(sf, emulator, tmp_path: Path) -> None:
    _parents(sf)
    emulator.operator("faults", method="POST", json={"failing_bulk_jobs": 1})
    file = _usage_file(tmp_path, [["U-1", "C-1", "2024-05-01", "1"], ["U-2", "C-1", "2024-05-02", "2"]])
    with pytest.raises(SalesforceOperationError):
        sf.bulk2.Usage__c.upsert(csv_file=file, external_id_field="UsageKey__c", wait=WAIT)
    job = sf.restful(f"jobs/ingest/{_last_job(sf)['id']}")
    assert job["state"] == "Failed" and job["errorMessage"]
    assert [r["UsageKey__c"] for r in _rows(sf.bulk2.Usage__c.get_unprocessed_records(job["id"]))] == ["U-1", "U-2"]
    # Only one job was meant to fail: the retry goes through.
    [retry] = sf.bulk2.Usage__c.upsert(csv_file=file, external_id_field="UsageKey__c", wait=WAIT)
    assert retry["numberRecordsFailed"] == 0


def _raw_job(sf, body: dict) -> dict:
    return sf.restful("jobs/ingest", method="POST", json=body)


def _put(sf, job_id: str, data: bytes):
    return sf.session.put(f"{sf.base_url}jobs/ingest/{job_id}/batches", data=data,
                          headers={**sf.headers, "Content-Type": "text/csv"})


def _wait_terminal(sf, job_id: str) -> dict:
    for _ in range(200):
        job = sf.restful(f"jobs/ingest/{job_id}")
        if job["state"] in ("JobComplete", "Failed", "Aborted"):
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_create_answer_and_abort(sf) -> None:
    created = _raw_job(sf, {"object": "Account", "operation": "insert", "contentType": "CSV"})
    assert list(created) == ["id", "operation", "object", "createdById", "createdDate", "systemModstamp", "state",
                             "concurrencyMode", "contentType", "apiVersion", "contentUrl", "lineEnding",
                             "columnDelimiter"]
    assert created["contentUrl"] == f"services/data/v59.0/jobs/ingest/{created['id']}/batches"
    assert created["state"] == "Open" and created["id"].startswith("750")
    assert _put(sf, created["id"], b"Name\nAborted One\n").status_code == 201
    aborted = sf.restful(f"jobs/ingest/{created['id']}", method="PATCH", json={"state": "Aborted"})
    # The state-change answer as recorded (amp-labs bulk/write/update-job-opportunity.json), for an insert job.
    assert list(aborted) == ["id", "operation", "object", "createdById", "createdDate", "systemModstamp", "state",
                             "concurrencyMode", "contentType", "apiVersion"]
    assert aborted["state"] == "Aborted"
    assert _rows(sf.bulk2.Account.get_unprocessed_records(created["id"])) == [{"Name": "Aborted One"}]
    # Both spellings of the unprocessed resource answer.
    lower = sf.session.get(f"{sf.base_url}jobs/ingest/{created['id']}/unprocessedrecords/", headers=sf.headers)
    assert lower.status_code == 200 and lower.text == "Name\nAborted One\n"
    assert lower.headers["Content-Type"] == "text/csv"
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 0


def test_job_state_errors(sf) -> None:
    created = _raw_job(sf, {"object": "Account", "operation": "insert"})
    assert _put(sf, created["id"], b"Name\nX\n").status_code == 201
    second = _put(sf, created["id"], b"Name\nY\n")
    assert second.status_code == 400
    assert second.json()[0]["errorCode"] == "INVALIDJOBSTATE"
    assert second.json()[0]["message"].startswith(f"Found multiple contents for job: <{created['id']}>")
    early = sf.session.get(f"{sf.base_url}jobs/ingest/{created['id']}/successfulResults/", headers=sf.headers)
    assert early.status_code == 400 and early.json()[0]["errorCode"] == "INVALIDJOBSTATE"
    sf.restful(f"jobs/ingest/{created['id']}", method="PATCH", json={"state": "UploadComplete"})
    assert _wait_terminal(sf, created["id"])["state"] == "JobComplete"
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.restful(f"jobs/ingest/{created['id']}", method="PATCH", json={"state": "Aborted"})
    assert info.value.content == [{"message": "Aborting already Completed Job not allowed",
                                   "errorCode": "INVALIDJOBSTATE"}]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"object": "XYZZY", "operation": "insert"}, "Unable to find object: XYZZY"),
        ({"object": "Usage__c", "operation": "upsert"},
         "External ID was blank for Usage__c. An External ID must be specified for upsert."),
        ({"object": "Usage__c", "operation": "upsert", "externalIdFieldName": "Metric__c"},
         "Field name provided, Metric__c does not match an External ID, Salesforce Id, or indexed field for Usage__c"),
        ({"object": "Account", "operation": "merge"}, "Invalid value for operation: merge"),
    ],
)
def test_create_validation_errors(sf, body: dict, message: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as info:
        _raw_job(sf, body)
    assert info.value.content == [{"message": message, "errorCode": "INVALIDJOB"}]


def test_line_ending_mismatch_fails_the_job(sf) -> None:
    created = _raw_job(sf, {"object": "Account", "operation": "insert", "lineEnding": "LF"})
    _put(sf, created["id"], b"Name\r\nX\r\n")
    sf.restful(f"jobs/ingest/{created['id']}", method="PATCH", json={"state": "UploadComplete"})
    job = _wait_terminal(sf, created["id"])
    assert job["state"] == "Failed"
    assert job["errorMessage"] == ("ClientInputError : LineEnding is invalid on user data. Current LineEnding "
                                   "setting is LF")


def test_column_delimiter_and_crlf_are_honoured(sf, tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_bytes(b'AccountKey__c;Name\r\nA-1;"Acme; Inc"\r\nA-2;"Semi;colon"\r\n')
    [job] = sf.bulk2.Account.upsert(csv_file=str(path), external_id_field="AccountKey__c",
                                    column_delimiter="SEMICOLON", line_ending="CRLF", wait=WAIT)
    assert job["numberRecordsFailed"] == 0
    info = sf.restful(f"jobs/ingest/{job['job_id']}")
    assert (info["columnDelimiter"], info["lineEnding"]) == ("SEMICOLON", "CRLF")
    names = [r["Name"] for r in sf.query("SELECT Name FROM Account ORDER BY AccountKey__c")["records"]]
    assert names == ["Acme; Inc", "Semi;colon"]
    successful = sf.bulk2.Account.get_successful_records(job["job_id"])
    assert successful.startswith("sf__Id;sf__Created;AccountKey__c;Name\r\n")


def test_bulk_batches_are_counted(sf) -> None:
    before = sf.limits()["DailyBulkApiBatches"]["Remaining"]
    sf.bulk2.Account.insert(records=[{"Name": "Counted"}], wait=WAIT)
    assert sf.limits()["DailyBulkApiBatches"]["Remaining"] == before - 1


def test_jobs_survive_a_restart(tmp_path: Path) -> None:
    first = EmulatorProcess(data_dir=tmp_path / "org").start()
    try:
        sf = first.salesforce()
        [job] = sf.bulk2.Account.insert(records=[{"Name": "Persisted"}], wait=WAIT)
    finally:
        first.stop()
    second = EmulatorProcess(data_dir=tmp_path / "org").start()
    try:
        sf = second.salesforce()
        info = sf.restful(f"jobs/ingest/{job['job_id']}")
        assert info["state"] == "JobComplete" and info["numberRecordsProcessed"] == 1
        [row] = _rows(sf.bulk2.Account.get_successful_records(job["job_id"]))
        assert row["Name"] == "Persisted"
        assert sf.Account.get(row["sf__Id"])["Name"] == "Persisted"
        assert job["job_id"] in [j["id"] for j in sf.restful("jobs/ingest")["records"]]
    finally:
        second.stop()


def test_delete_job(sf) -> None:
    [job] = sf.bulk2.Account.insert(records=[{"Name": "Short-lived"}], wait=WAIT)
    response = sf.session.delete(f"{sf.base_url}jobs/ingest/{job['job_id']}", headers=sf.headers)
    assert response.status_code == 204 and response.content == b""
    missing = sf.session.get(f"{sf.base_url}jobs/ingest/{job['job_id']}", headers=sf.headers)
    assert missing.status_code == 404
    assert missing.json() == [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
