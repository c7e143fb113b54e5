"""The in-memory match-key indexes stay in step with the stored records: across restarts, deletes, key changes
and rolled-back transactions, upsert matching and uniqueness answer as the stored data says."""

from __future__ import annotations

from pathlib import Path

import pytest

from salesforce_emulator.org import Org
from salesforce_emulator.schema import load_org_schema
from salesforce_emulator.store import Store


def _open(path: Path) -> Org:
    schema = load_org_schema()
    return Org(schema, Store(path / "org.sqlite3", schema))


def _usage(key: str, quantity: str = "1") -> dict[str, str]:
    return {"UsageKey__c": key, "Contract__r.ContractKey__c": "C-1", "UsageDate__c": "2024-05-01",
            "Quantity__c": quantity}


@pytest.fixture
def org(tmp_path: Path) -> Org:
    org = _open(tmp_path)
    org.write_many("Account", "insert", [{"Name": "A", "AccountKey__c": "A-1"}])
    org.write_many("Contract", "insert", [{"Account": {"AccountKey__c": "A-1"}, "ContractKey__c": "C-1"}])
    return org


def _duplicate(org: Org, key: str) -> str | None:
    """The error code of inserting an Account with AccountKey__c ``key`` (None when it is created)."""
    [outcome] = org.write_many("Account", "insert", [{"Name": "D", "AccountKey__c": key}])
    return outcome.error.status_code if outcome.error else None


def test_upsert_matching_and_uniqueness_after_a_restart(org: Org, tmp_path: Path) -> None:
    [usage] = org.write_many("Usage__c", "upsert", [_usage("U-1")], external_id_field="UsageKey__c",
                             value_format="csv")
    [account] = org.write_many("Account", "insert", [{"Name": "Same", "AccountKey__c": "A-2"}])
    [other] = org.write_many("Account", "insert", [{"Name": "Same", "AccountKey__c": "A-3"}])
    org.store.close()

    again = _open(tmp_path)
    [matched] = again.write_many("Usage__c", "upsert", [_usage("u-1", "5")], external_id_field="UsageKey__c",
                                 value_format="csv")
    assert (matched.id, matched.created, matched.error) == (usage.id, False, None)
    assert again.get("Usage__c", usage.id)["Quantity__c"] == 5.0
    [clash] = again.write_many("Account", "insert", [{"Name": "X", "AccountKey__c": "a-2"}])
    assert clash.error.to_bulk() == ("DUPLICATE_VALUE:duplicate value found: AccountKey__c duplicates value on record "
                                     f"with id: {account.id[:15]}:--")
    # A non-unique idLookup field (Account Name) keeps every record that shares the value.
    assert {r["Id"] for r in again.find_by_external_id("Account", "Name", "Same")} == {account.id, other.id}
    [parent] = again.write_many("Usage__c", "upsert", [{**_usage("U-2"), "Contract__r.ContractKey__c": "c-1"}],
                                external_id_field="UsageKey__c", value_format="csv")
    assert parent.error is None and parent.created


def test_deleted_and_changed_keys_are_free_again(org: Org, tmp_path: Path) -> None:
    [first] = org.write_many("Account", "insert", [{"Name": "B", "AccountKey__c": "A-2"}])
    [second] = org.write_many("Account", "insert", [{"Name": "C", "AccountKey__c": "A-3"}])
    [third] = org.write_many("Account", "insert", [{"Name": "D", "AccountKey__c": "A-4"}])
    org.write_many("Account", "delete", [{"Id": first.id}])
    org.write_many("Account", "hardDelete", [{"Id": second.id}])
    # The same record twice in one call: the last key written is the one it keeps.
    org.write_many("Account", "update", [{"Id": third.id, "AccountKey__c": "A-5"},
                                         {"Id": third.id, "AccountKey__c": "A-6"}])
    assert org.get("Account", third.id)["AccountKey__c"] == "A-6"
    for reopened in (False, True):
        if reopened:
            org.store.close()
            org = _open(tmp_path)
        assert [r["Id"] for r in org.find_by_external_id("Account", "AccountKey__c", "A-6")] == [third.id]
        for key in ("A-2", "A-3", "A-4", "A-5"):
            assert org.find_by_external_id("Account", "AccountKey__c", key) == []
        assert _duplicate(org, "A-6") == "DUPLICATE_VALUE"
    for key in ("A-2", "A-3", "A-4", "A-5"):
        assert _duplicate(org, key) is None


def test_cascade_delete_frees_the_children_keys(org: Org) -> None:
    org.write_many("Usage__c", "insert", [_usage("U-1")], value_format="csv")
    [contract] = org.find_by_external_id("Contract", "ContractKey__c", "C-1")
    org.write_many("Contract", "delete", [{"Id": contract["Id"]}])
    assert org.count("Usage__c") == 0
    assert org.find_by_external_id("Usage__c", "UsageKey__c", "U-1") == []


def test_a_rolled_back_transaction_leaves_the_key_indexes_unchanged(org: Org) -> None:
    [kept] = org.write_many("Account", "insert", [{"Name": "B", "AccountKey__c": "A-2"}])
    table = org.store.table("Account")
    record = org.get("Account", kept.id)
    changed = {**record, "AccountKey__c": "A-9"}
    with pytest.raises(RuntimeError, match="cut off"):
        with org.store.transaction():
            org.store.insert("Account", [table.insert_row(10**9, "001000000000000AAA",
                                                           {"Name": "N", "AccountKey__c": "A-8"})])
            org.store.update("Account", [(0, b"", *table.row_values(changed), 10**9 - 1)],
                             [table.key_values(record)])
            raise RuntimeError("cut off")
    assert org.find_by_external_id("Account", "AccountKey__c", "A-8") == []
    assert org.find_by_external_id("Account", "AccountKey__c", "A-9") == []
    assert [r["Id"] for r in org.find_by_external_id("Account", "AccountKey__c", "A-2")] == [kept.id]
    assert _duplicate(org, "A-8") is None


def test_an_all_or_none_failure_leaves_the_keys_free(org: Org) -> None:
    outcomes = org.write_many("Usage__c", "upsert", [_usage("U-1"), _usage("U-2", "many")],
                              external_id_field="UsageKey__c", all_or_none=True, value_format="csv")
    assert [o.error.status_code for o in outcomes] == ["ALL_OR_NONE_OPERATION_ROLLED_BACK", "INVALID_FIELD"]
    [created] = org.write_many("Usage__c", "upsert", [_usage("U-1")], external_id_field="UsageKey__c",
                               value_format="csv")
    assert created.created and created.error is None
