"""The ordering invariant of plan_unlink, on random firms, selections and options."""

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from unlinker.mirror.models import LinkStatus, XeroStatus
from unlinker.unlinking.models import StepKind as K
from unlinker.unlinking.planning import (
    XERO_GONE_STATUSES,
    InvoiceAfter,
    PaymentRemoval,
    PlanOptions,
    plan_unlink,
)

from .factories import count_linked, invoice, payment

GONE = datetime(2025, 3, 2, tzinfo=UTC)
XERO_INVOICE_STEPS = {K.XERO_VOID_INVOICE, K.XERO_DELETE_INVOICE}
INVOICE_AFTER_STEPS = {K.REVERT_INVOICE, K.DELETE_INVOICE}
REMOVAL_STEPS = {K.DELETE_PAYMENT, K.REVERSE_PAYMENT}

record_state = st.fixed_dictionaries(
    {
        "link_status": st.sampled_from(LinkStatus.values),
        "vanished_at": st.sampled_from([None, None, None, GONE]),
        "xero_status": st.sampled_from(XeroStatus.values),
    }
)


@st.composite
def firms(draw):
    invoices, payments = [], []
    for n in range(1, draw(st.integers(1, 6)) + 1):
        inv = invoice(
            n, **draw(record_state), xero_invoice_id=draw(st.sampled_from(["x", "x", ""]))
        )
        invoices.append(inv)
        for k in range(draw(st.integers(0, 3))):
            payments.append(
                payment(
                    n * 10 + k,
                    inv,
                    **draw(record_state),
                    actionstep_status=draw(st.sampled_from(["Active", "Active", "Reversed"])),
                    is_batch_payment=draw(st.booleans()),
                    xero_payment_id=draw(st.sampled_from(["y", "y", ""])),
                )
            )
    count_linked(invoices, payments)
    for inv in invoices:  # now and then the mirror is behind Actionstep
        inv.linked_payment_count += draw(st.sampled_from([0, 0, 0, 1]))
    return invoices, payments


options = st.builds(
    PlanOptions,
    remove_payments=st.sampled_from(PaymentRemoval.values),
    after=st.sampled_from(InvoiceAfter.values),
    xero_cleanup=st.booleans(),
)


@st.composite
def cases(draw):
    invoices, payments = draw(firms())
    selected_invoices = draw(st.lists(st.sampled_from(invoices), unique_by=lambda i: i.pk))
    selected_payments = (
        draw(st.lists(st.sampled_from(payments), unique_by=lambda p: p.pk)) if payments else []
    )
    return invoices, payments, selected_invoices, selected_payments, draw(options)


def still_linked(record) -> bool:
    return record.link_status == LinkStatus.LINKED and record.vanished_at is None


def live_in_xero(record) -> bool:
    xero_id = getattr(record, "xero_payment_id", None) or getattr(record, "xero_invoice_id", "")
    return bool(xero_id) and record.xero_status not in XERO_GONE_STATUSES


@settings(max_examples=400, deadline=None)
@given(cases())
def test_every_plan_orders_each_step_after_what_must_be_done_first(case):
    invoices, payments, selected_invoices, selected_payments, opts = case
    plan = plan_unlink(selected_invoices, selected_payments, opts, invoice_payments=payments)
    steps = plan.steps

    # positions are the list order, and a topological order of the dependencies
    assert [s.position for s in steps] == list(range(len(steps)))
    for s in steps:
        assert all(d < s.position for d in s.depends_on)
    # a dependency always points at a step that will run; a skipped step waits for nothing
    for s in steps:
        assert all(not steps[d].skipped for d in s.depends_on)
        if s.skipped:
            assert s.depends_on == ()

    def before(s):
        """Every step that must be done before `s`."""
        seen, todo = set(), list(s.depends_on)
        while todo:
            d = todo.pop()
            if d not in seen:
                seen.add(d)
                todo.extend(steps[d].depends_on)
        return {(steps[d].kind, steps[d].target.pk) for d in seen}

    payments_of = {inv.pk: [p for p in payments if p.invoice_id == inv.pk] for inv in invoices}
    runnable = [s for s in steps if not s.skipped]
    for s in runnable:
        done_first = before(s)
        if s.kind == K.UNLINK_INVOICE:
            # never unlinked while one of its payments is still linked, as far as the mirror
            # knows (a vanished payment that was linked included), nor when Actionstep counts
            # more linked payments than the mirror holds
            for p in payments_of[s.target.pk]:
                if p.link_status == LinkStatus.LINKED:
                    assert (K.UNLINK_PAYMENT, p.pk) in done_first
            linked = sum(p.link_status == LinkStatus.LINKED for p in payments_of[s.target.pk])
            assert s.target.linked_payment_count <= linked
        if s.kind in XERO_INVOICE_STEPS:
            # never voided or deleted in Xero while it still has a payment there
            for p in payments_of[s.target.pk]:
                if live_in_xero(p):
                    assert (K.XERO_DELETE_PAYMENT, p.pk) in done_first
                    assert not p.is_batch_payment
            if still_linked(s.target):
                assert (K.UNLINK_INVOICE, s.target.pk) in done_first
        if s.kind in INVOICE_AFTER_STEPS:
            if still_linked(s.target):
                assert (K.UNLINK_INVOICE, s.target.pk) in done_first
            for p in payments_of[s.target.pk]:
                if p.vanished_at is None and p.actionstep_status == "Active":
                    assert any((kind, p.pk) in done_first for kind in REMOVAL_STEPS)
        if s.kind in REMOVAL_STEPS | {K.XERO_DELETE_PAYMENT} and still_linked(s.target):
            assert (K.UNLINK_PAYMENT, s.target.pk) in done_first

    # steps of different invoices never depend on each other
    for group in plan.groups:
        own = {s.position for s in group.steps}
        assert all(set(s.depends_on) <= own for s in group.steps)

    # every selected record is in the plan, and nothing outside the selection and its invoices
    targets = {(type(s.target).__name__, s.target.pk) for s in steps}
    for inv in selected_invoices:
        assert ("LinkedInvoice", inv.pk) in targets
    for p in selected_payments:
        assert ("LinkedPayment", p.pk) in targets
    allowed = {p.pk for p in selected_payments} | {
        p.pk for inv in selected_invoices for p in payments_of[inv.pk]
    }
    assert {pk for name, pk in targets if name == "LinkedPayment"} <= allowed
    assert {pk for name, pk in targets if name == "LinkedInvoice"} <= {
        i.pk for i in selected_invoices
    }
    # only steps the options ask for
    if not opts.xero_cleanup:
        assert not any(s.kind.startswith("xero_") for s in steps)
    if opts.remove_payments == PaymentRemoval.NONE:
        assert not any(s.kind in REMOVAL_STEPS for s in steps)
    if opts.after == InvoiceAfter.NONE:
        assert not any(s.kind in INVOICE_AFTER_STEPS for s in steps)
