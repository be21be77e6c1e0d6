"""The clean-up in Xero against the sandbox: lock dates read before acting, allocations of each
kind removed first (or not), numbers freed in the call that voids, and a history note on every
record changed. Every write is counted in the sandbox's request log; the rules hold with the
sandbox made lenient, where only Unlinker's own re-read keeps them."""

from datetime import date, timedelta

import pytest
from django.contrib.auth import get_user_model

from unlinker.connections.clients import actionstep_client_for, xero_client_for
from unlinker.connections.models import Connection
from unlinker.core.display import format_date
from unlinker.integrations.errors import ValidationFailed
from unlinker.mirror import services as mirror
from unlinker.mirror.models import LinkedInvoice
from unlinker.unlinking.models import StepKind, StepRequest, StepState, UnlinkBatch, UnlinkStep
from unlinker.unlinking.planning import PlanOptions
from unlinker.unlinking.selectors import rows_for_actionstep_ids

from .support import (
    assert_written_at_most_once,
    queue,
    run_all,
    synced,
    upstream_writes,
    without_notes,
)

pytestmark = pytest.mark.django_db

TODAY = date.today()
OLD = (TODAY - timedelta(days=90)).isoformat()
LOCK = (TODAY - timedelta(days=60)).isoformat()
RECENT = (TODAY - timedelta(days=10)).isoformat()
SHOWN = format_date(date.fromisoformat(LOCK))
CLEANUP = PlanOptions(xero_cleanup=True)
FIRST = PlanOptions(xero_cleanup=True, remove_allocations=True)


@pytest.fixture(params=["strict", "lenient"])
def sandbox_rules(request, upstream):
    """Run against the sandbox's refusals, and with them switched off."""
    if request.param == "lenient":
        upstream.set_lenient("void_with_allocations", "lock_dates")
    return request.param


def refreshed(connect, built):
    """A synced connection whose mirror has read Xero (statuses, dates, allocations, locks)."""
    connection = synced(connect, built)
    mirror.refresh_xero_status(connection.pk, xero_client_for(connection))
    connection.refresh_from_db()
    return connection


def step_of(batch, kind):
    return UnlinkStep.objects.get(batch=batch, kind=kind)


def xero_writes(upstream, since):
    return [w for w in upstream_writes(upstream, since) if w.api == "xero"]


# --- lock dates ---------------------------------------------------------------------------


def test_a_void_in_a_locked_period_is_skipped_by_the_plan_and_nothing_is_sent(upstream, connect):
    built = upstream.build(
        [{"number": "OLD-1", "total": "100.00", "invoice_date": OLD, "link": "Unlinked"}],
        organisation={"period_lock_date": LOCK},
    )
    connection = refreshed(connect, built)
    assert connection.xero_period_lock_date == date.fromisoformat(LOCK)
    rows = rows_for_actionstep_ids(
        connection, invoice_ids=[built["bills"][0]["id"]], payment_ids=[]
    )
    (void,) = [s for s in rows.plan(CLEANUP).steps if s.kind == StepKind.XERO_VOID_INVOICE]
    assert void.skip_reason == (
        f"blocked by Xero's period lock date {SHOWN}: the firm's adviser must move it first"
    )
    # and Xero itself refuses it, with its own words
    invoice_id = built["bills"][0]["xero_invoice_id"]
    with pytest.raises(ValidationFailed, match="lock date"):
        xero_client_for(connection).update_invoice(invoice_id, "try-locked", status="VOIDED")
    assert upstream.xero_invoice(invoice_id)["Status"] == "AUTHORISED"


def test_a_lock_date_moved_after_the_plan_is_read_again_before_acting(
    upstream, connect, sandbox_rules
):
    built = upstream.build(
        [
            {"number": "OLD-2", "total": "100.00", "invoice_date": OLD},
            {"number": "NEW-2", "total": "200.00", "invoice_date": RECENT},
            {
                "number": "PAY-2",
                "total": "50.00",
                "invoice_date": RECENT,
                "payments": [{"date": OLD}],
            },
        ]
    )
    connection = refreshed(connect, built)
    assert connection.xero_period_lock_date is None
    batch = queue(connection, built["bills"], CLEANUP)  # planned with no lock known
    assert not UnlinkStep.objects.filter(batch=batch, state=StepState.SKIPPED).exists()

    # the firm's adviser closes the books before the batch runs
    upstream.set_organisation(built["firm"]["tenantId"], period_lock_date=LOCK)
    since = upstream.last_request_id()
    batch = run_all(batch)

    steps = {
        s.invoice.invoice_number: s
        for s in UnlinkStep.objects.filter(batch=batch, kind=StepKind.XERO_VOID_INVOICE)
    }
    assert steps["OLD-2"].state == StepState.FAILED
    assert f"is blocked by Xero's period lock date {SHOWN}" in steps["OLD-2"].error
    assert steps["NEW-2"].state == StepState.DONE
    payment_step = step_of(batch, StepKind.XERO_DELETE_PAYMENT)
    assert payment_step.state == StepState.FAILED and SHOWN in payment_step.error
    assert steps["PAY-2"].state == StepState.SKIPPED  # what depends on it, as for any failure
    # only the unlocked invoice was changed in Xero, strict sandbox or lenient
    changed = {w.record for w in without_notes(xero_writes(upstream, since))}
    assert changed == {built["bills"][1]["xero_invoice_id"]}
    assert upstream.xero_invoice(built["bills"][0]["xero_invoice_id"])["Status"] == "AUTHORISED"
    # each step read the organisation before it acted, and the connection keeps what it read
    organisation_reads = upstream.requests(since=since, api="xero", path_contains="/Organisation")
    assert len(organisation_reads) == 2  # one for the group of voids, one for the payment
    connection.refresh_from_db()
    assert connection.xero_period_lock_date == date.fromisoformat(LOCK)


# --- allocations --------------------------------------------------------------------------

KINDS = ["CREDITNOTE", "PREPAYMENT", "OVERPAYMENT"]


@pytest.mark.parametrize("kind", KINDS)
def test_without_remove_allocations_first_a_credited_invoice_is_left_and_named(
    upstream, connect, kind, sandbox_rules
):
    built = upstream.build(
        [{"number": "CR-1", "total": "300.00", "allocations": [{"kind": kind, "amount": "30.00"}]}]
    )
    connection = refreshed(connect, built)
    since = upstream.last_request_id()
    batch = run_all(queue(connection, built["bills"], CLEANUP))

    void = step_of(batch, StepKind.XERO_VOID_INVOICE)
    assert void.state == StepState.SKIPPED and void.skipped_by_plan
    name = {"CREDITNOTE": "credit note", "PREPAYMENT": "prepayment", "OVERPAYMENT": "overpayment"}
    assert void.error.startswith(f"{name[kind]} ")
    assert (
        "of 30.00 is allocated to it in Xero: choose \u201cremove allocations first\u201d"
        in void.error
    )
    assert xero_writes(upstream, since) == []
    assert upstream.xero_invoice(built["bills"][0]["xero_invoice_id"])["Status"] == "AUTHORISED"


@pytest.mark.parametrize("kind", KINDS)
def test_remove_allocations_first_removes_each_then_voids_once(
    upstream, connect, kind, sandbox_rules
):
    built = upstream.build(
        [
            {
                "number": "CR-2",
                "total": "300.00",
                "allocations": [
                    {"kind": kind, "amount": "30.00"},
                    {"kind": kind, "amount": "20.00"},
                ],
            }
        ]
    )
    connection = refreshed(connect, built)
    since = upstream.last_request_id()
    batch = run_all(queue(connection, built["bills"], FIRST))
    assert batch.state == UnlinkBatch.State.FINISHED

    removals = list(UnlinkStep.objects.filter(batch=batch, kind=StepKind.XERO_DELETE_ALLOCATION))
    assert len(removals) == 2 and all(s.state == StepState.DONE for s in removals)
    invoice_id = built["bills"][0]["xero_invoice_id"]
    writes = xero_writes(upstream, since)
    assert_written_at_most_once(without_notes(writes))
    # a note on the invoice for each removal and for the void (a note is a new history record)
    assert [w.kind for w in writes if w not in without_notes(writes)] == ["note on invoice"] * 3
    kinds = [w.kind for w in without_notes(writes)]
    removed = {
        "CREDITNOTE": "credit note",
        "PREPAYMENT": "prepayment",
        "OVERPAYMENT": "overpayment",
    }
    assert kinds == [f"remove {removed[kind]} allocation"] * 2 + ["void"]  # removals first
    assert upstream.xero_invoice(invoice_id)["Status"] == "VOIDED"
    invoice = LinkedInvoice.objects.get(connection=connection)
    assert invoice.xero_credits == [] and invoice.xero_amount_credited == 0
    assert invoice.xero_status == "VOIDED"

    # run again as if every task were delivered twice: nothing is written a second time
    since = upstream.last_request_id()
    UnlinkStep.objects.filter(batch=batch).update(state=StepState.PENDING, claimed_by="")
    run_all(batch)
    assert xero_writes(upstream, since) == []


def test_an_allocation_made_after_the_plan_keeps_the_invoice_whatever_xero_accepts(
    upstream, connect, sandbox_rules
):
    built = upstream.build(
        [
            {
                "number": "CR-3",
                "total": "300.00",
                "allocations": [{"kind": "PREPAYMENT", "amount": "40.00"}],
            }
        ]
    )
    connection = refreshed(connect, built)
    # the mirror has not seen the prepayment: the plan voids without removing it
    LinkedInvoice.objects.update(xero_credits=[], xero_amount_credited=None)
    since = upstream.last_request_id()
    batch = run_all(queue(connection, built["bills"], FIRST))
    void = step_of(batch, StepKind.XERO_VOID_INVOICE)
    assert void.state == StepState.FAILED and "prepayments or overpayments allocated" in void.error
    assert xero_writes(upstream, since) == []


# --- free the number ----------------------------------------------------------------------


def approve_again(connection, bill_id):
    """What the firm does after editing: approve the invoice in Actionstep, whose integration
    then creates it in Xero again under its number."""
    client = actionstep_client_for(connection)
    return client.request("PUT", client._url("bills", bill_id), body={"bills": {"status": "Open"}})


def live_copies(upstream, number):
    return [c for c in upstream.xero_invoices(number) if c["Status"] in ("AUTHORISED", "PAID")]


def test_a_freed_number_is_taken_again_when_the_invoice_is_approved_again(upstream, connect):
    built = upstream.build(
        [{"number": "FREE-1", "total": "100.00"}, {"number": "FREE-2", "total": "200.00"}]
    )
    connection = refreshed(connect, built)
    options = PlanOptions(after="revert", xero_cleanup=True, free_numbers=True)
    since = upstream.last_request_id()
    batch = run_all(queue(connection, built["bills"], options))
    assert batch.state == UnlinkBatch.State.FINISHED

    # renamed and voided in one element of one POST, both invoices in one call
    posts = upstream.requests(since=since, api="xero", method="POST")
    assert len(posts) == 1
    assert sorted((e["InvoiceNumber"], e["Status"]) for e in posts[0]["body"]["Invoices"]) == [
        ("FREE-1-VOID", "VOIDED"),
        ("FREE-2-VOID", "VOIDED"),
    ]
    first = upstream.xero_invoice(built["bills"][0]["xero_invoice_id"])
    assert (first["InvoiceNumber"], first["Status"]) == ("FREE-1-VOID", "VOIDED")

    approve_again(connection, built["bills"][0]["id"])
    copies = upstream.xero_invoices("FREE-1")
    assert [c["Status"] for c in copies] == ["AUTHORISED"]  # one, new, under the old number
    assert copies[0]["InvoiceID"] != built["bills"][0]["xero_invoice_id"]

    # the same invoice cleaned up a second time: its first voided copy holds FREE-1-VOID
    mirror.sync_now(mirror.new_sync_run(connection))
    mirror.refresh_xero_status(connection.pk, xero_client_for(connection))
    batch = run_all(queue(connection, built["bills"][:1], options))
    assert batch.state == UnlinkBatch.State.FINISHED
    renamed = upstream.xero_invoice(copies[0]["InvoiceID"])
    assert (renamed["InvoiceNumber"], renamed["Status"]) == ("FREE-1-VOID-2", "VOIDED")
    approve_again(connection, built["bills"][0]["id"])
    assert len(live_copies(upstream, "FREE-1")) == 1


def test_without_freeing_the_number_approving_again_is_refused_by_xero(upstream, connect):
    built = upstream.build([{"number": "KEPT-1", "total": "100.00"}])
    connection = refreshed(connect, built)
    run_all(queue(connection, built["bills"], PlanOptions(after="revert", xero_cleanup=True)))
    with pytest.raises(Exception, match="must be unique"):
        approve_again(connection, built["bills"][0]["id"])
    assert live_copies(upstream, "KEPT-1") == []


# --- history notes ------------------------------------------------------------------------


def test_every_change_in_xero_adds_a_history_note_counted_in_the_plan(upstream, connect):
    built = upstream.build(
        [
            {"number": "N-1", "total": "100.00", "payments": [{"amount": "40.00"}]},
            {
                "number": "N-2",
                "total": "90.00",
                "allocations": [{"kind": "CREDITNOTE", "amount": "9.00"}],
            },
        ]
    )
    connection = refreshed(connect, built)
    admin = get_user_model().objects.create(username="aadmin", first_name="Ada", last_name="Admin")
    rows = rows_for_actionstep_ids(
        connection, invoice_ids=[b["id"] for b in built["bills"]], payment_ids=[]
    )
    plan = rows.plan(FIRST)
    estimate = plan.xero_calls()
    assert estimate.notes == 4  # a payment deleted, an allocation removed, two invoices voided

    since = upstream.last_request_id()
    from unlinker.unlinking.services import create_batch

    batch = create_batch(
        connection=connection,
        user=None,
        selection={"source": "test"},
        planner=lambda busy: rows.plan(FIRST, busy=busy),
    ).batch
    UnlinkBatch.objects.filter(pk=batch.pk).update(created_by=admin)
    batch = run_all(batch)
    assert batch.state == UnlinkBatch.State.FINISHED

    calls = upstream.requests(since=since, api="xero")
    assert estimate.least <= len(calls) <= estimate.most
    notes = [c for c in calls if c["method"] == "PUT" and c["path"].endswith("/History")]
    assert len(notes) == 4 and all(c["idempotency_key"] for c in notes)
    voided = f"Voided by Unlinker batch {batch.pk} for A. Admin: unlinked from Actionstep"
    for bill in built["bills"]:
        history = [r["Details"] for r in upstream.xero_history(bill["xero_invoice_id"])]
        assert voided in history
    payment_id = built["bills"][0]["payments"][0]["xero_payment_id"]
    assert f"Deleted by Unlinker batch {batch.pk} for A. Admin: unlinked from Actionstep" in [
        r["Details"] for r in upstream.xero_history(payment_id)
    ]
    credit_history = [
        r["Details"] for r in upstream.xero_history(built["bills"][1]["xero_invoice_id"])
    ]
    assert any(
        d.startswith("Credit note")
        and d.endswith(
            f"unallocated by Unlinker batch {batch.pk} for A. Admin: to void the invoice, "
            "unlinked from Actionstep"
        )
        for d in credit_history
    )
    # each note is on the record of its own step's attempt, and only there
    for step in UnlinkStep.objects.filter(batch=batch, kind__startswith="xero_"):
        written = StepRequest.objects.filter(attempt__step=step, method="PUT")
        assert written.count() == 1, step


def test_a_lost_answer_adds_the_note_once_and_notes_can_be_switched_off(upstream, connect):
    built = upstream.build(
        [{"number": "L-1", "total": "100.00"}, {"number": "L-2", "total": "50.00"}]
    )
    connection = refreshed(connect, built)
    # the void's answer is lost once (it acted): the retry finds it voided and adds the note
    upstream.set_faults(
        "xero",
        rules=[
            {
                "method": "POST",
                "path_contains": "/Invoices",
                "status": 504,
                "after": True,
                "times": 1,
            }
        ],
    )
    batch = run_all(queue(connection, built["bills"][:1], CLEANUP))
    upstream.clear_faults()
    void = step_of(batch, StepKind.XERO_VOID_INVOICE)
    assert void.state == StepState.DONE and void.attempts == 2
    notes = [
        r
        for r in upstream.xero_history(built["bills"][0]["xero_invoice_id"])
        if r["Changes"] == "Note"
    ]
    assert len(notes) == 1

    Connection.objects.filter(pk=connection.pk).update(xero_history_notes=False)
    connection.refresh_from_db()
    since = upstream.last_request_id()
    rows = rows_for_actionstep_ids(
        connection, invoice_ids=[built["bills"][1]["id"]], payment_ids=[]
    )
    assert rows.plan(CLEANUP).xero_calls().notes == 0
    run_all(queue(connection, built["bills"][1:], CLEANUP))
    assert [c for c in upstream.requests(since=since, api="xero") if c["method"] == "PUT"] == []


def test_a_renamed_void_whose_answer_was_lost_is_noted_once_as_renamed(upstream, connect):
    built = upstream.build([{"number": "R-1", "total": "100.00"}])
    connection = refreshed(connect, built)
    upstream.set_faults(
        "xero",
        rules=[
            {
                "method": "POST",
                "path_contains": "/Invoices",
                "status": 504,
                "after": True,
                "times": 1,
            }
        ],
    )
    batch = run_all(
        queue(connection, built["bills"], PlanOptions(xero_cleanup=True, free_numbers=True))
    )
    upstream.clear_faults()
    void = step_of(batch, StepKind.XERO_VOID_INVOICE)
    assert void.state == StepState.DONE and void.attempts == 2
    assert void.result.startswith("already done (by attempt 1's write)")
    invoice_id = built["bills"][0]["xero_invoice_id"]
    assert upstream.xero_invoice(invoice_id)["InvoiceNumber"] == "R-1-VOID"
    notes = [r["Details"] for r in upstream.xero_history(invoice_id) if r["Changes"] == "Note"]
    assert notes == [
        f"Renamed from R-1 to R-1-VOID and voided by Unlinker batch {batch.pk} from the command "
        "line: unlinked from Actionstep; R-1 is free for the invoice approved again"
    ]
