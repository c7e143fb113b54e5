"""Loading mapping folders: the project's own mappings, and every kind of mistake reported with file and line."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from passwork_assets.mapping.issues import MappingError, MappingIssue
from passwork_assets.mapping.loader import load_mappings

PROJECT_MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


@pytest.fixture
def mdir(tmp_path: Path) -> Path:
    """A copy of the project's mappings to break one way per test."""
    target = tmp_path / "mappings"
    shutil.copytree(PROJECT_MAPPINGS, target)
    return target


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _issues(directory: Path) -> list[MappingIssue]:
    with pytest.raises(MappingError) as info:
        load_mappings(directory)
    return info.value.issues


def _line_of(path: Path, needle: str) -> int:
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in {path}")


def test_project_mappings_load_with_six_flows_parents_first() -> None:
    m = load_mappings(PROJECT_MAPPINGS)
    assert sorted(m.flows) == sorted(
        ["product_accounts", "product_contracts", "product_usage", "erp_partners", "erp_contracts", "erp_costs"]
    )
    order = m.object_order()
    assert order.index("Account") < order.index("Contract") < order.index("Usage__c")
    assert order.index("Contract") < order.index("Cost__c")
    assert m.parent_objects("Usage__c") == {"Contract"}
    assert m.parent_objects("Contract") == {"Account"}
    assert m.parent_objects("Account") == set()
    assert {f.flow for f in m.flows_for_object("contract")} == {"product_contracts", "erp_contracts"}
    assert set(m.connections) == {"product", "erp"}


def test_flow_fields_are_expanded_from_shorthand() -> None:
    m = load_mappings(PROJECT_MAPPINGS)
    usage = m.flows["product_usage"]
    key = usage.key_field
    assert key is not None and key.expr is not None and key.column is None
    assert key.source_columns == ("contract_no", "usage_date", "metric")
    link = usage.field("Contract__r.ContractKey__c")
    assert link is not None and link.is_parent_link and link.column == "contract_no"
    assert (link.relationship, link.parent_external_id, link.parent_object) == ("Contract__r", "ContractKey__c", "Contract")
    assert link.written_field == "Contract__c"
    assert link.line == _line_of(usage.path, "Contract__r.ContractKey__c:")
    amount = usage.field("Amount__c")
    assert amount is not None and amount.on_null == "clear" and amount.expr == "quantity * unit_price"
    status = m.flows["product_contracts"].field("Status")
    assert status is not None and status.value_map == {"draft": "Draft", "pending": "In Approval Process", "active": "Activated"}
    assert len(usage.content_hash) == 64
    assert usage.line_of("target.external_id") == _line_of(usage.path, "external_id:")


def test_precedence_and_yielded_fields() -> None:
    m = load_mappings(PROJECT_MAPPINGS)
    assert m.field_precedence("Account", "Name") == ("erp_partners", "product_accounts")
    assert m.yielded_fields("product_accounts") == {"Name": ("erp_partners",)}
    assert m.yielded_fields("erp_partners") == {}
    assert m.yielded_fields("erp_contracts") == {"ContractTerm": ("product_contracts",)}
    # The parent link counts as the reference field it sets (Account.AccountKey__c sets AccountId).
    assert m.yielded_fields("product_contracts") == {"Account.AccountKey__c": ("erp_contracts",), "StartDate": ("erp_contracts",)}
    # Upsert keys are shared by definition and need no precedence.
    assert m.field_precedence("Account", "AccountKey__c") == ()


def test_yaml_syntax_error_has_its_line(mdir: Path) -> None:
    path = _write(mdir, "erp_costs.yaml", """
        flow: erp_costs
        source:
          connection: erp
          table: erp.cost_lines
           columns: [id]
        """)
    [issue] = _issues(mdir)
    assert issue.file.endswith("erp_costs.yaml")
    assert issue.line == 4 or issue.line == 5
    assert "invalid YAML" in issue.message
    assert path.name in str(issue)


def test_unknown_key_names_allowed_keys_and_close_match(mdir: Path) -> None:
    path = mdir / "erp_costs.yaml"
    _edit(path, "  table: erp.cost_lines", "  tabel: erp.cost_lines")
    issues = _issues(mdir)
    unknown = [i for i in issues if "unknown key 'tabel'" in i.message]
    assert len(unknown) == 1
    assert unknown[0].line == _line_of(path, "tabel:")
    assert unknown[0].key == "source"
    assert "did you mean 'table'?" in unknown[0].message
    assert "Allowed keys: connection, table, columns, sql, cursor, key" in unknown[0].message


def test_unknown_key_in_field_options(mdir: Path) -> None:
    path = mdir / "product_usage.yaml"
    _edit(path, "    on_null: clear", "    on_nul: clear")
    [issue] = _issues(mdir)
    assert issue.line == _line_of(path, "on_nul:")
    assert issue.key == "fields.Amount__c"
    assert "did you mean 'on_null'?" in issue.message and "value_map" in issue.message


def test_wrong_types_in_user_terms(mdir: Path) -> None:
    path = mdir / "product_usage.yaml"
    _edit(path, "  serial: false", "  serial: sometimes\n  bulk_threshold: many")
    issues = {i.key: i for i in _issues(mdir)}
    assert issues["target.serial"].message.startswith("must be true or false")
    assert issues["target.serial"].line == _line_of(path, "serial:")
    assert issues["target.bulk_threshold"].message == "must be a whole number (got 'many')"
    assert issues["target.bulk_threshold"].line == _line_of(path, "bulk_threshold:")


def test_operation_lists_allowed_values(mdir: Path) -> None:
    path = mdir / "erp_costs.yaml"
    _edit(path, "operation: upsert", "operation: upsrt")
    [issue] = _issues(mdir)
    assert issue.key == "target.operation"
    assert issue.message == "must be one of: upsert, update or insert (got 'upsrt')"
    assert issue.line == _line_of(path, "operation:")


def test_missing_required_key_points_at_parent(mdir: Path) -> None:
    path = mdir / "erp_costs.yaml"
    _edit(path, "  external_id: CostKey__c\n", "")
    [issue] = _issues(mdir)
    assert issue.key == "target"
    assert issue.message == "required key 'external_id' is missing"
    assert issue.line == _line_of(path, "target:")


def test_table_and_sql_are_exclusive(mdir: Path) -> None:
    path = mdir / "erp_costs.yaml"
    _edit(path, "  key: id\n", "  key: id\n  sql: SELECT 1\n")
    [issue] = _issues(mdir)
    assert issue.key == "source"
    assert "either table (with columns) or sql" in issue.message
    assert issue.line == _line_of(path, "source:")


def test_field_reading_an_unlisted_column(mdir: Path) -> None:
    path = mdir / "erp_costs.yaml"
    _edit(path, "  Vendor__c: vendor", "  Vendor__c: vendor_name")
    [issue] = _issues(mdir)
    assert issue.key == "fields.Vendor__c"
    assert "vendor_name, not in source.columns" in issue.message
    assert issue.line == _line_of(path, "Vendor__c:")


def test_bad_expression_is_reported_with_its_text(mdir: Path) -> None:
    path = mdir / "product_usage.yaml"
    _edit(path, "expr: quantity * unit_price", "expr: quantity * * unit_price (")
    [issue] = _issues(mdir)
    assert issue.key == "fields.Amount__c"
    assert "is not a valid SQL expression: 'quantity * * unit_price ('" in issue.message


def test_duplicate_fields(mdir: Path) -> None:
    path = mdir / "erp_costs.yaml"
    _edit(path, "  Vendor__c: vendor\n", "  Vendor__c: vendor\n  vendor__c: category\n")
    [issue] = _issues(mdir)
    assert issue.line == _line_of(path, "vendor__c: category")
    assert "mapped twice" in issue.message
    _edit(path, "  vendor__c: category\n", "  Vendor__c: category\n")
    [issue] = _issues(mdir)
    assert "duplicate key 'Vendor__c'" in issue.message and issue.line == _line_of(path, "Vendor__c: category")


def test_unknown_connection_lists_defined_ones(mdir: Path) -> None:
    _edit(mdir / "erp_costs.yaml", "connection: erp", "connection: erp2")
    [issue] = _issues(mdir)
    assert issue.message == "unknown connection 'erp2'; connections.yaml defines: erp, product"


def test_shared_field_without_precedence_names_both_files_and_lines(mdir: Path) -> None:
    (mdir / "ownership.yaml").unlink()
    issues = _issues(mdir)
    name = [i for i in issues if "Account.Name" in i.message]
    assert len(name) == 1
    erp_line = _line_of(mdir / "erp_partners.yaml", "Name:")
    product_line = _line_of(mdir / "product_accounts.yaml", "Name:")
    assert f"erp_partners (mappings/erp_partners.yaml:{erp_line})" in name[0].message.replace(str(mdir.parent) + "/", "")
    assert f"product_accounts.yaml:{product_line}" in name[0].message
    assert "no precedence is declared" in name[0].message
    assert {i.message.split(" is written")[0] for i in issues} == {
        "Account.Name", "Contract.AccountId", "Contract.StartDate", "Contract.ContractTerm"
    }


def test_ownership_entry_must_match_the_writers(mdir: Path) -> None:
    path = mdir / "ownership.yaml"
    _edit(path, "Name: [erp_partners, product_accounts]", "Name: [erp_partners]")
    _edit(path, "StartDate: [erp_contracts, product_contracts]", "StartDate: [erp_contracts, product_contracts, erp_costs]")
    issues = {i.key: i for i in _issues(mdir)}
    assert issues["Account.Name"].message.startswith("does not list product_accounts, which also writes it")
    assert issues["Account.Name"].line == _line_of(path, "Name:")
    assert issues["Contract.StartDate"].message.startswith("lists erp_costs, which does not write it")


def test_cycle_is_named(mdir: Path) -> None:
    path = mdir / "product_accounts.yaml"
    _edit(path, "  Name: name\n", "  Name: name\n  Main_Contract__r.ContractKey__c: customer_code\n")
    issues = _issues(mdir)
    # Each link of the cycle is reported where it is written: the new one and both Contract -> Account links.
    assert all("parent links form a cycle: Account -> Contract -> Account" in i.message for i in issues)
    assert {(Path(i.file).name, i.line) for i in issues} == {
        ("product_accounts.yaml", _line_of(path, "Main_Contract__r")),
        ("product_contracts.yaml", _line_of(mdir / "product_contracts.yaml", "Account.AccountKey__c")),
        ("erp_contracts.yaml", _line_of(mdir / "erp_contracts.yaml", "Account.AccountKey__c")),
    }


def test_parent_link_needs_a_parent_flow(mdir: Path) -> None:
    path = mdir / "erp_costs.yaml"
    _edit(path, "Contract__r.ContractKey__c: contract_no", "Contract__r.ContractNo__c: contract_no")
    [issue] = _issues(mdir)
    assert issue.key == "fields.Contract__r.ContractNo__c"
    assert "no flow upserts on ContractNo__c" in issue.message
    assert "Contract.ContractKey__c" in issue.message


def test_every_problem_in_every_file_is_reported_at_once(mdir: Path) -> None:
    _edit(mdir / "erp_costs.yaml", "operation: upsert", "operation: merge")
    _edit(mdir / "product_usage.yaml", "connection: product", "connection: prod")
    issues = _issues(mdir)
    assert {Path(i.file).name for i in issues} == {"erp_costs.yaml", "product_usage.yaml"}


def test_issue_string_format() -> None:
    assert str(MappingIssue("mappings/a.yaml", 3, "target.object", "bad")) == "mappings/a.yaml:3: target.object: bad"
    err = MappingError([MappingIssue("a.yaml", 1, "k", "x"), MappingIssue("b.yaml", None, "", "y")])
    assert str(err) == "a.yaml:1: k: x\nb.yaml: y"
