"""The state store against the real embedded PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading

import psycopg
import pytest

from passwork_assets.state.store import FlowLocked, StateStore
from passwork_assets.transform.result import Reject

pytestmark = pytest.mark.integration


@pytest.fixture
def store(fresh_database: str):
    s = StateStore(fresh_database)
    s.migrate()
    try:
        yield s
    finally:
        s.close()


def test_migrate_is_idempotent_and_creates_the_schema(fresh_database: str) -> None:
    with StateStore(fresh_database) as s:
        assert s.migrate() == [1]
        assert s.migrate() == []
    with psycopg.connect(fresh_database) as conn:
        tables = {r[0] for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'passwork'")}
    assert {"cursors", "row_hashes", "rejects", "runs", "bulk_jobs", "schema_version"} <= tables


def test_concurrent_migrations_converge(fresh_database: str) -> None:
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            with StateStore(fresh_database) as s:
                s.migrate()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=migrate) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with psycopg.connect(fresh_database) as conn:
        assert conn.execute("select count(*) from passwork.schema_version").fetchone() == (1,)


def test_cursor_round_trip_keeps_offset_and_microseconds(store: StateStore) -> None:
    assert store.get_cursor("f") is None
    value = dt.datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=dt.timezone.utc)
    store.set_cursor("f", value)
    assert store.get_cursor("f") == "2024-05-01T12:30:15.123456+00:00"
    store.set_cursor("f", 42)
    assert store.get_cursor("f") == "42"
    store.reset_cursor("f")
    assert store.get_cursor("f") is None
    with pytest.raises(ValueError, match="null"):
        store.set_cursor("f", None)


def test_changed_keys_new_changed_and_unchanged(store: StateStore) -> None:
    store.record_accepted("usage", ["a", "b", "c"], ["1", "2", "3"])
    assert store.changed_keys("usage", ["a", "b", "c", "d"], ["1", "X", "3", "4"]) == {"b", "d"}
    # Hashes are per flow.
    assert store.changed_keys("other", ["a"], ["1"]) == {"a"}
    store.record_accepted("usage", ["b", "d"], ["X", "4"])
    assert store.changed_keys("usage", ["a", "b", "c", "d"], ["1", "X", "3", "4"]) == set()
    assert store.hash_count("usage") == 4
    assert store.forget_hashes("usage") == 4
    assert store.changed_keys("usage", ["a"], ["1"]) == {"a"}


def test_changed_keys_handles_many_keys_and_awkward_text(store: StateStore) -> None:
    n = 50_000
    keys = [f"K-{i}" for i in range(n)] + ['comma,"quote"', "改行\nあり", "tab\tand\\backslash"]
    hashes = [str(i % 7) for i in range(len(keys))]
    store.record_accepted("f", keys, hashes)
    changed = list(hashes)
    for i in range(0, len(keys), 100):
        changed[i] = "changed"
    expected = {keys[i] for i in range(0, len(keys), 100)}
    assert store.changed_keys("f", keys, changed) == expected
    assert store.changed_keys("f", keys[-3:], hashes[-3:]) == set()


def test_null_key_or_hash_is_refused(store: StateStore) -> None:
    with pytest.raises(ValueError, match="null"):
        store.changed_keys("f", ["a", None], ["1", "2"])  # type: ignore[list-item]


def _reject(key: str | None, code: str = "STRING_TOO_LONG", value: str = "長い名前") -> Reject:
    return Reject(flow="f", key=key, code=code, message=f"{code} for {key}", field="Name", value=value,
                  row={"id": 1, "name": value, "day": dt.date(2024, 1, 31)})


def test_rejects_are_upserted_counted_and_cleared(store: StateStore) -> None:
    assert store.put_rejects("f", [_reject("A"), _reject("B"), _reject(None), _reject(None, value="other")]) == 4
    assert store.put_rejects("f", [_reject("A", code="REQUIRED_FIELD_MISSING"), _reject(None)]) == 2
    rows = {(r["key"], r["value"]): r for r in store.rejects("f")}
    assert len(rows) == 4
    a = rows[("A", "長い名前")]
    assert a["code"] == "REQUIRED_FIELD_MISSING" and a["attempts"] == 2
    assert a["row"] == {"id": 1, "name": "長い名前", "day": "2024-01-31"}
    assert a["first_seen"] <= a["last_seen"]
    assert rows[(None, "長い名前")]["attempts"] == 2
    assert rows[(None, "other")]["attempts"] == 1
    assert store.rejects("nope") == []
    assert store.clear_rejects("f", ["A", "Z"]) == 1
    assert {r["key"] for r in store.rejects()} == {"B", None}
    assert store.clear_rejects("f", None) == 3
    assert store.rejects() == []


def test_runs_and_bulk_jobs(store: StateStore) -> None:
    run = store.start_run("usage")
    store.add_bulk_job(run, "750x0000001", "Usage__c", "upsert")
    store.add_bulk_job(run, "750x0000002", "Usage__c", "upsert")
    assert store.runs("usage")[0]["status"] == "running"
    store.finish_run(run, {"status": "ok", "sent": 3, "day": dt.date(2024, 1, 2)})
    latest = store.runs("usage")[0]
    assert latest["id"] == run and latest["status"] == "ok" and latest["finished"] is not None
    assert latest["summary"] == {"status": "ok", "sent": 3, "day": "2024-01-02"}
    assert latest["bulk_job_ids"] == ["750x0000001", "750x0000002"]
    with pytest.raises(ValueError, match="status"):
        store.finish_run(run, {"sent": 1})
    with pytest.raises(RuntimeError, match="no run with id 999999"):
        store.finish_run(999999, {"status": "failed"})


def test_flow_lock_excludes_a_second_holder_until_released(store: StateStore, fresh_database: str) -> None:
    other = StateStore(fresh_database)
    try:
        with store.flow_lock("product_usage"):
            with pytest.raises(FlowLocked, match=r"flow product_usage is already running \(since \d{4}-\d\d-\d\d "):
                with other.flow_lock("product_usage"):
                    pass
            with other.flow_lock("erp_costs"):
                pass
        with other.flow_lock("product_usage"):
            pass
    finally:
        other.close()


def test_flow_lock_is_released_when_the_holder_dies(fresh_database: str) -> None:
    """A killed run's session ends, so the lock is free again without cleanup."""
    holder = StateStore(fresh_database)
    holder.migrate()
    lock = holder.flow_lock("f")
    lock.__enter__()
    with psycopg.connect(fresh_database, autocommit=True) as admin:
        pid = admin.execute("select backend_pid from passwork.flow_locks where flow = 'f'").fetchone()
        assert pid is not None
        admin.execute("select pg_terminate_backend(%s)", (pid[0],))
    with StateStore(fresh_database) as other, other.flow_lock("f"):
        pass
