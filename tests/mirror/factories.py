"""Mirror rows for tests, written with bulk_create: a thousand rows cost one query."""

import itertools
from datetime import date, timedelta
from decimal import Decimal

from django.utils import timezone

from unlinker.connections.models import Connection
from unlinker.mirror.models import LinkedInvoice, LinkedPayment, LinkStatus, XeroStatus

_serial = itertools.count(1)


def connection(name: str = "Smith & Co", members=()) -> Connection:
    made = Connection.objects.create(name=name)
    made.members.add(*members)
    return made


def _common(conn: Connection, n: int) -> dict:
    return {
        "connection": conn,
        "actionstep_id": n,
        "link_id": 10_000 + n,
        "link_status": LinkStatus.LINKED,
        "xero_status": XeroStatus.AUTHORISED,
        "invoice_number": f"INV-{n:05d}",
        "matter_id": 500 + n,
        "matter_name": f"Matter {n}",
        "contact_id": 900 + n,
        "contact_name": f"Contact {n}",
        "synced_at": timezone.now(),
    }


def invoices(conn: Connection, count: int = 1, **fields) -> list[LinkedInvoice]:
    rows = []
    for _ in range(count):
        n = next(_serial)
        values = _common(conn, n) | {
            "invoice_date": date(2025, 1, 1) + timedelta(days=n % 300),
            "xero_invoice_number": f"X-{n:05d}",
            "reference": f"Ref {n}",
            "total": Decimal("100.00") + n,
            "currency": "AUD",
        }
        rows.append(LinkedInvoice(**(values | fields)))
    return LinkedInvoice.objects.bulk_create(rows)


def invoice(conn: Connection, **fields) -> LinkedInvoice:
    return invoices(conn, 1, **fields)[0]


def payments(
    conn: Connection, count: int = 1, invoice: LinkedInvoice | None = None, **fields
) -> list[LinkedPayment]:
    rows = []
    for _ in range(count):
        n = next(_serial)
        values = _common(conn, n) | {
            "invoice": invoice,
            "invoice_actionstep_id": invoice.actionstep_id if invoice else n,
            "payment_date": date(2025, 1, 1) + timedelta(days=n % 300),
            "amount": Decimal("10.00") + n,
            "reference": f"PAY-{n:05d}",
        }
        values["currency"] = invoice.currency if invoice else "AUD"
        if invoice:
            values["invoice_number"] = invoice.invoice_number
        rows.append(LinkedPayment(**(values | fields)))
    return LinkedPayment.objects.bulk_create(rows)


def payment(conn: Connection, **fields) -> LinkedPayment:
    return payments(conn, 1, **fields)[0]
