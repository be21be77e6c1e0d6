"""The sandbox's SQLite file: schema, one connection per thread, serialised write transactions.

Money is stored as integer cents, Actionstep timestamps as epoch seconds, Xero timestamps as
epoch milliseconds, dates as ISO text. Every list the APIs page through has an index that ends in
its sort order, so that a page is a short index walk even on 100,000s of rows.
"""

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS lenient_rules (name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS firms (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, orgkey TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL UNIQUE, connection_id TEXT NOT NULL, created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS participants (
    id INTEGER PRIMARY KEY, firm_id INTEGER NOT NULL, display_name TEXT NOT NULL,
    xero_contact_id TEXT NOT NULL, modified INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS participants_modified ON participants (firm_id, modified, id);
CREATE INDEX IF NOT EXISTS participants_firm ON participants (firm_id, id);
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY, firm_id INTEGER NOT NULL, name TEXT NOT NULL,
    reference TEXT NOT NULL, modified INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_modified ON actions (firm_id, modified, id);
CREATE INDEX IF NOT EXISTS actions_firm ON actions (firm_id, id);
CREATE TABLE IF NOT EXISTS bills (
    id INTEGER PRIMARY KEY, firm_id INTEGER NOT NULL, status TEXT NOT NULL,
    our_reference TEXT NOT NULL, their_reference TEXT NOT NULL, currency TEXT NOT NULL,
    invoice_date TEXT NOT NULL, due_date TEXT NOT NULL, total_exclusive INTEGER NOT NULL,
    total_sales_tax INTEGER NOT NULL, total_inclusive INTEGER NOT NULL,
    total_paid INTEGER NOT NULL, created INTEGER NOT NULL, modified INTEGER NOT NULL,
    deleted INTEGER, division_id INTEGER NOT NULL, action_id INTEGER NOT NULL,
    participant_id INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS bills_modified ON bills (firm_id, modified, id);
CREATE INDEX IF NOT EXISTS bills_firm ON bills (firm_id, id);
CREATE INDEX IF NOT EXISTS bills_reference ON bills (firm_id, our_reference);
CREATE TABLE IF NOT EXISTS billpayments (
    id INTEGER PRIMARY KEY, firm_id INTEGER NOT NULL, bill_id INTEGER NOT NULL,
    status TEXT NOT NULL, payment_date TEXT NOT NULL, amount INTEGER NOT NULL,
    reference TEXT NOT NULL, reason TEXT, created INTEGER NOT NULL, modified INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS billpayments_modified ON billpayments (firm_id, modified, id);
CREATE INDEX IF NOT EXISTS billpayments_firm ON billpayments (firm_id, id);
CREATE INDEX IF NOT EXISTS billpayments_bill ON billpayments (bill_id);
CREATE TABLE IF NOT EXISTS xeroinvoicelinks (
    id INTEGER PRIMARY KEY, firm_id INTEGER NOT NULL, bill_id INTEGER NOT NULL UNIQUE,
    link_status TEXT NOT NULL, xero_invoice_id TEXT NOT NULL, xero_invoice_number TEXT NOT NULL,
    linked INTEGER, unlinked INTEGER, modified INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS xeroinvoicelinks_modified ON xeroinvoicelinks (firm_id, modified, id);
CREATE INDEX IF NOT EXISTS xeroinvoicelinks_firm ON xeroinvoicelinks (firm_id, id);
CREATE INDEX IF NOT EXISTS xeroinvoicelinks_status
    ON xeroinvoicelinks (firm_id, link_status, modified, id);
CREATE TABLE IF NOT EXISTS xeropaymentlinks (
    id INTEGER PRIMARY KEY, firm_id INTEGER NOT NULL, billpayment_id INTEGER NOT NULL UNIQUE,
    bill_id INTEGER NOT NULL, link_status TEXT NOT NULL, xero_payment_id TEXT NOT NULL,
    linked INTEGER, unlinked INTEGER, modified INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS xeropaymentlinks_modified ON xeropaymentlinks (firm_id, modified, id);
CREATE INDEX IF NOT EXISTS xeropaymentlinks_firm ON xeropaymentlinks (firm_id, id);
CREATE INDEX IF NOT EXISTS xeropaymentlinks_status
    ON xeropaymentlinks (firm_id, link_status, modified, id);
CREATE INDEX IF NOT EXISTS xeropaymentlinks_bill ON xeropaymentlinks (bill_id, link_status);
CREATE TABLE IF NOT EXISTS xero_invoices (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, tenant_id TEXT NOT NULL,
    number TEXT NOT NULL, reference TEXT NOT NULL, contact_id TEXT NOT NULL,
    contact_name TEXT NOT NULL, date TEXT NOT NULL, due_date TEXT NOT NULL, status TEXT NOT NULL,
    sub_total INTEGER NOT NULL, total_tax INTEGER NOT NULL, total INTEGER NOT NULL,
    amount_paid INTEGER NOT NULL, amount_credited INTEGER NOT NULL, currency TEXT NOT NULL,
    fully_paid_on TEXT, updated_ms INTEGER NOT NULL, created_by TEXT
);
CREATE INDEX IF NOT EXISTS xero_invoices_number ON xero_invoices (tenant_id, number);
CREATE INDEX IF NOT EXISTS xero_invoices_updated ON xero_invoices (tenant_id, updated_ms);
CREATE TABLE IF NOT EXISTS xero_payments (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, tenant_id TEXT NOT NULL,
    invoice_id TEXT NOT NULL, date TEXT NOT NULL, amount INTEGER NOT NULL,
    reference TEXT NOT NULL, status TEXT NOT NULL, batch_payment_id TEXT,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS xero_payments_invoice ON xero_payments (invoice_id);
CREATE INDEX IF NOT EXISTS xero_payments_updated ON xero_payments (tenant_id, updated_ms);
-- What GET /Organisation answers for a tenant; a tenant without a row has the defaults of
-- xero_query.organisation_defaults.
CREATE TABLE IF NOT EXISTS xero_organisations (
    tenant_id TEXT PRIMARY KEY, organisation_id TEXT NOT NULL, short_code TEXT NOT NULL,
    period_lock_date TEXT, end_of_year_lock_date TEXT, timezone TEXT NOT NULL,
    base_currency TEXT NOT NULL, country_code TEXT NOT NULL,
    invoice_numbers TEXT NOT NULL DEFAULT 'unique'
);
-- Credit notes, prepayments and overpayments (kind CREDITNOTE, PREPAYMENT, OVERPAYMENT) and
-- their allocations to invoices; a deleted allocation keeps its row with deleted_ms set.
CREATE TABLE IF NOT EXISTS xero_credits (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, tenant_id TEXT NOT NULL, kind TEXT NOT NULL,
    number TEXT NOT NULL, reference TEXT NOT NULL, contact_id TEXT NOT NULL,
    contact_name TEXT NOT NULL, date TEXT NOT NULL, status TEXT NOT NULL, total INTEGER NOT NULL,
    total_tax INTEGER NOT NULL, currency TEXT NOT NULL, updated_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS xero_credits_tenant ON xero_credits (tenant_id, kind, seq);
CREATE TABLE IF NOT EXISTS xero_allocations (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, tenant_id TEXT NOT NULL,
    credit_id TEXT NOT NULL, invoice_id TEXT NOT NULL, amount INTEGER NOT NULL, date TEXT NOT NULL,
    deleted_ms INTEGER
);
CREATE INDEX IF NOT EXISTS xero_allocations_invoice ON xero_allocations (invoice_id);
CREATE INDEX IF NOT EXISTS xero_allocations_credit ON xero_allocations (credit_id);
-- History and notes of invoices and payments (GET/PUT .../History), oldest first.
CREATE TABLE IF NOT EXISTS xero_history (
    seq INTEGER PRIMARY KEY, tenant_id TEXT NOT NULL, record_id TEXT NOT NULL,
    changes TEXT NOT NULL, details TEXT NOT NULL, user TEXT NOT NULL, at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS xero_history_record ON xero_history (record_id, seq);
-- Tenants an app (client id) has been disconnected from: DELETE /connections/{id}, or the
-- revocation of its refresh token. Authorising the app again connects them again.
CREATE TABLE IF NOT EXISTS xero_disconnections (
    client_id TEXT NOT NULL, tenant_id TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (client_id, tenant_id)
);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY, kind TEXT NOT NULL, api TEXT NOT NULL, firm_id INTEGER,
    client_id TEXT NOT NULL, client_secret TEXT, scope TEXT NOT NULL,
    created_at REAL NOT NULL, expires_at REAL NOT NULL, revoked_at REAL, grant_id TEXT
);
CREATE TABLE IF NOT EXISTS auth_codes (
    code TEXT PRIMARY KEY, api TEXT NOT NULL, firm_id INTEGER, client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL, scope TEXT NOT NULL, code_challenge TEXT,
    expires_at REAL NOT NULL, used_at REAL, nonce TEXT
);
"""

# The request log lives in a file of its own: logging a read must not look like a change to
# the data (see Store.count).
LOG_SCHEMA = """
CREATE TABLE IF NOT EXISTS log.request_log (
    id INTEGER PRIMARY KEY, api TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL,
    query TEXT NOT NULL, status INTEGER, fault TEXT, replay INTEGER NOT NULL DEFAULT 0,
    acted INTEGER NOT NULL DEFAULT 0,
    body TEXT, idempotency_key TEXT, client_id TEXT, tenant_id TEXT, at TEXT NOT NULL,
    duration_ms REAL NOT NULL
);
"""

# Columns added since the first release: a sandbox file made before them gets them on opening
# (CREATE TABLE IF NOT EXISTS leaves an existing table as it was).
ADDED_COLUMNS = (
    ("tokens", "grant_id", "TEXT"),
    ("auth_codes", "nonce", "TEXT"),
    ("xero_invoices", "created_by", "TEXT"),
    ("log.request_log", "acted", "INTEGER NOT NULL DEFAULT 0"),
)

DATA_TABLES = (
    "lenient_rules",
    "firms",
    "participants",
    "actions",
    "bills",
    "billpayments",
    "xeroinvoicelinks",
    "xeropaymentlinks",
    "xero_invoices",
    "xero_payments",
    "xero_organisations",
    "xero_credits",
    "xero_allocations",
    "xero_history",
    "xero_disconnections",
    "tokens",
    "auth_codes",
    "log.request_log",
)


class Store:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.log_path = self.path.with_name(f"{self.path.stem}-requests{self.path.suffix}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        # One writer at a time inside this process; BEGIN IMMEDIATE and busy_timeout cover a
        # second process (the seed command) writing to the same file.
        self._write_lock = threading.RLock()
        # Bumped by every data write of this process; with SQLite's data_version (commits of
        # other processes) it tells when a cached count may be stale.
        self.generation = 0
        with self._write_lock:
            conn = self.conn()
            for table, column, declaration in ADDED_COLUMNS:
                schema, _, name = table.rpartition(".")
                pragma = f"PRAGMA {schema + '.' if schema else ''}table_info({name})"
                known = {row["name"] for row in conn.execute(pragma)}
                if known and column not in known:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            conn.executescript(SCHEMA + LOG_SCHEMA)  # each statement commits on its own

    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("ATTACH DATABASE ? AS log", (str(self.log_path),))
            for pragma in (
                "journal_mode = WAL",
                "log.journal_mode = WAL",
                "synchronous = NORMAL",
                "log.synchronous = NORMAL",
                "busy_timeout = 30000",
                "cache_size = -65536",
                "temp_store = MEMORY",
            ):
                conn.execute(f"PRAGMA {pragma}")
            self._local.conn = conn
            self._local.depth = 0
            self._local.counts = {}
        return conn

    @contextmanager
    def write(self, data: bool = True):
        """A write transaction; nested uses join the outer one. `data=False`: it writes the
        request log only, which no cached count depends on."""
        conn = self.conn()
        with self._write_lock:
            if self._local.depth:
                self._local.depth += 1
                try:
                    yield conn
                finally:
                    self._local.depth -= 1
                return
            conn.execute("BEGIN IMMEDIATE")
            self._local.depth = 1
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")
                if data:
                    self.generation += 1
            finally:
                self._local.depth = 0

    def count(self, sql: str, params) -> int:
        """A COUNT query's answer, computed again only once the data may have changed: a full
        sync pages through the same filter hundreds of times, and counting 100,000 rows costs
        more than serving a page."""
        conn = self.conn()
        stamp = (self.generation, conn.execute("PRAGMA main.data_version").fetchone()[0])
        key = (sql, tuple(params))
        cached = self._local.counts.get(key)
        if cached and cached[0] == stamp:
            return cached[1]
        if len(self._local.counts) > 1000:
            self._local.counts.clear()
        value = conn.execute(sql, params).fetchone()[0]
        self._local.counts[key] = (stamp, value)
        return value

    def reset(self) -> None:
        with self.write() as conn:
            for table in DATA_TABLES:
                conn.execute(f"DELETE FROM {table}")  # noqa: S608 (fixed table names)

    def is_empty(self) -> bool:
        return self.conn().execute("SELECT 1 FROM firms LIMIT 1").fetchone() is None
