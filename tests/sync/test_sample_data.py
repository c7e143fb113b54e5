"""Sample product and ERP data in the embedded PostgreSQL: deterministic, shared keys, planted dirty rows."""

from __future__ import annotations

import hashlib

import psycopg
import pytest

from passwork_assets.demo.sample_data import SampleDataError, seed_erp, seed_product

pytestmark = pytest.mark.integration

TABLES = ("public.customers", "public.contracts", "public.contract_prices", "public.usage_events",
          "erp.business_partners", "erp.contracts", "erp.cost_lines")


def _fingerprint(url: str) -> dict[str, str]:
    out = {}
    with psycopg.connect(url) as conn:
        for table in TABLES:
            rows = conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            out[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return out


def _seed(url: str, seed: int = 0) -> None:
    seed_product(url, accounts=6, contracts_per_account=2, usage_days=4, seed=seed)
    seed_erp(url, accounts=6, contracts_per_account=2, cost_lines_per_contract=2, seed=seed)


@pytest.mark.dates
def test_same_seed_same_rows_other_seed_other_rows(postgres) -> None:  # noqa: ANN001 - session fixture
    a = postgres.create_database("sample_a")
    b = postgres.create_database("sample_b")
    c = postgres.create_database("sample_c")
    _seed(a)
    _seed(b)
    _seed(c, seed=1)
    assert _fingerprint(a) == _fingerprint(b)
    differing = {t for t, h in _fingerprint(a).items() if _fingerprint(c)[t] != h}
    assert {"public.customers", "public.usage_events", "erp.cost_lines"} <= differing


def test_scale_and_shared_keys(fresh_database: str) -> None:
    product = seed_product(fresh_database, accounts=10, contracts_per_account=3, usage_days=5, dirty=False)
    erp = seed_erp(fresh_database, accounts=10, contracts_per_account=3, cost_lines_per_contract=2, dirty=False)
    assert product.dirty == [] and erp.dirty == []
    with psycopg.connect(fresh_database) as conn:
        n_contracts = conn.execute("SELECT count(*) FROM public.contracts").fetchone()[0]
        assert product.rows["public.usage_events"] == n_contracts * 5 * 3
        assert conn.execute("SELECT count(*) FROM public.usage_events").fetchone()[0] == n_contracts * 5 * 3
        # Both systems describe the same customers, and most contracts are in both.
        assert conn.execute(
            "SELECT count(*) FROM public.customers c JOIN erp.business_partners p ON p.account_key = c.customer_code"
        ).fetchone()[0] == 10
        shared = conn.execute("SELECT count(*) FROM public.contracts JOIN erp.contracts USING (contract_no)").fetchone()[0]
        erp_only = conn.execute(
            "SELECT count(*) FROM erp.contracts e WHERE NOT EXISTS (SELECT 1 FROM public.contracts p WHERE p.contract_no = e.contract_no)"
        ).fetchone()[0]
        assert shared >= 15 and shared + erp_only == erp.rows["erp.contracts"]
        # Every ERP contract and product contract belongs to a known account; no orphans in clean data.
        assert conn.execute(
            "SELECT count(*) FROM erp.contracts e LEFT JOIN erp.business_partners p ON p.account_key = e.account_key WHERE p.account_key IS NULL"
        ).fetchone()[0] == 0
        assert conn.execute(
            "SELECT count(*) FROM public.usage_events u LEFT JOIN public.contracts c USING (contract_no) WHERE c.id IS NULL"
        ).fetchone()[0] == 0
        # Japanese company names.
        names = [r[0] for r in conn.execute("SELECT name FROM public.customers")]
        assert all(any(k in n for k in ("株式会社", "有限会社", "合同会社")) for n in names)
        vendors = conn.execute("SELECT count(*) FROM erp.business_partners WHERE partner_type = 'vendor' AND account_key IS NULL").fetchone()[0]
        assert vendors == 8


@pytest.mark.dates
def test_dirty_rows_are_planted_as_listed(fresh_database: str) -> None:
    product = seed_product(fresh_database, accounts=4, contracts_per_account=2, usage_days=3)
    erp = seed_erp(fresh_database, accounts=4, contracts_per_account=2)
    codes = {d.expected_code for d in product.dirty + erp.dirty}
    assert codes == {"STRING_TOO_LONG", "MISSING_EXTERNAL_ID", "DUPLICATE_EXTERNAL_ID", "INVALID_FIELD",
                     "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"}
    with psycopg.connect(fresh_database) as conn:
        long_names = conn.execute(
            "SELECT customer_code, char_length(name), octet_length(name) FROM public.customers WHERE char_length(name) > 255 ORDER BY 1"
        ).fetchall()
        assert [r[0] for r in long_names] == ["A-90001", "A-90002"]
        japanese = long_names[1]
        assert japanese[1] < 300 and japanese[2] > 3 * 255  # over the limit in characters, far over in bytes
        # A Japanese name of exactly 255 characters (765 bytes) is planted too, and it is not a dirty row.
        assert conn.execute(
            "SELECT char_length(name), octet_length(name) FROM public.customers WHERE customer_code = 'A-90003'"
        ).fetchone() == (255, 765)
        assert "A-90003" not in {d.key for d in product.dirty}
        assert conn.execute("SELECT count(*) FROM public.customers WHERE customer_code IS NULL").fetchone()[0] == 1
        assert conn.execute("SELECT status FROM public.contracts WHERE contract_no = 'C-900001'").fetchone()[0] == "suspended"
        dup = next(d for d in product.dirty if d.expected_code == "DUPLICATE_EXTERNAL_ID")
        contract_no, day, metric = dup.key.split(":")
        assert conn.execute(
            "SELECT count(*) FROM public.usage_events WHERE contract_no = %s AND usage_date = %s AND metric = %s",
            (contract_no, day, metric),
        ).fetchone()[0] == 2
        assert conn.execute("SELECT count(*) FROM public.usage_events WHERE contract_no = 'C-999999'").fetchone()[0] == 1
        # Usage days end on the fixed end date whatever the local time zone (keys embed the day).
        assert conn.execute("SELECT max(usage_date)::text FROM public.usage_events").fetchone()[0] == "2025-06-30"
        assert conn.execute("SELECT count(*) FROM public.usage_events WHERE contract_no IS NULL").fetchone()[0] == 1
        cat = conn.execute("SELECT char_length(category) FROM erp.cost_lines WHERE cost_no = 'K-9000001'").fetchone()[0]
        assert cat > 80
        assert conn.execute("SELECT count(*) FROM erp.cost_lines WHERE cost_no = 'K-0000001'").fetchone()[0] == 2


def test_existing_tables_are_kept_unless_replace(fresh_database: str) -> None:
    seed_product(fresh_database, accounts=2, contracts_per_account=1, usage_days=1)
    with pytest.raises(SampleDataError, match="tables already exist: public.usage_events"):
        seed_product(fresh_database, accounts=2, contracts_per_account=1, usage_days=1)
    summary = seed_product(fresh_database, accounts=3, contracts_per_account=1, usage_days=2, replace=True, dirty=False)
    with psycopg.connect(fresh_database) as conn:
        assert conn.execute("SELECT count(*) FROM public.usage_events").fetchone()[0] == summary.rows["public.usage_events"]
    with pytest.raises(ValueError, match="usage_days=0"):
        seed_product(fresh_database, accounts=3, contracts_per_account=1, usage_days=0, replace=True)
