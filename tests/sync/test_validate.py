"""`validate_mappings` against describe JSON fixtures and a real source schema in the embedded PostgreSQL."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import psycopg
import pytest

from passwork_assets.demo.sample_data import seed_erp, seed_product
from passwork_assets.mapping.issues import MappingIssue
from passwork_assets.mapping.live_sources import LiveSourceSchemas, validate_live
from passwork_assets.mapping.loader import load_mappings
from passwork_assets.mapping.validate import validate_mappings
from passwork_assets.salesforce.describe import StaticDescribes

PROJECT_MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
FIXTURES = Path(__file__).parent / "fixtures" / "describe"

# The sample schemas' columns as PostgreSQL reports them (kept in step with sample_data by the live test below).
SAMPLE_COLUMNS: dict[str, dict[str, str]] = {
    "public.customers": {"id": "bigint", "customer_code": "text", "name": "text", "industry": "text",
                         "created_at": "timestamp with time zone", "updated_at": "timestamp with time zone"},
    "public.contracts": {"id": "bigint", "contract_no": "text", "customer_code": "text", "plan": "text", "status": "text",
                         "start_date": "date", "term_months": "integer", "monthly_fee": "numeric(12,2)",
                         "updated_at": "timestamp with time zone"},
    "public.usage_events": {"id": "bigint", "contract_no": "text", "usage_date": "date", "metric": "text",
                            "quantity": "numeric(16,4)", "unit_price": "numeric(12,4)",
                            "updated_at": "timestamp with time zone"},
    "erp.contracts": {"contract_no": "text", "account_key": "text", "signed_date": "date", "term_months": "integer",
                      "contract_amount": "numeric(14,2)", "updated_at": "timestamp with time zone"},
    "erp.cost_lines": {"id": "bigint", "cost_no": "text", "contract_no": "text", "vendor": "text", "category": "text",
                       "amount": "numeric(14,2)", "cost_date": "date", "updated_at": "timestamp with time zone"},
}
ERP_PARTNERS_RESULT = {"account_key": "text", "partner_name": "text", "updated_at": "timestamptz"}


def _describes() -> StaticDescribes:
    return StaticDescribes(json.loads(p.read_text(encoding="utf-8")) for p in sorted(FIXTURES.glob("*.json")))


def _schema_for(connection: str, table: str) -> dict[str, str]:
    return SAMPLE_COLUMNS[table]


def _query_columns(connection: str, sql: str) -> dict[str, str]:
    return ERP_PARTNERS_RESULT


@pytest.fixture
def mdir(tmp_path: Path) -> Path:
    target = tmp_path / "mappings"
    shutil.copytree(PROJECT_MAPPINGS, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _line_of(path: Path, needle: str) -> int:
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return i
    raise AssertionError(needle)


def _validate(mdir: Path, *, live: bool = True) -> list[MappingIssue]:
    kwargs = {"schema_for": _schema_for, "query_columns": _query_columns} if live else {}
    return validate_mappings(load_mappings(mdir), describe=_describes(), **kwargs)


def _one(issues: list[MappingIssue]) -> MappingIssue:
    assert len(issues) == 1, "\n".join(map(str, issues))
    return issues[0]


def test_project_mappings_are_valid() -> None:
    assert validate_mappings(
        load_mappings(PROJECT_MAPPINGS), describe=_describes(), schema_for=_schema_for, query_columns=_query_columns
    ) == []


def test_upsert_key_must_be_an_external_id(mdir: Path) -> None:
    path = mdir / "erp_costs.yaml"
    _edit(path, "external_id: CostKey__c", "external_id: Vendor__c")
    _edit(path, "  Vendor__c: vendor\n", "")
    _edit(path, "  CostKey__c: cost_no", "  Vendor__c: cost_no")
    issue = _one(_validate(mdir))
    assert issue.message == "Vendor__c is not an External ID field on Cost__c; External ID fields: CostKey__c"
    assert (issue.key, issue.line) == ("target.external_id", _line_of(path, "external_id:"))


def test_parent_key_must_be_an_external_id(mdir: Path) -> None:
    path = mdir / "erp_costs.yaml"
    _edit(path, "  Contract__r.ContractKey__c: contract_no",
          "  Contract__r.ContractNumber: {column: contract_no, parent_object: Contract}")
    issue = _one(_validate(mdir))
    assert issue.message == "ContractNumber is not an External ID field on Contract; External ID fields: ContractKey__c"
    assert issue.line == _line_of(path, "Contract__r.ContractNumber")


def test_relationship_written_as_field_name(mdir: Path) -> None:
    _edit(mdir / "erp_costs.yaml", "  Contract__r.ContractKey__c: contract_no", "  Contract__c.ContractKey__c: contract_no")
    issue = _one(_validate(mdir))
    assert "Cost__c has no relationship Contract__c" in issue.message
    assert "write the relationship name: Contract__r.ContractKey__c" in issue.message


def test_unknown_object_and_field_get_close_names(mdir: Path) -> None:
    path = mdir / "erp_costs.yaml"
    _edit(path, "object: Cost__c", "object: Cost_c")
    issue = _one(_validate(mdir))
    assert issue.message == "Salesforce has no object Cost_c; did you mean Cost__c?"
    assert issue.line == _line_of(path, "object:")

    _edit(path, "object: Cost_c", "object: Cost__c")
    _edit(path, "  Category__c: category", "  Categroy__c: category")
    issue = _one(_validate(mdir))
    assert issue.message == "Cost__c has no field Categroy__c; did you mean Category__c?"
    assert (issue.key, issue.line) == ("fields.Categroy__c", _line_of(path, "Categroy__c"))


def test_read_only_fields_are_refused(mdir: Path) -> None:
    path = mdir / "product_contracts.yaml"
    _edit(path, "  StartDate: start_date\n", "  StartDate: start_date\n  ContractNumber: contract_no\n  CreatedDate: updated_at\n")
    issues = {i.key: i.message for i in _validate(mdir)}
    assert issues["fields.ContractNumber"] == "Contract.ContractNumber is an auto-number field; Salesforce sets it and it cannot be written"
    assert issues["fields.CreatedDate"].startswith("Contract.CreatedDate cannot be written when a record is created (operation upsert)")


def test_incompatible_types_name_the_column_and_the_fix(mdir: Path) -> None:
    path = mdir / "product_usage.yaml"
    _edit(path, "  UsageDate__c: usage_date", "  UsageDate__c: updated_at")
    _edit(path, "  Quantity__c: quantity", "  Quantity__c: metric")
    issues = {i.key: i for i in _validate(mdir)}
    date_issue = issues["fields.UsageDate__c"]
    assert date_issue.message.startswith("column updated_at (timestamp with time zone) cannot feed UsageDate__c (date)")
    assert "AT TIME ZONE 'Asia/Tokyo'" in date_issue.message
    assert issues["fields.Quantity__c"].message.startswith("column metric (text) cannot feed Quantity__c (double): text cannot feed")
    assert issues["fields.Quantity__c"].line == _line_of(path, "Quantity__c:")


def test_expression_types_are_checked(mdir: Path) -> None:
    path = mdir / "product_usage.yaml"
    _edit(path, "expr: quantity * unit_price", "expr: metric * unit_price")
    issue = _one(_validate(mdir))
    assert issue.key == "fields.Amount__c"
    assert issue.message.startswith("the expression fails on the source column types")
    # Offline (no source schema) the expression's types cannot be known, so nothing is reported.
    assert _validate(mdir, live=False) == []


def test_picklist_targets_list_the_allowed_values(mdir: Path) -> None:
    path = mdir / "product_contracts.yaml"
    _edit(path, "active: Activated", "active: Active")
    issue = _one(_validate(mdir))
    assert issue.message == (
        "'Active' is not a value of the Status picklist; did you mean Activated? "
        "Allowed values: Draft, In Approval Process, Activated"
    )
    assert issue.line == _line_of(path, "active: Active")
    assert issue.key == "fields.Status.value_map.active"


def test_missing_live_column_and_required_field(mdir: Path) -> None:
    path = mdir / "erp_costs.yaml"
    _edit(path, "columns: [id, cost_no,", "columns: [id, costno, cost_no,")
    _edit(path, "  CostDate__c: cost_date\n", "")
    issues = {i.key: i for i in _validate(mdir)}
    assert issues["source.columns[1]"].message.startswith("column costno does not exist in erp.cost_lines; did you mean cost_no? Columns: id, cost_no,")
    assert issues["source.columns[1]"].line == _line_of(path, "columns:")
    assert issues["fields"].message == "Cost__c requires CostDate__c to create a record and this flow maps no value for it"


def test_clearing_a_required_field(mdir: Path) -> None:
    _edit(mdir / "product_usage.yaml", "  Quantity__c: quantity", "  Quantity__c: {column: quantity, on_null: clear}")
    issue = _one(_validate(mdir))
    assert issue.message == "Quantity__c is required and cannot be cleared; use on_null: leave"


def test_custom_sql_must_be_read_only(mdir: Path) -> None:
    path = mdir / "erp_partners.yaml"
    _edit(path, "WHERE partner_type = 'customer'", "WHERE partner_type = 'customer' FOR UPDATE")
    issue = _one(_validate(mdir))
    assert issue.key == "source.sql"
    assert "locking clauses" in issue.message
    assert issue.line == _line_of(path, "sql:")


# ---------------------------------------------------------------------------------------------- live source


@pytest.fixture
def sample_sources(fresh_database: str, monkeypatch: pytest.MonkeyPatch) -> str:
    seed_product(fresh_database, accounts=5, contracts_per_account=2, usage_days=3)
    seed_erp(fresh_database, accounts=5, contracts_per_account=2)
    monkeypatch.setenv("PRODUCT_DATABASE_URL", fresh_database)
    monkeypatch.setenv("ERP_DATABASE_URL", fresh_database)
    return fresh_database


@pytest.mark.integration
def test_project_mappings_are_valid_against_the_live_sample_schema(sample_sources: str) -> None:
    mappings = load_mappings(PROJECT_MAPPINGS)
    with LiveSourceSchemas(mappings.connections) as live:
        for table, cols in SAMPLE_COLUMNS.items():
            assert live.table_columns("product" if table.startswith("public") else "erp", table) == cols
        assert live.query_columns("erp", mappings.flows["erp_partners"].source.sql or "") == ERP_PARTNERS_RESULT
        issues = validate_mappings(mappings, describe=_describes(), schema_for=live.table_columns,
                                   query_columns=live.query_columns)
    assert issues == []


@pytest.mark.integration
def test_live_schema_problems(sample_sources: str, mdir: Path) -> None:
    with psycopg.connect(sample_sources, autocommit=True) as conn:
        conn.execute("ALTER TABLE public.usage_events RENAME COLUMN quantity TO qty")
    _edit(mdir / "erp_costs.yaml", "table: erp.cost_lines", "table: erp.cost_line")
    _edit(mdir / "erp_partners.yaml", "SELECT account_key, partner_name, updated_at", "SELECT account_key, partner_nam AS partner_name, updated_at")
    mappings = load_mappings(mdir)
    with LiveSourceSchemas(mappings.connections) as live:
        issues = validate_mappings(mappings, describe=_describes(), schema_for=live.table_columns,
                                   query_columns=live.query_columns)
    by_file = {(Path(i.file).name, i.key): i.message for i in issues}
    assert by_file[("product_usage.yaml", "source.columns[4]")].startswith(
        "column quantity does not exist in public.usage_events; columns: id, contract_no, usage_date, metric, qty,"
    )
    assert "table erp.cost_line not found" in by_file[("erp_costs.yaml", "source.table")]
    assert "erp.cost_lines" in by_file[("erp_costs.yaml", "source.table")]
    assert by_file[("erp_partners.yaml", "source.sql")].startswith("the SQL fails on the source")
    assert "partner_nam" in by_file[("erp_partners.yaml", "source.sql")]


@pytest.mark.integration
def test_unreachable_source_is_reported_once(mdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRODUCT_DATABASE_URL", raising=False)
    monkeypatch.setenv("ERP_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    issues = validate_live(load_mappings(mdir), describe=_describes())
    unreachable = [i for i in issues if i.key == "source.connection"]
    assert len(unreachable) == 2  # one per connection, not one per flow
    product = next(i for i in unreachable if "PRODUCT_DATABASE_URL" in i.message)
    assert "is not set" in product.message
    assert any("cannot connect to source erp" in i.message for i in unreachable)
