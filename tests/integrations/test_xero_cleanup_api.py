"""The Xero client's clean-up methods over real HTTP against the sandbox: the organisation's
lock dates, allocations of each kind and their deletes, batch payments, renaming and voiding
in one call, history notes, and disconnecting (revocation, DELETE /connections/{id}). Each
write is counted in the sandbox's request log and carries an Idempotency-Key."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from unlinker.integrations.errors import AuthExpired, ValidationFailed
from unlinker.integrations.records import InvoiceChange
from unlinker.integrations.tokens import StaticTokenSource
from unlinker.integrations.xero import (
    XeroClient,
    connections,
    delete_connection,
    revoke_refresh_token,
)

OLD = (date.today() - timedelta(days=90)).isoformat()
LOCK = (date.today() - timedelta(days=60)).isoformat()


@pytest.fixture
def firm(upstream):
    built = upstream.build(
        [
            {"number": "PLAIN", "total": "100.00"},
            {"number": "LOCKED", "total": "100.00", "invoice_date": OLD},
            {
                "number": "CREDITED",
                "total": "300.00",
                "allocations": [
                    {"kind": "CREDITNOTE", "amount": "30.00"},
                    {"kind": "PREPAYMENT", "amount": "40.00"},
                    {"kind": "OVERPAYMENT", "amount": "50.00"},
                ],
            },
            {"number": "B-1", "total": "60.00", "payments": [{"batch": "b"}]},
            {"number": "B-2", "total": "40.00", "payments": [{"batch": "b"}]},
        ],
        name="Clean-up API",
        organisation={"period_lock_date": LOCK, "timezone": "AUSEASTERNSTANDARDTIME"},
    )
    built["by_number"] = {bill["number"]: bill for bill in built["bills"]}
    return built


@pytest.fixture
def xero(upstream, firm):
    token = upstream.issue_tokens("xero")["access_token"]
    return XeroClient(firm["firm"]["tenantId"], StaticTokenSource(token), timeout=10)


def writes(sandbox, since):
    return [r for r in sandbox.requests(api="xero", since=since) if r["method"] != "GET"]


def test_organisation_lock_dates_timezone_and_currency(upstream, firm, xero):
    org = xero.get_organisation()
    assert org.name == "Clean-up API" and org.base_currency == "AUD"
    assert org.timezone == "AUSEASTERNSTANDARDTIME"
    assert org.period_lock_date == date.fromisoformat(LOCK) and org.end_of_year_lock_date is None
    assert org.lock_for(date.fromisoformat(OLD)) == ("period", date.fromisoformat(LOCK))
    assert org.lock_for(date.today()) is None

    locked = firm["by_number"]["LOCKED"]["xero_invoice_id"]
    with pytest.raises(ValidationFailed) as refused:
        xero.update_invoice(locked, "void-locked", status="VOIDED")
    shown = date.fromisoformat(LOCK).strftime("%d-%b-%Y")
    assert refused.value.messages == [
        f"The document date cannot be before the period lock date, currently set at {shown}"
    ]


def test_allocations_of_each_kind_are_read_and_deleted_then_the_void_passes(upstream, firm, xero):
    invoice_id = firm["by_number"]["CREDITED"]["xero_invoice_id"]
    (invoice,) = xero.get_invoices(ids=[invoice_id])
    assert invoice.amount_credited == Decimal("120.00")
    assert sorted((c.kind, c.amount) for c in invoice.credits) == [
        ("CREDITNOTE", Decimal("30.00")),
        ("OVERPAYMENT", Decimal("50.00")),
        ("PREPAYMENT", Decimal("40.00")),
    ]
    with pytest.raises(ValidationFailed, match="allocated"):
        xero.update_invoice(invoice_id, "void-1", status="VOIDED")

    allocations = xero.get_allocations(invoice_id)
    built = {a["allocation_id"] for a in firm["by_number"]["CREDITED"]["allocations"]}
    assert {a.allocation_id for a in allocations} == built
    since = upstream.last_request_id()
    for allocation in allocations:
        deleted = xero.delete_allocation(
            allocation.kind,
            allocation.document_id,
            allocation.allocation_id,
            f"allocation-{allocation.allocation_id}",
        )
        assert deleted.is_deleted and deleted.allocation_id == allocation.allocation_id
    log = writes(upstream, since)
    assert [r["method"] for r in log] == ["DELETE"] * 3
    assert all(r["idempotency_key"] for r in log)
    assert xero.get_allocations(invoice_id) == []
    assert xero.update_invoice(invoice_id, "void-2", status="VOIDED").status == "VOIDED"


def test_the_other_invoices_of_a_batch_payment(firm, xero):
    payment = firm["by_number"]["B-1"]["payments"][0]
    batch = xero.get_batch_payment(payment["batch_payment_id"])
    assert batch.total == Decimal("100.00") and batch.status == "AUTHORISED"
    assert sorted(line.invoice_number for line in batch.payments) == ["B-1", "B-2"]


def test_rename_and_void_in_one_call(upstream, firm, xero):
    invoice_id = firm["by_number"]["PLAIN"]["xero_invoice_id"]
    since = upstream.last_request_id()
    voided = xero.update_invoice(invoice_id, "rename-void", status="VOIDED", number="PLAIN-VOID")
    assert (voided.number, voided.status) == ("PLAIN-VOID", "VOIDED")
    (write,) = writes(upstream, since)
    assert write["body"] == {
        "Invoices": [{"InvoiceID": invoice_id, "InvoiceNumber": "PLAIN-VOID", "Status": "VOIDED"}]
    }
    assert upstream.xero_invoices("PLAIN") == []


def test_bulk_changes_with_numbers_report_each_element(firm, xero):
    plain = firm["by_number"]["PLAIN"]["xero_invoice_id"]
    credited = firm["by_number"]["CREDITED"]["xero_invoice_id"]
    results = xero.update_invoices(
        [
            InvoiceChange(plain, status="VOIDED", number="PLAIN-VOID"),
            InvoiceChange(credited, status="VOIDED", number="CREDITED-VOID"),
        ],
        "bulk-rename",
    )
    assert [r.ok for r in results] == [True, False]
    assert "allocated" in results[1].messages[0]


def test_history_notes_on_invoices_and_payments(upstream, firm, xero):
    invoice_id = firm["by_number"]["PLAIN"]["xero_invoice_id"]
    note = "Voided by Unlinker batch 42 for A. Admin: unlinked from Actionstep"
    since = upstream.last_request_id()
    record = xero.add_invoice_note(invoice_id, note, "note-1")
    assert record.details == note and record.changes == "Note"
    payment_id = firm["by_number"]["B-1"]["payments"][0]["xero_payment_id"]
    xero.add_payment_note(payment_id, "Looked at by Unlinker", "note-2")
    assert [r["idempotency_key"] for r in writes(upstream, since)] == ["note-1", "note-2"]
    assert [h.details for h in xero.get_invoice_history(invoice_id)] == [note]
    assert [h.changes for h in xero.get_payment_history(payment_id)] == ["Note"]
    with pytest.raises(ValueError):
        xero.add_invoice_note(invoice_id, "  ", "note-3")


def test_disconnecting_removes_the_connection_and_revokes_the_token(upstream, firm, settings):
    settings.XERO_CLIENT_ID = "unlinker-test"
    token = upstream.issue_tokens("xero", client_id="unlinker-test")
    (tenant,) = connections(token["access_token"])
    assert tenant.connection_id == firm["firm"]["connectionId"]

    delete_connection(token["access_token"], tenant.connection_id)
    assert connections(token["access_token"]) == []
    delete_connection(token["access_token"], tenant.connection_id)  # already gone: done

    revoke_refresh_token(token["refresh_token"])
    with pytest.raises(AuthExpired):
        connections(token["access_token"])
    (revocation,) = upstream.requests(path_contains="/connect/revocation")
    assert revocation["status"] == 200 and revocation["client_id"] == "unlinker-test"
