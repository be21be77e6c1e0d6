"""plan_unlink, rule by rule. Pure: no database."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from unlinker.mirror.models import LinkStatus, XeroStatus
from unlinker.unlinking import planning
from unlinker.unlinking.models import StepKind as K
from unlinker.unlinking.planning import (
    InvalidOptions,
    InvoiceAfter,
    PaymentRemoval,
    PlanOptions,
    plan_unlink,
)

from .factories import count_linked, invoice, payment

GONE = datetime(2025, 3, 2, tzinfo=UTC)


def plan_for(invoices=(), payments=(), all_payments=(), **options):
    count_linked(invoices, all_payments)
    return plan_unlink(invoices, payments, PlanOptions(**options), invoice_payments=all_payments)


def kinds(plan):
    return [(step.kind, step.target.pk) for step in plan.steps]


def step(plan, kind, pk):
    (found,) = [s for s in plan.steps if s.kind == kind and s.target.pk == pk]
    return found


def test_selecting_an_invoice_adds_its_linked_payments_before_it():
    inv = invoice(1)
    p1, p2 = payment(11, inv), payment(12, inv)
    plan = plan_for([inv], all_payments=[p1, p2])

    assert kinds(plan) == [(K.UNLINK_PAYMENT, 11), (K.UNLINK_PAYMENT, 12), (K.UNLINK_INVOICE, 1)]
    assert [s.added_automatically for s in plan.steps] == [True, True, False]
    assert step(plan, K.UNLINK_INVOICE, 1).depends_on == (0, 1)
    assert plan.runnable_count == 3 and plan.skipped_count == 0
    (group,) = plan.groups
    assert group.invoice is inv and group.steps == plan.steps


def test_payments_already_unlinked_are_not_added_and_do_not_hold_the_invoice():
    inv = invoice(1)
    done = payment(11, inv, link_status=LinkStatus.UNLINKED)
    gone = payment(12, inv, link_status=LinkStatus.UNLINKED, vanished_at=GONE)
    plan = plan_for([inv], all_payments=[done, gone])

    assert kinds(plan) == [(K.UNLINK_INVOICE, 1)]
    assert plan.steps[0].depends_on == () and not plan.steps[0].skipped


def test_a_payment_linked_when_last_seen_but_gone_since_holds_the_invoice():
    inv = invoice(1)
    stale = payment(12, inv, vanished_at=GONE)
    plan = plan_for([inv], all_payments=[payment(11, inv), stale], xero_cleanup=True)

    assert (K.UNLINK_PAYMENT, 12) not in kinds(plan)  # nothing to unlink any more
    assert step(plan, K.UNLINK_INVOICE, 1).skip_reason == (
        "Payment RCPT-12 of AUD 50.00 on INV-000001 was linked when last seen but is no longer in "
        "Actionstep: refresh the linked lists and plan again"
    )
    assert step(plan, K.XERO_VOID_INVOICE, 1).skip_reason.startswith("the invoice stays linked")
    assert step(plan, K.XERO_DELETE_PAYMENT, 12).skip_reason == planning.GONE_UPSTREAM


def test_a_payment_selected_with_its_invoice_is_planned_once_and_not_marked_added():
    inv = invoice(1)
    p1, p2 = payment(11, inv), payment(12, inv)
    plan = plan_for([inv], [p1], all_payments=[p1, p2])

    assert kinds(plan) == [(K.UNLINK_PAYMENT, 11), (K.UNLINK_PAYMENT, 12), (K.UNLINK_INVOICE, 1)]
    assert [s.added_automatically for s in plan.steps] == [False, True, False]
    assert len(plan.groups) == 1 and plan.selected_payments == 1


def test_a_payment_selected_on_its_own_gets_only_its_own_steps():
    inv = invoice(1)
    p = payment(11, inv)
    plan = plan_for(
        [],
        [p],
        remove_payments=PaymentRemoval.REVERSE,
        after=InvoiceAfter.DELETE,
        xero_cleanup=True,
    )

    assert kinds(plan) == [
        (K.UNLINK_PAYMENT, 11),
        (K.REVERSE_PAYMENT, 11),
        (K.XERO_DELETE_PAYMENT, 11),
    ]
    assert plan.steps[1].depends_on == (0,) and plan.steps[2].depends_on == (0,)
    assert not any(s.added_automatically for s in plan.steps)
    (group,) = plan.groups
    assert group.invoice is None and group.payment is p


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({"link_status": LinkStatus.UNLINKED}, planning.ALREADY_UNLINKED),
        ({"vanished_at": GONE}, planning.GONE_UPSTREAM),
    ],
)
def test_selected_records_already_unlinked_or_gone_are_skipped_with_the_reason(fields, reason):
    inv = invoice(1, **fields)
    p = payment(21, invoice(2), **fields)
    plan = plan_for([inv], [p])

    assert [(s.kind, s.skip_reason) for s in plan.steps] == [
        (K.UNLINK_INVOICE, reason),
        (K.UNLINK_PAYMENT, reason),
    ]
    assert plan.runnable_count == 0


def test_an_invoice_with_linked_payments_the_mirror_does_not_show_is_not_unlinked():
    inv = invoice(1)
    p = payment(11, inv)
    count_linked([inv], [p])
    inv.linked_payment_count = 2  # Actionstep knows of one more than the mirror holds
    plan = plan_unlink(
        [inv], [], PlanOptions(after="revert", xero_cleanup=True), invoice_payments=[p]
    )

    unlink = step(plan, K.UNLINK_INVOICE, 1)
    assert "Actionstep counts 2 linked payments on it" in unlink.skip_reason
    assert "but the linked lists show 1" in unlink.skip_reason
    assert step(plan, K.REVERT_INVOICE, 1).skip_reason.startswith("the invoice stays linked")
    assert step(plan, K.XERO_VOID_INVOICE, 1).skip_reason.startswith("the invoice stays linked")
    # its known payment is still unlinked (and cleaned up): that is safe on its own
    assert not step(plan, K.UNLINK_PAYMENT, 11).skipped
    assert not step(plan, K.XERO_DELETE_PAYMENT, 11).skipped


@pytest.mark.parametrize(
    "removal, kind",
    [(PaymentRemoval.DELETE, K.DELETE_PAYMENT), (PaymentRemoval.REVERSE, K.REVERSE_PAYMENT)],
)
def test_payments_are_removed_only_after_their_unlink(removal, kind):
    inv = invoice(1)
    p1, p2 = payment(11, inv), payment(12, inv, link_status=LinkStatus.UNLINKED)
    plan = plan_for([inv], all_payments=[p1, p2], remove_payments=removal)

    assert kinds(plan) == [
        (K.UNLINK_PAYMENT, 11),
        (K.UNLINK_INVOICE, 1),
        (kind, 11),
        (kind, 12),
    ]
    assert step(plan, kind, 11).depends_on == (step(plan, K.UNLINK_PAYMENT, 11).position,)
    # already unlinked: removed straight away, still marked as added
    assert step(plan, kind, 12).depends_on == ()
    assert step(plan, kind, 12).added_automatically


@pytest.mark.parametrize(
    "after, kind",
    [(InvoiceAfter.REVERT, K.REVERT_INVOICE), (InvoiceAfter.DELETE, K.DELETE_INVOICE)],
)
def test_the_invoice_is_reverted_or_deleted_after_its_unlink_and_its_payments_removal(after, kind):
    inv = invoice(1)
    p1, p2 = payment(11, inv), payment(12, inv)
    plan = plan_for([inv], all_payments=[p1, p2], remove_payments="delete", after=after)

    final = plan.steps[-1]
    assert final.kind == kind and not final.skipped
    assert set(final.depends_on) == {
        step(plan, K.UNLINK_INVOICE, 1).position,
        step(plan, K.DELETE_PAYMENT, 11).position,
        step(plan, K.DELETE_PAYMENT, 12).position,
    }


def test_reverting_needs_the_applied_payments_removed():
    inv = invoice(1)
    applied, reversed_ = payment(11, inv), payment(12, inv, actionstep_status="Reversed")
    plan = plan_for([inv], all_payments=[applied, reversed_], after="revert")
    assert step(plan, K.REVERT_INVOICE, 1).skip_reason == planning.STILL_APPLIED

    plan = plan_for([invoice(1)], all_payments=[reversed_], after="revert")
    assert not step(plan, K.REVERT_INVOICE, 1).skipped


def test_payments_no_longer_applied_are_not_removed_again():
    inv = invoice(1)
    reversed_ = payment(11, inv, actionstep_status="Reversed", link_status=LinkStatus.UNLINKED)
    plan = plan_for([inv], all_payments=[reversed_], remove_payments="delete", after="revert")
    assert kinds(plan) == [(K.UNLINK_INVOICE, 1), (K.REVERT_INVOICE, 1)]

    # selected on its own, it is shown as skipped with the reason
    plan = plan_for([], [reversed_], remove_payments="delete")
    assert step(plan, K.DELETE_PAYMENT, 11).skip_reason == (
        "not applied to the invoice any more (reversed in Actionstep)"
    )


@pytest.mark.parametrize(
    "status, reason",
    [("Draft", planning.ALREADY_DRAFT), ("Deleted", planning.ALREADY_DELETED)],
)
def test_reverting_an_invoice_already_in_that_state_is_skipped(status, reason):
    plan = plan_for([invoice(1, actionstep_status=status)], after="revert")
    assert step(plan, K.REVERT_INVOICE, 1).skip_reason == reason


def test_xero_clean_up_order_payments_deleted_after_unlink_invoice_voided_after_all_of_them():
    inv = invoice(1, xero_status=XeroStatus.PAID)
    p1, p2 = payment(11, inv), payment(12, inv, link_status=LinkStatus.UNLINKED)
    plan = plan_for([inv], all_payments=[p1, p2], xero_cleanup=True)

    assert kinds(plan) == [
        (K.UNLINK_PAYMENT, 11),
        (K.UNLINK_INVOICE, 1),
        (K.XERO_DELETE_PAYMENT, 11),
        (K.XERO_DELETE_PAYMENT, 12),
        (K.XERO_VOID_INVOICE, 1),
    ]
    assert step(plan, K.XERO_DELETE_PAYMENT, 11).depends_on == (0,)
    assert step(plan, K.XERO_DELETE_PAYMENT, 12).depends_on == ()
    # PAID goes back to AUTHORISED once its payments are deleted: then it is voided
    assert set(step(plan, K.XERO_VOID_INVOICE, 1).depends_on) == {1, 2, 3}
    assert plan.stays_in_xero == []


@pytest.mark.parametrize(
    "status, kind",
    [
        (XeroStatus.DRAFT, K.XERO_DELETE_INVOICE),
        (XeroStatus.SUBMITTED, K.XERO_DELETE_INVOICE),
        (XeroStatus.AUTHORISED, K.XERO_VOID_INVOICE),
        (XeroStatus.UNKNOWN, K.XERO_VOID_INVOICE),
    ],
)
def test_xero_deletes_a_draft_or_submitted_invoice_and_voids_an_approved_one(status, kind):
    plan = plan_for([invoice(1, xero_status=status)], xero_cleanup=True)
    assert kinds(plan)[-1] == (kind, 1)
    assert not plan.steps[-1].skipped


def test_a_batch_payment_is_left_to_a_person_and_its_invoice_is_not_voided():
    inv = invoice(1)
    single, batch = payment(11, inv), payment(12, inv, is_batch_payment=True)
    plan = plan_for([inv], all_payments=[single, batch], xero_cleanup=True)

    skipped = step(plan, K.XERO_DELETE_PAYMENT, 12)
    assert skipped.skip_reason == "part of a Xero batch payment: remove it in Xero by hand"
    assert skipped.added_automatically and skipped.depends_on == ()
    void = step(plan, K.XERO_VOID_INVOICE, 1)
    assert void.skipped and "RCPT-12" in void.skip_reason and "batch payment" in void.skip_reason
    assert not step(plan, K.XERO_DELETE_PAYMENT, 11).skipped
    assert {(type(x.record).__name__, x.record.pk) for x in plan.stays_in_xero} == {
        ("LinkedInvoice", 1),
        ("LinkedPayment", 12),
    }


def test_records_already_gone_from_xero_are_skipped_and_do_not_block():
    inv = invoice(1)
    deleted = payment(11, inv, xero_status=XeroStatus.DELETED, link_status=LinkStatus.UNLINKED)
    plan = plan_for([inv], all_payments=[deleted], xero_cleanup=True)
    # an added payment with nothing to do is not shown; the invoice is voided
    assert kinds(plan) == [(K.UNLINK_INVOICE, 1), (K.XERO_VOID_INVOICE, 1)]

    voided = invoice(2, xero_status=XeroStatus.VOIDED)
    plan = plan_for([voided], xero_cleanup=True)
    assert step(plan, K.XERO_VOID_INVOICE, 2).skip_reason == "already voided in Xero"
    missing = invoice(3, xero_status=XeroStatus.MISSING)
    plan = plan_for([missing], xero_cleanup=True)
    assert step(plan, K.XERO_VOID_INVOICE, 3).skip_reason == "not found in Xero"
    assert plan.stays_in_xero == []


def test_an_unknown_xero_payment_blocks_the_void():
    inv = invoice(1)
    plan = plan_for([inv], all_payments=[payment(11, inv, xero_payment_id="")], xero_cleanup=True)
    assert step(plan, K.XERO_DELETE_PAYMENT, 11).skip_reason == planning.NO_XERO_ID
    assert step(plan, K.XERO_VOID_INVOICE, 1).skipped


def test_an_already_unlinked_invoice_can_still_be_cleaned_up_in_xero():
    # the reconciliation's orphan: unlinked in Actionstep, still AUTHORISED in Xero
    inv = invoice(1, link_status=LinkStatus.UNLINKED)
    plan = plan_for([inv], xero_cleanup=True, after="delete")
    assert [(s.kind, s.skip_reason, s.depends_on) for s in plan.steps] == [
        (K.UNLINK_INVOICE, planning.ALREADY_UNLINKED, ()),
        (K.DELETE_INVOICE, "", ()),
        (K.XERO_VOID_INVOICE, "", ()),
    ]


def test_steps_of_different_invoices_do_not_depend_on_each_other():
    a, b = invoice(1), invoice(2)
    pays = [payment(11, a), payment(21, b)]
    plan = plan_for(
        [a, b], all_payments=pays, remove_payments="delete", after="revert", xero_cleanup=True
    )
    for group in plan.groups:
        own = {s.position for s in group.steps}
        for s in group.steps:
            assert set(s.depends_on) <= own


def test_what_stays_in_xero_without_clean_up():
    inv = invoice(1, total=Decimal("200.00"))
    p = payment(11, inv, amount=Decimal("80.00"))
    plan = plan_for([inv], all_payments=[p])
    assert [(x.label, x.amount, x.reason) for x in plan.stays_in_xero] == [
        (
            "Invoice INV-000001 (Smith & Co), AUD 200.00",
            Decimal("200.00"),
            "Xero clean-up not chosen",
        ),
        (
            "Payment RCPT-11 of AUD 80.00 on INV-000001",
            Decimal("80.00"),
            "Xero clean-up not chosen",
        ),
    ]


def test_counts_per_kind_and_xero_changes_with_totals():
    a = invoice(1, xero_total=Decimal("110.00"))
    b = invoice(2, xero_status=XeroStatus.DRAFT, total=Decimal("40.00"), xero_total=None)
    c = invoice(3, link_status=LinkStatus.UNLINKED, xero_status=XeroStatus.VOIDED)
    pays = [payment(11, a, amount=Decimal("60.00")), payment(12, a, amount=Decimal("50.00"))]
    plan = plan_for([a, b, c], all_payments=pays, xero_cleanup=True)

    assert [(c.kind, c.planned, c.skipped) for c in plan.counts()] == [
        (K.UNLINK_PAYMENT, 2, 0),
        (K.UNLINK_INVOICE, 2, 1),
        (K.XERO_DELETE_PAYMENT, 2, 0),
        (K.XERO_VOID_INVOICE, 1, 1),
        (K.XERO_DELETE_INVOICE, 1, 0),
    ]
    assert [(x.kind, len(x.steps), x.total) for x in plan.xero_changes()] == [
        (K.XERO_DELETE_PAYMENT, 2, Decimal("110.00")),
        (K.XERO_VOID_INVOICE, 1, Decimal("110.00")),
        (K.XERO_DELETE_INVOICE, 1, Decimal("40.00")),
    ]
    assert plan.summary() == "3 invoices · 8 steps · Xero clean-up"


def test_options_validate_and_round_trip_through_json():
    options = PlanOptions(remove_payments="reverse", after="revert", xero_cleanup=True)
    assert options.remove_payments is PaymentRemoval.REVERSE
    data = json.loads(json.dumps(options.to_dict()))
    assert data == {
        "remove_payments": "reverse",
        "after": "revert",
        "xero_cleanup": True,
        "remove_allocations": False,
        "free_numbers": False,
    }
    assert PlanOptions.from_dict(data) == options
    assert PlanOptions.from_dict({}) == PlanOptions()
    # a batch stored before the clean-up's own options existed reads as without them
    stored = {"remove_payments": "none", "after": "none", "xero_cleanup": True}
    assert PlanOptions.from_dict(stored) == PlanOptions(xero_cleanup=True)

    with pytest.raises(InvalidOptions, match="remove_payments must be one of"):
        PlanOptions(remove_payments="shred")
    with pytest.raises(InvalidOptions, match="after must be one of"):
        PlanOptions.from_dict({"after": "void"})
    with pytest.raises(InvalidOptions, match="xero_cleanup"):
        PlanOptions(xero_cleanup="yes")
    with pytest.raises(InvalidOptions, match="unknown options: colour"):
        PlanOptions.from_dict({"colour": "red"})
    for name in ("remove_allocations", "free_numbers"):
        with pytest.raises(InvalidOptions, match=f"{name} is part of the clean-up in Xero"):
            PlanOptions(**{name: True})
        with pytest.raises(InvalidOptions, match=f"{name} must be true or false"):
            PlanOptions(xero_cleanup=True, **{name: "on"})


def test_the_digest_changes_with_the_options_and_with_the_records():
    inv = invoice(1)
    plain = plan_for([inv])
    assert plain.digest() == plan_for([invoice(1)]).digest()
    assert plain.digest() != plan_for([invoice(1)], after="revert").digest()
    assert plain.digest() != plan_for([invoice(1, link_status=LinkStatus.UNLINKED)]).digest()
    assert plain.digest() != plan_for([invoice(2)]).digest()


def test_duplicates_in_the_input_are_planned_once():
    inv = invoice(1)
    p = payment(11, inv)
    plan = plan_for([inv, inv], [p, p], all_payments=[p, p])
    assert kinds(plan) == [(K.UNLINK_PAYMENT, 11), (K.UNLINK_INVOICE, 1)]
