"""Sample product and ERP databases: the source side of the demo, the tests and the benchmark.

Product database (schema `public`): `customers`, `contracts` (plan, status, fees, unit price) and
`usage_events` (metered usage per contract, day and metric). ERP database (schema `erp`):
`business_partners` (customers and vendors), `contracts` (contract amount) and `cost_lines` (outsourcing and
other costs per contract). Both describe the same world: they share account keys and, for most contracts,
contract numbers, so both feed Salesforce's Account and Contract.

Everything is derived from `seed` and the scale arguments (never from the clock), so two runs give the same
rows. Large tables are written with COPY. A few dirty rows are planted on purpose; `SeedSummary.dirty` lists
each with the reject it must end up as.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql

DEFAULT_END_DATE = date(2025, 6, 30)
"""The last usage day; fixed so that the data does not depend on when it is generated."""
BASE_TIMESTAMP = datetime(2025, 7, 1, 0, 0, tzinfo=UTC)

METRICS = ("api_calls", "storage_gb", "seats")
PLANS = {"starter": ("0.0500", "0.5000", "1200.0000"), "growth": ("0.0400", "0.4000", "1000.0000"), "enterprise": ("0.0300", "0.3000", "900.0000")}
"""Unit price per metric (api_calls, storage_gb, seats) for each plan."""
PRODUCT_STATUSES = ("active", "active", "active", "draft", "pending")
INDUSTRIES = ("saas", "manufacturing", "retail", "finance", "other")
COST_CATEGORIES = ("外注費", "サーバー費", "ライセンス費", "保守費", "交通費")

_PREFIXES = ("株式会社", "有限会社", "合同会社")
_STEMS = (
    "山田", "佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "中村", "小林", "加藤",
    "さくら", "みらい", "あおば", "ひかり", "富士", "東海", "北斗", "大和", "青空", "若葉",
)
_SUFFIXES = ("商事", "製作所", "システムズ", "テクノロジー", "物産", "工業", "ソリューションズ", "ホールディングス", "電機", "食品")
_VENDOR_STEMS = ("開発", "デザイン", "クラウド", "ネットワーク", "データ")

PRODUCT_DDL = """
CREATE TABLE public.customers (
    id            bigint PRIMARY KEY,
    customer_code text,
    name          text NOT NULL,
    industry      text,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE TABLE public.contracts (
    id            bigint PRIMARY KEY,
    contract_no   text NOT NULL,
    customer_code text,
    plan          text NOT NULL,
    status        text NOT NULL,
    start_date    date NOT NULL,
    term_months   integer NOT NULL,
    monthly_fee   numeric(12,2) NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE TABLE public.contract_prices (
    contract_no   text NOT NULL,
    metric        text NOT NULL,
    unit_price    numeric(12,4) NOT NULL,
    PRIMARY KEY (contract_no, metric)
);
CREATE TABLE public.usage_events (
    id            bigint PRIMARY KEY,
    contract_no   text,
    usage_date    date NOT NULL,
    metric        text NOT NULL,
    quantity      numeric(16,4) NOT NULL,
    unit_price    numeric(12,4),
    updated_at    timestamptz NOT NULL
);
CREATE INDEX usage_events_updated_at ON public.usage_events (updated_at, id);
"""

ERP_DDL = """
CREATE SCHEMA IF NOT EXISTS erp;
CREATE TABLE erp.business_partners (
    partner_code  text PRIMARY KEY,
    account_key   text,
    partner_type  text NOT NULL CHECK (partner_type IN ('customer', 'vendor')),
    partner_name  text NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE TABLE erp.contracts (
    contract_no     text PRIMARY KEY,
    account_key     text NOT NULL,
    signed_date     date NOT NULL,
    term_months     integer NOT NULL,
    contract_amount numeric(14,2) NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE TABLE erp.cost_lines (
    id          bigint PRIMARY KEY,
    cost_no     text,
    contract_no text,
    vendor      text NOT NULL,
    category    text NOT NULL,
    amount      numeric(14,2) NOT NULL,
    cost_date   date NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX cost_lines_updated_at ON erp.cost_lines (updated_at, id);
"""

PRODUCT_TABLES = ("public.usage_events", "public.contract_prices", "public.contracts", "public.customers")
ERP_TABLES = ("erp.cost_lines", "erp.contracts", "erp.business_partners")


class SampleDataError(RuntimeError):
    """The sample tables cannot be created (e.g. they exist and replace was not asked for)."""


@dataclass(frozen=True)
class DirtyRow:
    """A row planted on purpose that Passwork must reject rather than write."""

    table: str
    key: str | None
    """The External ID value the row produces (None when the key itself is missing)."""
    problem: str
    expected_code: str


@dataclass
class SeedSummary:
    """What was written: rows per table and the planted dirty rows."""

    rows: dict[str, int] = field(default_factory=dict)
    dirty: list[DirtyRow] = field(default_factory=list)


@dataclass(frozen=True)
class _Customer:
    code: str
    name: str
    industry: str


@dataclass(frozen=True)
class _Contract:
    number: str
    customer: str
    plan: str
    status: str
    start: date
    term: int
    monthly_fee: str
    trend: float
    """Monthly growth of usage: positive contracts are upsell candidates, negative ones churn risks."""
    base: tuple[float, float, float]
    in_erp: bool
    in_product: bool


def account_key(n: int) -> str:
    return f"A-{n:05d}"


def contract_key(n: int) -> str:
    return f"C-{n:06d}"


def _company_name(rng: random.Random) -> str:
    prefix, stem, suffix = rng.choice(_PREFIXES), rng.choice(_STEMS), rng.choice(_SUFFIXES)
    return f"{prefix}{stem}{suffix}" if rng.random() < 0.7 else f"{stem}{suffix}{prefix}"


def _world(accounts: int, contracts_per_account: int, seed: int) -> tuple[list[_Customer], list[_Contract]]:
    """The shared customers and contracts both databases are drawn from."""
    rng = random.Random(seed)
    customers = []
    for i in range(1, accounts + 1):
        customers.append(_Customer(account_key(i), _company_name(rng), rng.choice(INDUSTRIES)))
    contracts = []
    n = 0
    for c in customers:
        for _ in range(contracts_per_account):
            n += 1
            plan = rng.choice(tuple(PLANS))
            # Most contracts live in both systems; a few are product-only (trials) or ERP-only (legacy).
            roll = rng.random()
            in_product, in_erp = (True, True) if roll < 0.8 else ((True, False) if roll < 0.9 else (False, True))
            contracts.append(
                _Contract(
                    number=contract_key(n),
                    customer=c.code,
                    plan=plan,
                    status=rng.choice(PRODUCT_STATUSES),
                    start=DEFAULT_END_DATE - timedelta(days=rng.randrange(90, 900)),
                    term=rng.choice((12, 12, 24, 36)),
                    monthly_fee=f"{rng.choice((30000, 50000, 120000, 300000))}.00",
                    trend=rng.uniform(-0.08, 0.10),
                    base=(rng.uniform(500, 20000), rng.uniform(5, 500), float(rng.randrange(3, 200))),
                    in_erp=in_erp,
                    in_product=in_product,
                )
            )
    return customers, contracts


def seed_product(
    url: str,
    *,
    accounts: int = 20,
    contracts_per_account: int = 2,
    usage_days: int = 30,
    seed: int = 0,
    end_date: date = DEFAULT_END_DATE,
    dirty: bool = True,
    replace: bool = False,
) -> SeedSummary:
    """Create the product schema (customers, contracts, contract_prices, usage_events) in `url` and fill it.

    Usage rows: one per product contract, day (the `usage_days` days up to `end_date`) and metric, so the
    row count is about accounts x contracts_per_account x usage_days x 3. With `dirty`, planted rows cover a
    usage row for an unknown contract, a null and a duplicate usage key, a name over 255 characters (ASCII and
    Japanese), a customer without a key and a contract status outside the Status value map; plus one clean
    edge row, customer A-90003, whose Japanese name is exactly 255 characters (765 bytes) and must be written.
    """
    _check_scale(accounts=accounts, contracts_per_account=contracts_per_account, usage_days=usage_days)
    customers, contracts = _world(accounts, contracts_per_account, seed)
    rng = random.Random(seed * 7919 + 1)
    summary = SeedSummary()
    with psycopg.connect(url, autocommit=False) as conn:
        _prepare(conn, PRODUCT_TABLES, PRODUCT_DDL, replace)

        customer_rows = []
        for i, c in enumerate(customers, start=1):
            ts = BASE_TIMESTAMP - timedelta(days=400 - i % 300, seconds=i)
            customer_rows.append((i, c.code, c.name, c.industry, ts, ts))
        contract_rows = []
        price_rows = []
        product_contracts = [c for c in contracts if c.in_product]
        for i, c in enumerate(product_contracts, start=1):
            ts = BASE_TIMESTAMP - timedelta(days=200 - i % 150, seconds=i)
            contract_rows.append((i, c.number, c.customer, c.plan, c.status, c.start, c.term, c.monthly_fee, ts))
            for metric, price in zip(METRICS, PLANS[c.plan]):
                price_rows.append((c.number, metric, price))

        if dirty:
            nxt = len(customer_rows) + 1
            long_ascii = "Global Manufacturing and Trading Company " * 8  # 328 characters
            long_japanese = "株式会社" + "日本橋グローバル商事" * 26  # 264 characters, 792 bytes
            ts = BASE_TIMESTAMP - timedelta(days=1)
            customer_rows += [
                (nxt, "A-90001", long_ascii.strip(), "other", ts, ts),
                (nxt + 1, "A-90002", long_japanese, "retail", ts, ts),
                (nxt + 2, None, "株式会社キー未登録", "other", ts, ts),
                # Not dirty: 255 characters but 765 bytes. Salesforce counts characters, so this must be written.
                (nxt + 3, "A-90003", "株式会社" + "東京" * 125 + "商", "finance", ts, ts),
            ]
            summary.dirty += [
                DirtyRow("public.customers", "A-90001", "name longer than 255 characters", "STRING_TOO_LONG"),
                DirtyRow("public.customers", "A-90002", "Japanese name longer than 255 characters", "STRING_TOO_LONG"),
                DirtyRow("public.customers", None, "customer without customer_code", "MISSING_EXTERNAL_ID"),
            ]
            bad = product_contracts[0]
            contract_rows.append(
                (len(contract_rows) + 1, "C-900001", bad.customer, bad.plan, "suspended", bad.start, 12, "1000.00", ts)
            )
            summary.dirty.append(
                DirtyRow("public.contracts", "C-900001", "status 'suspended' has no Salesforce Status", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
            )

        _copy(conn, "public.customers", ("id", "customer_code", "name", "industry", "created_at", "updated_at"), customer_rows)
        _copy(conn, "public.contracts", ("id", "contract_no", "customer_code", "plan", "status", "start_date", "term_months", "monthly_fee", "updated_at"), contract_rows)
        _copy(conn, "public.contract_prices", ("contract_no", "metric", "unit_price"), price_rows)
        summary.rows.update(
            {"public.customers": len(customer_rows), "public.contracts": len(contract_rows), "public.contract_prices": len(price_rows)}
        )

        usage_count = _copy_usage(conn, product_contracts, usage_days, end_date, rng)
        if dirty:
            last = usage_count
            day = end_date
            ts = BASE_TIMESTAMP + timedelta(seconds=1)
            first = product_contracts[0]
            extra = [
                (last + 1, "C-999999", day, "api_calls", "10.0000", "0.0500", ts),
                (last + 2, None, day, "api_calls", "5.0000", "0.0500", ts),
                # The same contract, day and metric as an existing row: a duplicate usage key.
                (last + 3, first.number, day, "seats", "1.0000", PLANS[first.plan][2], ts),
            ]
            _copy(conn, "public.usage_events", ("id", "contract_no", "usage_date", "metric", "quantity", "unit_price", "updated_at"), extra)
            usage_count += len(extra)
            summary.dirty += [
                DirtyRow("public.usage_events", f"C-999999:{day.isoformat()}:api_calls", "usage for an unknown contract", "INVALID_FIELD"),
                DirtyRow("public.usage_events", None, "usage row without contract_no", "MISSING_EXTERNAL_ID"),
                DirtyRow("public.usage_events", f"{first.number}:{day.isoformat()}:seats", "two usage rows with the same key", "DUPLICATE_EXTERNAL_ID"),
            ]
        summary.rows["public.usage_events"] = usage_count
        conn.execute("ANALYZE public.usage_events")
        conn.commit()
    return summary


def seed_erp(
    url: str,
    *,
    accounts: int = 20,
    contracts_per_account: int = 2,
    cost_lines_per_contract: int = 3,
    vendors: int = 8,
    seed: int = 0,
    end_date: date = DEFAULT_END_DATE,
    dirty: bool = True,
    replace: bool = False,
) -> SeedSummary:
    """Create the ERP schema `erp` (business_partners, contracts, cost_lines) in `url` and fill it.

    Use the same `accounts`, `contracts_per_account` and `seed` as `seed_product` so the two databases share
    account keys and contract numbers. With `dirty`, planted rows cover a cost category over 80 characters
    (Japanese), a cost line without a key, one for an unknown contract and a duplicate cost key.
    """
    _check_scale(accounts=accounts, contracts_per_account=contracts_per_account, usage_days=1)
    customers, contracts = _world(accounts, contracts_per_account, seed)
    rng = random.Random(seed * 104729 + 2)
    summary = SeedSummary()
    with psycopg.connect(url, autocommit=False) as conn:
        _prepare(conn, ERP_TABLES, ERP_DDL, replace)
        partner_rows = []
        for i, c in enumerate(customers, start=1):
            ts = BASE_TIMESTAMP - timedelta(days=300 - i % 200, seconds=i)
            # The ERP keeps its own spelling of some names; ERP owns Account.Name, so these win in Salesforce.
            name = c.name if i % 5 else c.name.replace("株式会社", "(株)")
            partner_rows.append((f"BP-{i:05d}", c.code, "customer", name, ts))
        vendor_names = []
        for v in range(1, vendors + 1):
            name = f"株式会社{rng.choice(_STEMS)}{rng.choice(_VENDOR_STEMS)}"
            vendor_names.append(name)
            partner_rows.append((f"BP-V{v:04d}", None, "vendor", name, BASE_TIMESTAMP - timedelta(days=500, seconds=v)))

        erp_contracts = [c for c in contracts if c.in_erp]
        contract_rows = []
        for i, c in enumerate(erp_contracts, start=1):
            ts = BASE_TIMESTAMP - timedelta(days=180 - i % 120, seconds=i)
            amount = int(c.monthly_fee.split(".")[0]) * c.term
            # The signed date in the ERP is the contract's legal start; it can differ from the product's go-live.
            signed = c.start - timedelta(days=rng.choice((0, 0, 0, 7, 14)))
            contract_rows.append((c.number, c.customer, signed, c.term, f"{amount}.00", ts))

        cost_rows = []
        n = 0
        for c in erp_contracts:
            for _ in range(cost_lines_per_contract):
                n += 1
                cost_date = end_date - timedelta(days=rng.randrange(0, 180))
                amount = f"{rng.randrange(5, 500) * 1000}.00"
                ts = BASE_TIMESTAMP - timedelta(days=(end_date - cost_date).days, seconds=n)
                cost_rows.append((n, f"K-{n:07d}", c.number, rng.choice(vendor_names), rng.choice(COST_CATEGORIES), amount, cost_date, ts))

        if dirty:
            ts = BASE_TIMESTAMP + timedelta(seconds=1)
            first = erp_contracts[0].number
            long_category = "システム開発委託費用(" + "追加要件対応・" * 12 + ")"  # 96 characters
            cost_rows += [
                (n + 1, "K-9000001", first, vendor_names[0], long_category, "12000.00", end_date, ts),
                (n + 2, None, first, vendor_names[0], "外注費", "3000.00", end_date, ts),
                (n + 3, "K-9000003", "C-999999", vendor_names[0], "外注費", "4000.00", end_date, ts),
                (n + 4, "K-0000001", first, vendor_names[0], "外注費", "5000.00", end_date, ts),
            ]
            summary.dirty += [
                DirtyRow("erp.cost_lines", "K-9000001", "Japanese category longer than 80 characters", "STRING_TOO_LONG"),
                DirtyRow("erp.cost_lines", None, "cost line without cost_no", "MISSING_EXTERNAL_ID"),
                DirtyRow("erp.cost_lines", "K-9000003", "cost for an unknown contract", "INVALID_FIELD"),
                DirtyRow("erp.cost_lines", "K-0000001", "two cost lines with the same cost_no", "DUPLICATE_EXTERNAL_ID"),
            ]

        _copy(conn, "erp.business_partners", ("partner_code", "account_key", "partner_type", "partner_name", "updated_at"), partner_rows)
        _copy(conn, "erp.contracts", ("contract_no", "account_key", "signed_date", "term_months", "contract_amount", "updated_at"), contract_rows)
        _copy(conn, "erp.cost_lines", ("id", "cost_no", "contract_no", "vendor", "category", "amount", "cost_date", "updated_at"), cost_rows)
        summary.rows.update({"erp.business_partners": len(partner_rows), "erp.contracts": len(contract_rows), "erp.cost_lines": len(cost_rows)})
        conn.commit()
    return summary


def _check_scale(**values: int) -> None:
    bad = [f"{k}={v}" for k, v in values.items() if not isinstance(v, int) or v < 1]
    if bad:
        raise ValueError(f"sample data scale must be positive whole numbers: {', '.join(bad)}")


def _prepare(conn: psycopg.Connection, tables: Sequence[str], ddl: str, replace: bool) -> None:
    existing = [
        t
        for t in tables
        if conn.execute("SELECT to_regclass(%s)", (t,)).fetchone()[0] is not None  # type: ignore[index]
    ]
    if existing:
        if not replace:
            raise SampleDataError(f"tables already exist: {', '.join(existing)}; pass replace=True to recreate them")
        for t in tables:
            schema, name = t.split(".")
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(schema, name)))
    conn.execute(ddl)


def _copy(conn: psycopg.Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    schema, name = table.split(".")
    stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(schema, name), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    with conn.cursor().copy(stmt) as copy:
        for row in rows:
            copy.write_row(row)


def _copy_usage(conn: psycopg.Connection, contracts: Sequence[_Contract], days: int, end_date: date, rng: random.Random) -> int:
    """Write the usage rows as COPY text in large blocks (a million rows take seconds, not minutes)."""
    stmt = "COPY public.usage_events (id, contract_no, usage_date, metric, quantity, unit_price, updated_at) FROM STDIN"
    first_day = end_date - timedelta(days=days - 1)
    day_text = [(first_day + timedelta(days=d)).isoformat() for d in range(days)]
    base_ts = BASE_TIMESTAMP - timedelta(days=days)
    stamp_text = [(base_ts + timedelta(days=d)).strftime("%Y-%m-%d %H:%M:%S") for d in range(days)]
    n = 0
    uniform = rng.random
    with conn.cursor().copy(stmt) as copy:
        buf = io.StringIO()
        for c in contracts:
            prices = PLANS[c.plan]
            growth = (1.0 + c.trend) ** (1 / 30)
            for d in range(days):
                factor = growth ** d
                for m, metric in enumerate(METRICS):
                    n += 1
                    qty = c.base[m] * factor * (0.85 + 0.3 * uniform())
                    qty_text = f"{round(qty):d}.0000" if m != 1 else f"{qty:.4f}"
                    # Rows of one day differ in their microseconds, so a cursor on updated_at rarely meets ties.
                    buf.write(
                        f"{n}\t{c.number}\t{day_text[d]}\t{metric}\t{qty_text}\t{prices[m]}\t{stamp_text[d]}.{n % 1000000:06d}+00\n"
                    )
            if buf.tell() > 8_000_000:
                copy.write(buf.getvalue())
                buf = io.StringIO()
        copy.write(buf.getvalue())
    return n
