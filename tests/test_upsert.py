from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from unlinker.connections.models import Connection
from unlinker.core.upsert import upsert
from unlinker.mirror.models import LinkedInvoice

pytestmark = pytest.mark.django_db


def row(connection, actionstep_id, **fields):
    values = {
        "connection": connection,
        "actionstep_id": actionstep_id,
        "link_id": actionstep_id + 1000,
        "link_status": "linked",
        "invoice_number": f"INV-{actionstep_id}",
        "invoice_date": date(2025, 3, 1),
        "total": Decimal("1100.10"),
        "synced_at": datetime(2025, 3, 1, 12, 30, tzinfo=UTC),
    }
    return LinkedInvoice(**(values | fields))


def test_inserts_then_updates_only_the_named_fields():
    connection = Connection.objects.create(name="Firm")
    rows = [row(connection, n) for n in range(1, 1201)]  # more than one statement's worth
    assert (
        upsert(
            LinkedInvoice,
            rows,
            unique_fields=["connection", "actionstep_id"],
            update_fields=["total", "invoice_number"],
        )
        == 1200
    )
    stored = LinkedInvoice.objects.get(actionstep_id=7)
    assert stored.total == Decimal("1100.10") and stored.invoice_date == date(2025, 3, 1)
    assert stored.synced_at == datetime(2025, 3, 1, 12, 30, tzinfo=UTC)

    changed = [row(connection, 7, total=Decimal("5.00"), invoice_number="NEW", link_id=1)]
    upsert(
        LinkedInvoice,
        changed,
        unique_fields=["connection", "actionstep_id"],
        update_fields=["total", "invoice_number"],
    )
    stored.refresh_from_db()
    assert (stored.total, stored.invoice_number, stored.link_id) == (Decimal("5.00"), "NEW", 1007)
    assert LinkedInvoice.objects.count() == 1200


def test_nothing_to_write():
    assert (
        upsert(
            LinkedInvoice,
            [],
            unique_fields=["connection", "actionstep_id"],
            update_fields=["total"],
        )
        == 0
    )


AWKWARD_TEXT = [
    "O'Brien & Co",
    'say "hi", {then} \\ leave',
    "NULL",
    "",
    "  spaced  ",
    "Ünïcödé — ✓",
    "comma, separated",
]


def test_every_value_arrives_as_it_was_whatever_the_text_or_the_nulls():
    connection = Connection.objects.create(name="Firm")
    rows = [
        row(
            connection,
            n,
            reference=text,
            matter_name=text,
            matter_id=None,  # a column of nulls only
            due_date=None if n % 2 else date(2025, 4, n),
            total=Decimal("-0.01") if n == 1 else Decimal("12345678901.99"),
            upstream_modified_at=datetime(2025, 3, n, 23, 59, 59, 999000, tzinfo=UTC),
        )
        for n, text in enumerate(AWKWARD_TEXT, start=1)
    ]
    upsert(
        LinkedInvoice, rows, unique_fields=["connection", "actionstep_id"], update_fields=["total"]
    )
    stored = {r.actionstep_id: r for r in LinkedInvoice.objects.filter(connection=connection)}
    for expected in rows:
        got = stored[expected.actionstep_id]
        assert (got.reference, got.matter_name) == (expected.reference, expected.matter_name)
        assert got.matter_id is None and got.due_date == expected.due_date
        assert got.total == expected.total
        assert got.upstream_modified_at == expected.upstream_modified_at
