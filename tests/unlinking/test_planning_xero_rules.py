"""What Xero refuses besides payments, planned up front: lock dates, allocations, batch payments
shared with other invoices; and what the clean-up's own options plan: allocations removed
first, numbers freed, history notes counted. Pure: no database."""

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from unlinker.core.display import format_date
from unlinker.integrations.records import XeroLocks
from unlinker.mirror.models import LinkStatus, XeroStatus
from unlinker.unlinking.models import StepKind as K
from unlinker.unlinking.planning import (
    PlanOptions,
    XeroContext,
    XeroDuplicate,
    credit_of_key,
    credits_of,
    plan_unlink,
    plan_xero_cleanup,
)

from .factories import invoice, payment

CLEANUP = PlanOptions(xero_cleanup=True)
LOCK = date(2026, 9, 30)
LOCKED = XeroContext(locks=XeroLocks(period_lock_date=LOCK))
PERIOD_LOCK = (
    "blocked by Xero's period lock date 30 Sep 2026: the firm's adviser must move it first"
)


def credit(kind="CREDITNOTE", doc="c1", amount="30.00", number="CN-1", on="2026-10-10"):
    return {"kind": kind, "document_id": doc, "number": number, "amount": amount, "date": on}


def shape(plan):
    return [(s.kind, s.skip_reason, s.depends_on) for s in plan.steps]


def test_a_void_dated_on_the_period_lock_date_is_skipped_with_the_date():
    inv = invoice(1, link_status=LinkStatus.UNLINKED, invoice_date=LOCK)
    plan = plan_unlink([inv], [], CLEANUP, xero=LOCKED)
    assert shape(plan) == [
        (K.UNLINK_INVOICE, "already unlinked", ()),
        (K.XERO_VOID_INVOICE, PERIOD_LOCK, ()),
    ]
    assert plan.runnable_count == 0 and plan.locked_count() == 1
    assert [leftover.reason for leftover in plan.stays_in_xero] == [PERIOD_LOCK]
    # the day after is not locked; Xero's own date counts over Actionstep's
    assert (
        plan_unlink(
            [invoice(2, invoice_date=LOCK + timedelta(days=1))], [], CLEANUP, xero=LOCKED
        ).locked_count()
        == 0
    )
    moved = invoice(3, invoice_date=LOCK + timedelta(days=5), xero_date=LOCK)
    assert plan_unlink([moved], [], CLEANUP, xero=LOCKED).locked_count() == 1


def test_the_end_of_year_lock_is_named_first_and_a_locked_payment_keeps_its_invoice():
    xero = XeroContext(
        locks=XeroLocks(period_lock_date=date(2026, 9, 30), end_of_year_lock_date=date(2026, 6, 30))
    )
    inv = invoice(1, invoice_date=date(2026, 10, 2))
    old_payment = payment(11, inv, payment_date=date(2026, 3, 1))
    inv.linked_payment_count = 1
    plan = plan_unlink([inv], [], CLEANUP, invoice_payments=[old_payment], xero=xero)
    by_kind = {s.kind: s for s in plan.steps}
    assert by_kind[K.XERO_DELETE_PAYMENT].skip_reason == (
        "blocked by Xero's end-of-year lock date 30 Jun 2026: the firm's adviser must move it first"
    )
    # what depends on it is handled as for any blocked step: the void is skipped, with why
    void = by_kind[K.XERO_VOID_INVOICE]
    assert (
        void.skipped
        and "stays in Xero (blocked by Xero's end-of-year lock date" in void.skip_reason
    )
    assert not by_kind[K.UNLINK_INVOICE].skipped  # Actionstep's side is not locked


def test_a_duplicate_dated_in_a_locked_period_is_left_with_the_date():
    dup = XeroDuplicate(
        invoice=invoice(1),
        xero_invoice_id="d1",
        status="AUTHORISED",
        total=Decimal(5),
        xero_date=date(2026, 1, 1),
    )
    (step,) = plan_xero_cleanup([dup], xero=LOCKED).steps
    assert step.skip_reason == PERIOD_LOCK


def test_allocations_are_shown_and_without_the_option_the_void_is_skipped():
    inv = invoice(
        1,
        xero_amount_credited=Decimal("120.00"),
        xero_credits=[
            credit(),
            credit("PREPAYMENT", "p1", "40.00", ""),
            credit("OVERPAYMENT", "o1", "50.00", ""),
        ],
    )
    plan = plan_unlink([inv], [], CLEANUP)
    void = plan.steps[-1]
    assert void.kind == K.XERO_VOID_INVOICE
    assert void.skip_reason == (
        "credit note CN-1 of 30.00, prepayment of 40.00 and overpayment of 50.00 are allocated "
        "to it in Xero: choose \u201cremove allocations first\u201d, or remove them in Xero"
    )
    assert void.details == (
        "allocated to it in Xero: credit note CN-1 of 30.00, prepayment of 40.00 and "
        "overpayment of 50.00",
    )
    assert not any(s.kind == K.XERO_DELETE_ALLOCATION for s in plan.steps)


def test_remove_allocations_first_plans_one_delete_per_document_before_the_void():
    inv = invoice(
        1,
        xero_amount_credited=Decimal("100.00"),
        xero_credits=[
            credit(amount="30.00"),
            credit(amount="20.00"),
            credit("PREPAYMENT", "P1", "50.00", ""),
        ],
    )
    options = PlanOptions(xero_cleanup=True, remove_allocations=True)
    plan = plan_unlink([inv], [], options)
    assert [(s.kind, s.target_label, s.skip_reason, s.depends_on) for s in plan.steps] == [
        (K.UNLINK_INVOICE, "Invoice INV-000001 (Smith & Co), AUD 110.00", "", ()),
        (K.XERO_DELETE_ALLOCATION, "Credit note CN-1 of 50.00 allocated to INV-000001", "", (0,)),
        (K.XERO_DELETE_ALLOCATION, "Prepayment of 50.00 allocated to INV-000001", "", (0,)),
        (K.XERO_VOID_INVOICE, "Invoice INV-000001 (Smith & Co), AUD 110.00", "", (0, 1, 2)),
    ]
    removal = plan.steps[1]
    assert removal.xero_id == "c1" and credit_of_key(removal.record_key) == ("CREDITNOTE", "c1")
    assert credit_of_key(plan.steps[2].record_key) == ("PREPAYMENT", "p1")
    assert plan.destructive_counts() == [
        "2 allocations removed in Xero",
        "1 invoice voided in Xero",
    ]
    (removed, voided) = plan.xero_changes()
    assert (removed.kind, removed.total) == (K.XERO_DELETE_ALLOCATION, Decimal("100.00"))
    assert plan.summary() == "1 invoice · 4 steps · Xero clean-up · allocations removed first"


def test_allocations_are_removed_all_or_none():
    locked = invoice(
        1,
        invoice_date=date(2026, 10, 1),
        xero_credits=[credit(), credit("PREPAYMENT", "p1", "40.00", "", "2026-09-01")],
    )
    options = PlanOptions(xero_cleanup=True, remove_allocations=True)
    plan = plan_unlink([locked], [], options, xero=LOCKED)
    # one allocation is locked: none is removed, and the void says which and why
    assert [s.kind for s in plan.steps] == [K.UNLINK_INVOICE, K.XERO_VOID_INVOICE]
    assert plan.steps[-1].skip_reason == f"Prepayment of 40.00 stays allocated ({PERIOD_LOCK})"

    unknown = invoice(2, xero_amount_credited=Decimal("80.00"), xero_credits=[credit()])
    void = plan_unlink([unknown], [], options).steps[-1]
    assert void.skip_reason.startswith("50.00 of credit notes, prepayments or overpayments is")

    # a payment that stays keeps the allocations too: nothing would be voided after
    inv = invoice(3, xero_credits=[credit()], linked_payment_count=1)
    batch = payment(31, inv, is_batch_payment=True)
    plan = plan_unlink([inv], [], options, invoice_payments=[batch])
    assert not any(s.kind == K.XERO_DELETE_ALLOCATION for s in plan.steps)

    # and they are removed only after the invoice's payments are deleted in Xero
    inv = invoice(4, xero_credits=[credit()], linked_payment_count=1)
    plan = plan_unlink([inv], [], options, invoice_payments=[payment(41, inv)])
    kinds = [s.kind for s in plan.steps]
    removal = plan.steps[kinds.index(K.XERO_DELETE_ALLOCATION)]
    assert kinds.index(K.XERO_DELETE_PAYMENT) in removal.depends_on


def test_a_batch_payment_names_the_other_invoices_its_batch_pays():
    inv = invoice(1, linked_payment_count=1)
    shared = payment(
        11,
        inv,
        is_batch_payment=True,
        xero_batch_invoices=[
            {"number": "INV-7", "amount": "120.00"},
            {"number": "INV-9", "amount": "80"},
        ],
    )
    plan = plan_unlink([inv], [], CLEANUP, invoice_payments=[shared])
    step = next(s for s in plan.steps if s.kind == K.XERO_DELETE_PAYMENT)
    assert step.skip_reason == (
        "part of a Xero batch payment that also pays INV-7 (120.00) and INV-9 (80.00): deleting "
        "the batch would un-pay them too, so remove it in Xero by hand"
    )


def test_free_the_number_explains_the_consequence_and_changes_the_digest():
    inv = invoice(1, xero_invoice_number="INV-000001")
    freed = plan_unlink([inv], [], PlanOptions(xero_cleanup=True, free_numbers=True))
    assert freed.steps[-1].details == (
        "renamed INV-000001-VOID in the call that voids it: INV-000001 is free for the invoice "
        "approved again in Actionstep",
    )
    plain = plan_unlink([inv], [], CLEANUP)
    assert plain.steps[-1].details == () and plain.digest() != freed.digest()
    custom = plan_unlink(
        [invoice(2, xero_status=XeroStatus.DRAFT)],
        [],
        PlanOptions(xero_cleanup=True, free_numbers=True),
        xero=XeroContext(void_suffix="/X"),
    )
    assert (
        custom.steps[-1].details[0].startswith("renamed INV-000002/X in the call that deletes it")
    )


def test_the_estimate_of_xero_calls_counts_the_history_notes():
    invoices = [invoice(n, linked_payment_count=1) for n in range(1, 61)]
    payments = [payment(100 + n, inv) for n, inv in enumerate(invoices)]
    plan = plan_unlink(invoices, [], CLEANUP, invoice_payments=payments)
    calls = plan.xero_calls()
    # 60 payment deletes: organisation, payment, delete, note each; 60 voids: 2 calls of 50
    # (organisation, invoices, POST) at least, one each at most; and a note each
    assert calls.notes == 120
    assert calls.least == 60 * 4 + 2 * 3 + 60
    assert calls.most == 60 * 4 + 60 * 3 + 60
    quiet = plan_unlink(
        invoices, [], CLEANUP, invoice_payments=payments, xero=XeroContext(history_notes=False)
    )
    assert quiet.xero_calls().notes == 0 and quiet.xero_calls().least == 60 * 3 + 2 * 3
    assert quiet.digest() != plan.digest()
    assert plan_unlink(invoices, [], PlanOptions()).xero_calls().most == 0


# --- the property -------------------------------------------------------------------------

days = st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 12, 31))
maybe_day = st.one_of(st.none(), days)


@st.composite
def dated_firms(draw):
    invoices, payments = [], []
    for n in range(1, draw(st.integers(1, 5)) + 1):
        credits = [
            credit(kind, f"d{n}{k}", "10.00", "", (draw(days)).isoformat())
            for k, kind in enumerate(
                draw(
                    st.lists(
                        st.sampled_from(["CREDITNOTE", "PREPAYMENT", "OVERPAYMENT"]), max_size=2
                    )
                )
            )
        ]
        inv = invoice(
            n,
            link_status=draw(st.sampled_from(LinkStatus.values)),
            xero_status=draw(
                st.sampled_from([XeroStatus.AUTHORISED, XeroStatus.DRAFT, XeroStatus.PAID])
            ),
            invoice_date=draw(days),
            xero_date=draw(maybe_day),
            xero_credits=credits,
            xero_amount_credited=Decimal(10 * len(credits)),
        )
        invoices.append(inv)
        for k in range(draw(st.integers(0, 2))):
            payments.append(
                payment(
                    n * 10 + k,
                    inv,
                    link_status=draw(st.sampled_from(LinkStatus.values)),
                    payment_date=draw(days),
                    xero_date=draw(maybe_day),
                )
            )
        inv.linked_payment_count = sum(
            p.invoice_id == inv.pk and p.link_status == LinkStatus.LINKED for p in payments
        )
    return invoices, payments


def xero_day(record):
    return record.xero_date or getattr(record, "payment_date", None) or record.invoice_date


@settings(max_examples=300, deadline=None)
@given(
    firm=dated_firms(),
    period=maybe_day,
    end_of_year=maybe_day,
    remove_allocations=st.booleans(),
)
def test_no_plan_schedules_a_xero_change_dated_in_a_locked_period(
    firm, period, end_of_year, remove_allocations
):
    invoices, payments = firm
    locks = XeroLocks(period_lock_date=period, end_of_year_lock_date=end_of_year)
    latest_lock = max((d for d in (period, end_of_year) if d), default=None)

    def locked(day):
        return latest_lock is not None and day is not None and day <= latest_lock

    options = PlanOptions(xero_cleanup=True, remove_allocations=remove_allocations)
    plan = plan_unlink(
        invoices, [], options, invoice_payments=payments, xero=XeroContext(locks=locks)
    )
    for step in plan.steps:
        if step.skipped or not step.kind.startswith("xero_"):
            continue
        if step.kind == K.XERO_DELETE_ALLOCATION:
            kind, document_id = credit_of_key(step.record_key)
            (allocated,) = [c for c in credits_of(step.invoice) if c.document_id == document_id]
            assert not locked(allocated.allocated_on), step
        else:
            assert not locked(xero_day(step.target)), step
        if step.kind in (K.XERO_VOID_INVOICE, K.XERO_DELETE_INVOICE):
            # never voided while something stays allocated to it
            before = {plan.steps[d].record_key for d in step.depends_on}
            for allocated in credits_of(step.invoice):
                assert remove_allocations and allocated.record_key in before, step
    # and every change the lock dates keep is skipped with the lock's date
    for step in plan.steps:
        if step.skip_reason.startswith("blocked by Xero's"):
            assert format_date(locks.lock_for(xero_day(step.target))[1]) in step.skip_reason
