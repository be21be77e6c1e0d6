"""Linked records for the unlinking tests: built in memory for the pure planner, or stored in
bulk (`store_firm`) for everything that reads the database."""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from unlinker.connections.models import Connection
from unlinker.mirror.models import LinkedInvoice, LinkedPayment, LinkStatus, XeroStatus

SYNCED = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def invoice(pk: int, *, connection_id: int = 1, **fields) -> LinkedInvoice:
    values = {
        "id": pk,
        "connection_id": connection_id,
        "actionstep_id": 1000 + pk,
        "link_id": 5000 + pk,
        "link_status": LinkStatus.LINKED,
        "actionstep_status": "Open",
        "xero_status": XeroStatus.AUTHORISED,
        "invoice_number": f"INV-{pk:06d}",
        "contact_name": "Smith & Co",
        "matter_name": f"Matter {pk}",
        "invoice_date": date(2025, 1, 1),
        "currency": "AUD",
        "total": Decimal("110.00"),
        "xero_invoice_id": f"00000000-0000-0000-0000-{pk:012d}",
        "synced_at": SYNCED,
    }
    values.update(fields)
    return LinkedInvoice(**values)


def payment(pk: int, of: LinkedInvoice | None = None, **fields) -> LinkedPayment:
    values = {
        "id": pk,
        "connection_id": of.connection_id if of else 1,
        "actionstep_id": 7000 + pk,
        "link_id": 9000 + pk,
        "link_status": LinkStatus.LINKED,
        "actionstep_status": "Active",
        "xero_status": XeroStatus.AUTHORISED,
        "invoice_id": of.pk if of else None,
        "invoice_actionstep_id": of.actionstep_id if of else 999_999,
        "invoice_number": of.invoice_number if of else "INV-999999",
        "payment_date": date(2025, 2, 1),
        "amount": Decimal("50.00"),
        "currency": of.currency if of else "AUD",
        "reference": f"RCPT-{pk}",
        "xero_payment_id": f"11111111-0000-0000-0000-{pk:012d}",
        "synced_at": SYNCED,
    }
    values.update(fields)
    return LinkedPayment(**values)


def count_linked(invoices, payments) -> None:
    """Set each invoice's linked_payment_count as the sync keeps it."""
    for inv in invoices:
        inv.linked_payment_count = sum(
            p.invoice_id == inv.pk and p.link_status == LinkStatus.LINKED and p.vanished_at is None
            for p in payments
        )


@dataclass
class Firm:
    connection: Connection
    invoices: list[LinkedInvoice] = field(default_factory=list)
    payments: list[LinkedPayment] = field(default_factory=list)

    def payments_of(self, inv: LinkedInvoice) -> list[LinkedPayment]:
        return [p for p in self.payments if p.invoice_id == inv.pk]


def store_firm(name: str = "Smith Legal", *, invoices: int = 3, payments_each: int = 1) -> Firm:
    """A connection with `invoices` linked invoices of `payments_each` linked payments each,
    stored in bulk. `n` numbers the records (Actionstep ids, invoice numbers); the database
    assigns the primary keys."""
    connection = Connection.objects.create(name=name)
    stored = LinkedInvoice.objects.bulk_create(
        [
            invoice(n, id=None, connection_id=connection.pk, linked_payment_count=payments_each)
            for n in range(1, invoices + 1)
        ]
    )
    rows = []
    for n, inv in enumerate(stored, start=1):
        for k in range(payments_each):
            row = payment(n * 100 + k, inv, id=None)
            rows.append(row)
    return Firm(connection, stored, LinkedPayment.objects.bulk_create(rows))
