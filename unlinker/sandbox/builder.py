"""Build a firm exactly as a test needs it, and save it in one transaction.

    firm = FirmBuilder("Smith & Jones")
    bill = firm.add_bill("1100.00")                      # approved, linked, AUTHORISED in Xero
    firm.add_payment(bill, "100.00", batch="B1")          # linked, part of a Xero batch payment
    orphan = firm.add_bill("220.00", link="Unlinked")     # unlinked, its Xero copy still live
    firm.add_bill("330.00", allocations=[{"kind": "CREDITNOTE", "amount": "30.00"}])
    firm.save(store)                                      # ids are filled in: bill.id, bill.xero.id

Whatever is not given is derived the way the integration would have left it: an approved bill
is linked and has a Xero copy whose status follows its payments (AUTHORISED or PAID); a payment
on a linked bill is linked and has a Xero payment. The seed builds its random firms with this
class too, so every anomaly a test can build is one the demo data can contain.
"""

import random
import re
import time as time_module
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from . import clock, domain
from .web import to_cents

DERIVED = object()  # "as the integration would have left it"
XERO_STATUSES = (*domain.INVOICE_STATUSES, "MISSING")  # MISSING: the link points at nothing
# A build holds the sandbox's write lock while it saves: it gives up (and changes nothing) past
# this many seconds, so that a huge or runaway build cannot stall the APIs.
SAVE_SECONDS = 20.0
INVOICE_NUMBER_RULES = ("unique", "duplicates")


class BuildTooLong(ValueError):
    pass


@dataclass(eq=False)
class Contact:
    name: str
    xero_contact_id: str
    id: int | None = None


@dataclass(eq=False)
class Matter:
    name: str
    reference: str
    client: Contact
    id: int | None = None


@dataclass(eq=False)
class XeroPayment:
    id: str
    amount: int
    date: str
    reference: str
    status: str
    batch_payment_id: str | None
    updated_ms: int = 0


@dataclass(eq=False)
class XeroAllocation:
    """A credit note, prepayment or overpayment (its own document) allocated to an invoice."""

    id: str
    credit_id: str
    kind: str  # CREDITNOTE, PREPAYMENT or OVERPAYMENT
    amount: int
    date: str
    unallocated: int = 0  # what the document has left to allocate


@dataclass(eq=False)
class XeroInvoice:
    id: str
    status: str | None  # None: AUTHORISED or PAID, from its payments
    total: int
    total_tax: int
    payments: list[XeroPayment] = field(default_factory=list)
    allocations: list[XeroAllocation] = field(default_factory=list)

    @property
    def amount_paid(self) -> int:
        return sum(p.amount for p in self.payments if p.status == "AUTHORISED")

    @property
    def amount_credited(self) -> int:
        return sum(a.amount for a in self.allocations)


@dataclass(eq=False)
class Payment:
    bill: "Bill"
    amount: int
    date: str
    reference: str
    status: str
    reason: str | None
    link: str | None
    xero: XeroPayment | None
    id: int | None = None
    link_id: int | None = None


@dataclass(eq=False)
class Bill:
    number: str
    status: str
    total: int
    tax: int
    matter: Matter
    invoice_date: str
    reference: str
    link: str | None
    xero: XeroInvoice | None  # the copy the link points at
    xero_invoice_id: str | None  # differs from xero.id only when the copy is MISSING
    duplicate: XeroInvoice | None = None  # an older live copy with the same number
    payments: list[Payment] = field(default_factory=list)
    id: int | None = None
    link_id: int | None = None

    @property
    def total_paid(self) -> int:
        return sum(p.amount for p in self.payments if p.status == domain.ACTIVE)


class FirmBuilder:
    def __init__(
        self,
        name: str = "Demo Law Firm",
        *,
        rng=None,
        anchor: int | None = None,
        period_lock_date: str | None = None,
        end_of_year_lock_date: str | None = None,
        timezone: str = "EAUSTRALIASTANDARDTIME",
        base_currency: str = "AUD",
        invoice_numbers: str = "unique",
    ):
        """The Xero organisation's settings (GET /Organisation): lock dates (ISO dates),
        time zone and base currency, and whether Xero refuses a taken invoice number
        (`unique`, as its description says) or lets it be used twice (`duplicates`)."""
        if invoice_numbers not in INVOICE_NUMBER_RULES:
            raise ValueError(f"invoice_numbers is one of {', '.join(INVOICE_NUMBER_RULES)}")
        self.organisation = {
            "period_lock_date": _iso_date_or_none(period_lock_date),
            "end_of_year_lock_date": _iso_date_or_none(end_of_year_lock_date),
            "timezone": timezone,
            "base_currency": base_currency,
            "invoice_numbers": invoice_numbers,
        }
        self.name = name
        self.rng = rng or random.Random()  # noqa: S311 (demo data, not secrets)
        # Built records were last changed a minute ago, so that whatever a test then does
        # through the APIs comes strictly later (timestamps have one-second resolution).
        self.anchor = anchor or clock.now_s() - 60
        self.tenant_id = self.guid()
        self.connection_id = self.guid()
        self.contacts: list[Contact] = []
        self.matters: list[Matter] = []
        self.bills: list[Bill] = []
        self._batches: dict[str, str] = {}
        self.firm: dict | None = None

    def guid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    # --- building -----------------------------------------------------------------------------

    def add_contact(self, name: str | None = None) -> Contact:
        contact = Contact(name or f"Client {len(self.contacts) + 1}", self.guid())
        self.contacts.append(contact)
        return contact

    def add_matter(self, name: str | None = None, client: Contact | None = None) -> Matter:
        client = client or self.add_contact()
        number = len(self.matters) + 1
        matter = Matter(name or f"{client.name} - matter {number}", f"M{number:05d}", client)
        self.matters.append(matter)
        return matter

    def add_bill(
        self,
        total="1100.00",
        *,
        tax=None,
        status: str = domain.OPEN,
        matter: Matter | None = None,
        number: str | None = None,
        invoice_date: str | None = None,
        reference: str = "",
        link=DERIVED,
        xero_status=DERIVED,
        xero_total=None,
        amount_credited="0",
        allocations: list[dict] | None = None,
        duplicate: bool = False,
    ) -> Bill:
        """`total` is tax-inclusive; `tax` defaults to Australian GST (1/11 of it).
        `link`: "Linked", "Unlinked" or None (never approved). `xero_status`: the Xero copy's
        status, None for no copy, "MISSING" for a link to an invoice Xero does not have.
        `xero_total` makes the copy's total differ; `duplicate` adds an older live copy.
        `allocations`: credit notes, prepayments and overpayments allocated to the Xero copy,
        [{"kind": "CREDITNOTE" | "PREPAYMENT" | "OVERPAYMENT", "amount", "date"?,
        "unallocated"?}]; `amount_credited` is a credit note of that amount."""
        total_cents = to_cents(total)
        tax_cents = to_cents(tax) if tax is not None else _gst(total_cents)
        invoice_date = _iso_date_or_none(invoice_date) or self._day(-30)
        approved = status in (domain.OPEN, domain.CLOSED)
        if link is DERIVED:
            link = domain.LINKED if approved else None
        if xero_status is DERIVED:
            xero_status = None if link is None else "AUTHORISED"
        if xero_status not in (None, *XERO_STATUSES):
            raise ValueError(f"unknown Xero status {xero_status!r}")
        xero = None
        if xero_status is not None:
            copy_total = to_cents(xero_total) if xero_total is not None else total_cents
            xero = XeroInvoice(
                self.guid(),
                None if xero_status in ("AUTHORISED", "PAID") else xero_status,
                copy_total,
                tax_cents,
            )
            credits = list(allocations or ())
            if to_cents(amount_credited):
                credits.insert(0, {"kind": "CREDITNOTE", "amount": amount_credited})
            for spec in credits:
                xero.allocations.append(self._allocation(spec, invoice_date))
        elif allocations or to_cents(amount_credited):
            raise ValueError("allocations need the bill's Xero copy")
        bill = Bill(
            number=number or f"INV-{len(self.bills) + 101:06d}",
            status=domain.OPEN if status == domain.CLOSED else status,
            total=total_cents,
            tax=tax_cents,
            matter=matter or (self.matters[-1] if self.matters else self.add_matter()),
            invoice_date=invoice_date,
            reference=reference,
            link=link,
            xero=xero,
            xero_invoice_id=xero.id if xero else (self.guid() if link else None),
        )
        if duplicate:
            bill.duplicate = XeroInvoice(self.guid(), "AUTHORISED", total_cents, tax_cents)
        self.bills.append(bill)
        return bill

    def _allocation(self, spec: dict, invoice_date: str | None) -> XeroAllocation:
        kind = str(spec.get("kind", "CREDITNOTE")).upper()
        if kind not in domain.CREDIT_KINDS:
            raise ValueError(f"an allocation's kind is one of {', '.join(domain.CREDIT_KINDS)}")
        amount = to_cents(spec["amount"])
        if amount <= 0:
            raise ValueError("an allocation's amount must be positive")
        allocated_on = _iso_date_or_none(spec.get("date")) or invoice_date or self._day(-25)
        unallocated = to_cents(spec.get("unallocated", "0"))
        return XeroAllocation(self.guid(), self.guid(), kind, amount, allocated_on, unallocated)

    def add_payment(
        self,
        bill: Bill,
        amount=None,
        *,
        status: str = domain.ACTIVE,
        reason: str | None = None,
        date: str | None = None,
        reference: str = "EFT",
        link=DERIVED,
        xero_status=DERIVED,
        batch: str | None = None,
    ) -> Payment:
        """`amount` defaults to what the bill still owes. `link` defaults to the bill's link
        (Linked only while the payment is Active); `xero_status` to AUTHORISED when the bill has
        a Xero copy. Payments with the same `batch` key share one Xero BatchPaymentID."""
        amount_cents = to_cents(amount) if amount is not None else bill.total - bill.total_paid
        if link is DERIVED:
            link = bill.link
            if link == domain.LINKED and status != domain.ACTIVE:
                link = domain.UNLINKED
        if xero_status is DERIVED:
            xero_status = "AUTHORISED" if link and bill.xero and bill.xero.status is None else None
        payment_date = date or max(bill.invoice_date, self._day(-20))
        xero = None
        if xero_status is not None:
            if bill.xero is None:
                raise ValueError("a Xero payment needs the bill's Xero copy")
            batch_id = self._batches.setdefault(batch, self.guid()) if batch else None
            xero = XeroPayment(
                self.guid(), amount_cents, payment_date, reference, xero_status, batch_id
            )
            bill.xero.payments.append(xero)
        if reason is None and status != domain.ACTIVE:
            reason = "Entered against the wrong invoice"
        payment = Payment(bill, amount_cents, payment_date, reference, status, reason, link, xero)
        bill.payments.append(payment)
        return payment

    # --- saving -------------------------------------------------------------------------------

    def save(self, store, max_seconds: float = SAVE_SECONDS) -> dict:
        """Write the firm in one transaction; the built objects get their ids. Past
        `max_seconds` it gives up with BuildTooLong, and nothing is written."""
        deadline = time_module.monotonic() + max_seconds
        with store.write() as conn:
            self.firm = self._insert_firm(conn)
            ids = _IdAllocator(conn)
            rows = _Rows()
            for contact in self.contacts:
                contact.id = ids.next("participants")
                rows.add("participants", self._contact_row(contact))
            for matter in self.matters:
                matter.id = ids.next("actions")
                row = (matter.id, self.firm["id"], matter.name, matter.reference, self._early())
                rows.add("actions", row)
            for number, bill in enumerate(self.bills):
                if number % 1000 == 999 and time_module.monotonic() > deadline:
                    raise BuildTooLong(
                        f"building {len(self.bills)} bills took more than {max_seconds:.0f} s: "
                        "nothing was saved; build fewer at a time"
                    )
                self._bill_rows(bill, ids, rows)
            rows.insert(conn)
        return self.firm

    def _insert_firm(self, conn) -> dict:
        """The firm's row and its Xero organisation. A name already taken gets a number
        ("Smith & Jones 2"), and the org key too."""
        names = {row[0] for row in conn.execute("SELECT name FROM firms")}
        self.name = unique_name(self.name, names)
        slug = re.sub(r"[^a-z0-9]", "", self.name.lower()) or "firm"
        orgkey = unique_name(slug, {row[0] for row in conn.execute("SELECT orgkey FROM firms")}, "")
        cursor = conn.execute(
            """INSERT INTO firms (name, orgkey, tenant_id, connection_id, created_ms)
               VALUES (?, ?, ?, ?, ?)""",
            (self.name, orgkey, self.tenant_id, self.connection_id, self.anchor * 1000),
        )
        org = self.organisation
        conn.execute(
            """INSERT OR REPLACE INTO xero_organisations (tenant_id, organisation_id, short_code,
               period_lock_date, end_of_year_lock_date, timezone, base_currency, country_code,
               invoice_numbers) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                self.tenant_id,
                self.guid(),
                "!" + self.tenant_id[:5],
                org["period_lock_date"],
                org["end_of_year_lock_date"],
                org["timezone"],
                org["base_currency"],
                "AU"
                if org["base_currency"] == "AUD"
                else "NZ"
                if org["base_currency"] == "NZD"
                else "GLOBAL",
                org["invoice_numbers"],
            ),
        )
        return {
            "id": cursor.lastrowid,
            "name": self.name,
            "orgkey": orgkey,
            "tenantId": self.tenant_id,
            "connectionId": self.connection_id,
        }

    def _contact_row(self, contact: Contact) -> tuple:
        return (contact.id, self.firm["id"], contact.name, contact.xero_contact_id, self._early())

    def _bill_rows(self, bill: Bill, ids: "_IdAllocator", rows: "_Rows") -> None:
        firm_id = self.firm["id"]
        bill.id = ids.next("bills")
        created = self._stamp(_epoch(bill.invoice_date, 9), 8 * 3600)
        linked = min(created + 60, self.anchor)
        unlinked = self._stamp(linked + 86400, 20 * 86400) if bill.link == domain.UNLINKED else None
        # A draft or deleted bill that was linked was reverted or deleted after its unlinking.
        edited = unlinked and bill.status in (domain.DRAFT, domain.DELETED)
        modified = max(created, unlinked + 60 if edited else 0)
        for payment in bill.payments:
            modified = max(modified, self._payment_rows(payment, ids, rows, unlinked))
        modified = min(modified, self.anchor)
        status = bill.status
        if status == domain.OPEN and bill.total_paid >= bill.total > 0:
            status = domain.CLOSED
        rows.add(
            "bills",
            (
                bill.id,
                firm_id,
                status,
                bill.number,
                bill.reference,
                "AUD",
                bill.invoice_date,
                _plus_days(bill.invoice_date, 30),
                bill.total - bill.tax,
                bill.tax,
                bill.total,
                bill.total_paid,
                created,
                modified,
                modified if status == domain.DELETED else None,
                1,
                bill.matter.id,
                bill.matter.client.id,
            ),
        )
        if bill.link:
            bill.link_id = ids.next("xeroinvoicelinks")
            rows.add(
                "xeroinvoicelinks",
                (
                    bill.link_id,
                    firm_id,
                    bill.id,
                    bill.link,
                    bill.xero_invoice_id,
                    bill.number,
                    linked,
                    unlinked,
                    unlinked or linked,
                ),
            )
        if bill.duplicate:
            rows.add("xero_invoices", self._xero_invoice_row(bill, bill.duplicate, linked - 86400))
        if bill.xero and bill.xero.status != "MISSING":
            updated = linked + 5
            if bill.xero.status in ("VOIDED", "DELETED"):
                updated = (unlinked or linked) + 120
            row = self._xero_invoice_row(bill, bill.xero, min(updated, self.anchor))
            rows.add("xero_invoices", row)
            for allocation in bill.xero.allocations:
                self._allocation_rows(bill, allocation, rows, linked)

    def _payment_rows(self, payment: Payment, ids, rows, bill_unlinked: int | None) -> int:
        payment.id = ids.next("billpayments")
        created = self._stamp(_epoch(payment.date, 10), 6 * 3600)
        linked = min(created + 60, self.anchor)
        unlinked = None
        if payment.link == domain.UNLINKED:
            if bill_unlinked:
                unlinked = max(linked, bill_unlinked - 60)
            else:
                unlinked = self._stamp(linked + 3600, 86400)
        modified = created if payment.status == domain.ACTIVE else (unlinked or linked) + 60
        modified = min(modified, self.anchor)
        rows.add(
            "billpayments",
            (
                payment.id,
                self.firm["id"],
                payment.bill.id,
                payment.status,
                payment.date,
                payment.amount,
                payment.reference,
                payment.reason,
                created,
                modified,
            ),
        )
        if payment.link:
            payment.link_id = ids.next("xeropaymentlinks")
            rows.add(
                "xeropaymentlinks",
                (
                    payment.link_id,
                    self.firm["id"],
                    payment.id,
                    payment.bill.id,
                    payment.link,
                    payment.xero.id if payment.xero else self.guid(),
                    linked,
                    unlinked,
                    unlinked or linked,
                ),
            )
        if payment.xero:
            deleted = payment.xero.status == "DELETED"  # in Xero, after its unlinking
            payment.xero.updated_ms = ((unlinked or linked) + 90 if deleted else linked) * 1000
            rows.add(
                "xero_payments",
                (
                    payment.xero.id,
                    self.tenant_id,
                    payment.bill.xero.id,
                    payment.date,
                    payment.amount,
                    payment.reference,
                    payment.xero.status,
                    payment.xero.batch_payment_id,
                    payment.xero.updated_ms,
                ),
            )
        return modified

    def _allocation_rows(self, bill: Bill, allocation: XeroAllocation, rows, linked: int) -> None:
        kind = allocation.kind
        total = allocation.amount + allocation.unallocated
        number = {"CREDITNOTE": f"CN-{bill.number}"}.get(kind, "")
        reference = {"PREPAYMENT": "Prepayment", "OVERPAYMENT": "Overpayment"}.get(kind, "")
        stamp = min(linked + 10, self.anchor) * 1000
        rows.add(
            "xero_credits",
            (
                allocation.credit_id,
                self.tenant_id,
                kind,
                number,
                reference or f"Credit for {bill.number}",
                bill.matter.client.xero_contact_id,
                bill.matter.client.name,
                allocation.date,
                "AUTHORISED" if allocation.unallocated else "PAID",
                total,
                _gst(total),
                "AUD",
                stamp,
            ),
        )
        rows.add(
            "xero_allocations",
            (
                allocation.id,
                self.tenant_id,
                allocation.credit_id,
                bill.xero.id,
                allocation.amount,
                allocation.date,
            ),
        )

    def _xero_invoice_row(self, bill: Bill, copy: XeroInvoice, updated: int) -> tuple:
        paid = copy.amount_paid
        status = copy.status
        if status is None:
            status = "PAID" if paid + copy.amount_credited >= copy.total > 0 else "AUTHORISED"
        elif (paid or copy.amount_credited) and status not in ("AUTHORISED", "PAID"):
            raise ValueError(f"a {status} Xero invoice cannot carry payments ({bill.number})")
        last_payment = max(
            (p.date for p in copy.payments if p.status == "AUTHORISED"), default=None
        )
        return (
            copy.id,
            self.tenant_id,
            bill.number,
            bill.reference,
            bill.matter.client.xero_contact_id,
            bill.matter.client.name,
            bill.invoice_date,
            _plus_days(bill.invoice_date, 30),
            status,
            copy.total - copy.total_tax,
            copy.total_tax,
            copy.total,
            paid,
            copy.amount_credited,
            "AUD",
            last_payment if status == "PAID" else None,
            max([updated * 1000, *(p.updated_ms + 1 for p in copy.payments)]),
        )

    def _day(self, offset_days: int) -> str:
        today = datetime.fromtimestamp(self.anchor, clock.ORG_TZ).date()
        return (today + timedelta(offset_days)).isoformat()

    def _early(self) -> int:
        """Contacts and matters exist well before their invoices."""
        return self._stamp(self.anchor - 400 * 86400, 30 * 86400)

    def _stamp(self, after: int, spread: int) -> int:
        return min(after + self.rng.randint(0, spread), self.anchor)


def unique_name(name: str, taken: set[str], separator: str = " ") -> str:
    """`name`, or the first of name 2, name 3, ... that is not taken."""
    if name not in taken:
        return name
    number = 2
    while f"{name}{separator}{number}" in taken:
        number += 1
    return f"{name}{separator}{number}"


def _iso_date_or_none(value) -> str | None:
    return date.fromisoformat(str(value)).isoformat() if value else None


def _gst(total_cents: int) -> int:
    return int((Decimal(total_cents) / 11).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _epoch(iso_date: str, hour: int) -> int:
    moment = datetime.combine(date.fromisoformat(iso_date), time(hour), clock.ORG_TZ)
    return int(moment.timestamp())


def _plus_days(iso_date: str, days: int) -> str:
    return (date.fromisoformat(iso_date) + timedelta(days)).isoformat()


class _IdAllocator:
    """Ids are taken inside the write transaction, after whatever the API created meanwhile."""

    def __init__(self, conn):
        self.conn = conn
        self.last: dict[str, int] = {}

    def next(self, table: str) -> int:
        if table not in self.last:
            row = self.conn.execute(f"SELECT MAX(id) FROM {table}").fetchone()  # noqa: S608
            self.last[table] = row[0] or 0
        self.last[table] += 1
        return self.last[table]


class _Rows:
    COLUMNS = {
        "participants": "id, firm_id, display_name, xero_contact_id, modified",
        "actions": "id, firm_id, name, reference, modified",
        "bills": (
            "id, firm_id, status, our_reference, their_reference, currency, invoice_date, "
            "due_date, total_exclusive, total_sales_tax, total_inclusive, total_paid, created, "
            "modified, deleted, division_id, action_id, participant_id"
        ),
        "billpayments": (
            "id, firm_id, bill_id, status, payment_date, amount, reference, reason, created, "
            "modified"
        ),
        "xeroinvoicelinks": (
            "id, firm_id, bill_id, link_status, xero_invoice_id, xero_invoice_number, linked, "
            "unlinked, modified"
        ),
        "xeropaymentlinks": (
            "id, firm_id, billpayment_id, bill_id, link_status, xero_payment_id, linked, "
            "unlinked, modified"
        ),
        "xero_invoices": (
            "id, tenant_id, number, reference, contact_id, contact_name, date, due_date, status, "
            "sub_total, total_tax, total, amount_paid, amount_credited, currency, fully_paid_on, "
            "updated_ms"
        ),
        "xero_payments": (
            "id, tenant_id, invoice_id, date, amount, reference, status, batch_payment_id, "
            "updated_ms"
        ),
        "xero_credits": (
            "id, tenant_id, kind, number, reference, contact_id, contact_name, date, status, "
            "total, total_tax, currency, updated_ms"
        ),
        "xero_allocations": "id, tenant_id, credit_id, invoice_id, amount, date",
    }

    def __init__(self):
        self.rows: dict[str, list[tuple]] = {table: [] for table in self.COLUMNS}

    def add(self, table: str, row: tuple) -> None:
        self.rows[table].append(row)

    def insert(self, conn) -> None:
        for table, columns in self.COLUMNS.items():
            marks = ", ".join("?" * (columns.count(",") + 1))
            sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608
            conn.executemany(sql, self.rows[table])
