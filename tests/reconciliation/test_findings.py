"""The reconciliation report against the sandbox: each kind of finding from a firm built for it,
what changed between two runs, and how few reads a report costs."""

import math
from urllib.parse import parse_qs

import pytest

from tests.unlinking.support import synced
from unlinker.connections.clients import actionstep_client_for, xero_client_for
from unlinker.mirror.models import LinkedInvoice, LinkedPayment, XeroStatus
from unlinker.reconciliation.models import Finding, ReconciliationRun

from .support import reconcile, resync, xero_reads

pytestmark = pytest.mark.django_db


def found(run) -> list[tuple[str, str, str]]:
    return list(
        Finding.objects.filter(run=run)
        .order_by("kind", "invoice_number")
        .values_list("kind", "invoice_number", "xero_status")
    )


def only(run, **counts) -> bool:
    return run.counts == {kind: counts.get(kind, 0) for kind in Finding.Kind.values}


@pytest.mark.parametrize(
    "bill, status",
    [
        ({"xero_status": "DRAFT"}, "DRAFT"),
        ({"xero_status": "SUBMITTED"}, "SUBMITTED"),
        ({}, "AUTHORISED"),
        ({"payments": [{"amount": "220.00"}]}, "PAID"),
    ],
    ids=["draft", "submitted", "authorised", "paid"],
)
def test_an_unlinked_invoice_still_live_in_xero_is_an_orphan(upstream, connect, bill, status):
    built = upstream.build(
        [
            {"total": "220.00", "link": "Unlinked", **bill},
            {"total": "330.00", "link": "Unlinked", "xero_status": "VOIDED"},  # cleaned up
            {"total": "440.00", "link": "Unlinked", "xero_status": "DELETED"},
        ]
    )
    run = reconcile(synced(connect, built))

    assert run.state == ReconciliationRun.State.DONE and run.error == ""
    orphan = built["bills"][0]
    assert found(run) == [(Finding.Kind.ORPHAN, orphan["number"], status)]
    finding = Finding.objects.get(run=run)
    assert finding.xero_invoice_id == orphan["xero_invoice_id"].lower()
    assert finding.invoice.actionstep_id == orphan["id"]
    assert "still " + status in finding.detail
    assert only(run, orphan=1)


def test_a_second_live_xero_invoice_with_the_number_is_a_duplicate(upstream, connect):
    built = upstream.build([{"total": "550.00", "duplicate": True}, {"total": "10.00"}])
    run = reconcile(synced(connect, built))

    bill = built["bills"][0]
    assert found(run) == [(Finding.Kind.DUPLICATE, bill["number"], "AUTHORISED")]
    finding = Finding.objects.get(run=run)
    # the finding names the extra copy, not the one the link points at
    assert finding.xero_invoice_id == bill["duplicate_xero_invoice_id"].lower()
    assert finding.xero_invoice_id != bill["xero_invoice_id"].lower()
    assert only(run, duplicate=1)


def test_a_link_to_a_voided_deleted_or_missing_xero_invoice_is_broken(upstream, connect):
    built = upstream.build(
        [
            {"total": "100.00", "xero_status": "VOIDED"},
            {"total": "200.00", "xero_status": "DELETED"},
            {"total": "300.00", "xero_status": "MISSING"},
            {"total": "400.00"},
        ]
    )
    run = reconcile(synced(connect, built))

    numbers = [b["number"] for b in built["bills"]]
    assert found(run) == [
        (Finding.Kind.BROKEN_LINK, numbers[0], "VOIDED"),
        (Finding.Kind.BROKEN_LINK, numbers[1], "DELETED"),
        (Finding.Kind.BROKEN_LINK, numbers[2], "MISSING"),
    ]
    details = list(Finding.objects.filter(run=run).order_by("invoice_number").values("detail"))
    assert [d["detail"].rsplit(" ", 1)[-1] for d in details] == ["voided.", "deleted.", "missing."]
    assert only(run, broken_link=3)
    # the lists show what the run read
    statuses = dict(LinkedInvoice.objects.values_list("invoice_number", "xero_status"))
    assert [statuses[n] for n in numbers] == ["VOIDED", "DELETED", "MISSING", "AUTHORISED"]


def test_linked_pairs_whose_total_amount_paid_or_contact_differ_are_mismatches(upstream, connect):
    built = upstream.build(
        [
            {"total": "1100.00", "xero_total": "1000.00"},
            # paid in Actionstep, the Xero payment deleted
            {"total": "500.00", "payments": [{"amount": "100.00", "xero_status": "DELETED"}]},
            {"total": "300.00", "contact": "Alice Smith"},
            {"total": "200.00", "contact": "Bob Brown"},
        ]
    )
    connection = synced(connect, built)
    # The builder gives both sides the same contact: renamed in the mirror, it stands for a
    # contact changed in Actionstep after the invoice went to Xero. Case alone is no difference.
    numbers = [b["number"] for b in built["bills"]]
    LinkedInvoice.objects.filter(invoice_number=numbers[2]).update(contact_name="Carol Jones")
    LinkedInvoice.objects.filter(invoice_number=numbers[3]).update(contact_name="BOB BROWN")
    run = reconcile(connection)

    details = dict(Finding.objects.filter(run=run).values_list("invoice_number", "detail"))
    assert details == {
        numbers[0]: "total AUD 1,100.00 in Actionstep, AUD 1,000.00 in Xero",
        numbers[1]: "paid AUD 100.00 in Actionstep, AUD 0.00 in Xero",
        numbers[2]: "contact 'Carol Jones' / 'Alice Smith'",
    }
    assert only(run, mismatch=3)


def test_a_firm_that_agrees_with_xero_has_no_findings(upstream, connect):
    built = upstream.build(
        [
            {"total": "1100.00", "payments": [{"amount": "500.00"}, {"amount": "600.00"}]},
            {"total": "220.00", "payments": [{"amount": "20.00"}]},
            {"total": "330.00"},
            {"total": "440.00", "status": "Draft"},  # never approved: not in Xero
            {"total": "550.00", "link": "Unlinked", "xero_status": "VOIDED"},  # cleaned up
        ]
    )
    run = reconcile(synced(connect, built))
    assert found(run) == []
    assert only(run)
    assert run.changes == {"new": 0, "resolved": 0, "previous_run": None}


def test_the_run_records_which_payments_xero_has_and_which_are_batch_payments(upstream, connect):
    built = upstream.build(
        [
            {
                "total": "600.00",
                "link": "Unlinked",
                "payments": [
                    {"amount": "100.00", "batch": "B1"},
                    {"amount": "200.00", "xero_status": "DELETED"},
                    {"amount": "300.00"},
                ],
            }
        ]
    )
    reconcile(synced(connect, built))
    ids = [p["id"] for p in built["bills"][0]["payments"]]
    rows = {p.actionstep_id: p for p in LinkedPayment.objects.all()}
    assert [(rows[i].xero_status, rows[i].is_batch_payment) for i in ids] == [
        (XeroStatus.AUTHORISED, True),
        (XeroStatus.DELETED, False),
        (XeroStatus.AUTHORISED, False),
    ]


def test_a_second_run_shows_what_changed_since_the_first(upstream, connect):
    built = upstream.build(
        [
            {"total": "100.00", "link": "Unlinked"},  # an orphan, then voided in Xero
            {"total": "200.00"},  # linked, then unlinked: an orphan
            {"total": "300.00", "xero_status": "VOIDED"},  # a broken link throughout
        ]
    )
    connection = synced(connect, built)
    first = reconcile(connection)
    assert only(first, orphan=1, broken_link=1)
    assert first.changes["previous_run"] is None

    voided, unlinked, _ = built["bills"]
    xero_client_for(connection).update_invoice_statuses(
        [(voided["xero_invoice_id"], "VOIDED")], idempotency_key="test-void-orphan"
    )
    actionstep_client_for(connection).unlink_invoice(unlinked["link_id"])
    resync(connection)
    second = reconcile(connection)

    assert found(second) == [
        (Finding.Kind.BROKEN_LINK, built["bills"][2]["number"], "VOIDED"),
        (Finding.Kind.ORPHAN, unlinked["number"], "AUTHORISED"),
    ]
    assert second.changes == {"new": 1, "resolved": 1, "previous_run": first.pk}


def test_a_repeat_run_reads_only_what_changed(upstream, connect):
    built = upstream.build([{"total": "100.00"}] * 250 + [{"total": "50.00", "link": "Unlinked"}])
    connection = synced(connect, built)
    since = upstream.last_request_id()
    first = reconcile(connection)
    first_reads = xero_reads(upstream, since)
    assert any("Statuses=" in (call["query"] or "") for call in first_reads)

    since = upstream.last_request_id()
    second = reconcile(connection)
    second_reads = xero_reads(upstream, since)

    # The request log keeps no headers: the repeat run asks for every status (If-Modified-Since
    # narrows it to the changes), and makes fewer reads than the first.
    invoice_reads = [call for call in second_reads if call["path"].endswith("/Invoices")]
    assert invoice_reads and not any("Statuses=" in (c["query"] or "") for c in invoice_reads)
    assert len(second_reads) < len(first_reads)
    assert (first.reads_made, second.reads_made) == (len(first_reads), len(second_reads))
    assert found(second) == found(first) and second.changes["new"] == 0


def test_a_report_costs_at_most_one_read_per_50_invoices_and_a_few_more(upstream, connect):
    seeded = upstream.seed(invoices=400, seed=7, name="Bound Firm")
    connection = connect(seeded["firm"])
    resync(connection)
    invoices = LinkedInvoice.objects.filter(connection=connection).count()
    assert invoices > 300  # some of its invoices never went to Xero

    since = upstream.last_request_id()
    run = reconcile(connection, full=True)
    reads = xero_reads(upstream, since)

    assert run.state == ReconciliationRun.State.DONE
    assert len(reads) <= math.ceil(invoices / 50) + 3, [(r["path"], r["query"]) for r in reads]
    assert run.reads_made == len(reads)
    id_lists = [parse_qs(r["query"] or "").get("IDs", [""])[0].split(",") for r in reads]
    assert max(len(ids) for ids in id_lists) <= 50
    assert sum(run.counts.values()) > 0  # the seed's firm has a bit of everything
