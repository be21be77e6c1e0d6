"""plan_xero_cleanup: removing duplicates from Xero, rule by rule. Pure: no database."""

from decimal import Decimal

import pytest

from unlinker.mirror.models import LinkStatus, XeroStatus
from unlinker.unlinking import planning
from unlinker.unlinking.models import StepKind as K
from unlinker.unlinking.planning import (
    InvalidOptions,
    Plan,
    PlanOptions,
    XeroDuplicate,
    plan_unlink,
    plan_xero_cleanup,
)

from .factories import invoice, payment

DUPLICATE_ID = "22222222-0000-0000-0000-000000000001"


def duplicate(of, status=XeroStatus.AUTHORISED, total="110.00", payment_ids=(), **fields):
    return XeroDuplicate(
        invoice=of,
        xero_invoice_id=fields.pop("xero_invoice_id", DUPLICATE_ID),
        status=status,
        total=Decimal(total),
        payment_ids=tuple(payment_ids),
    )


def unlinked_payment(pk, of, **fields):
    return payment(pk, of, link_status=LinkStatus.UNLINKED, **fields)


def shape(plan):
    return [(s.kind, s.target.pk, s.skip_reason, s.depends_on) for s in plan.steps]


def test_an_authorised_duplicate_is_voided_and_nothing_is_planned_in_actionstep():
    inv = invoice(1)
    plan = plan_xero_cleanup([duplicate(inv)])

    assert shape(plan) == [(K.XERO_VOID_INVOICE, 1, "", ())]
    (step,) = plan.steps
    # the step belongs to the Actionstep invoice and acts on the duplicate's Xero id
    assert step.invoice.pk == inv.pk and step.target.xero_invoice_id == DUPLICATE_ID
    assert step.target_label == "Duplicate INV-000001 in Xero (Smith & Co), AUD 110.00"
    assert inv.xero_invoice_id == "00000000-0000-0000-0000-000000000001"  # left as it was
    assert plan.options == PlanOptions(xero_cleanup=True)
    assert plan.summary() == "1 invoice · 1 step · Xero clean-up"
    assert plan.stays_in_xero == []


@pytest.mark.parametrize(
    "status, kind",
    [
        (XeroStatus.DRAFT, K.XERO_DELETE_INVOICE),
        (XeroStatus.SUBMITTED, K.XERO_DELETE_INVOICE),
        (XeroStatus.AUTHORISED, K.XERO_VOID_INVOICE),
        (XeroStatus.PAID, K.XERO_VOID_INVOICE),
    ],
)
def test_drafts_are_deleted_and_approved_duplicates_voided(status, kind):
    plan = plan_xero_cleanup([duplicate(invoice(1), status=status)])
    assert [s.kind for s in plan.steps] == [kind]


def test_the_payments_of_a_paid_duplicate_are_deleted_before_it_is_voided():
    inv = invoice(1)
    p1, p2 = unlinked_payment(11, inv), unlinked_payment(12, inv)
    dup = duplicate(
        inv, XeroStatus.PAID, payment_ids=[p1.xero_payment_id.upper(), p2.xero_payment_id]
    )
    plan = plan_xero_cleanup([dup], [p1, p2])

    assert shape(plan) == [
        (K.XERO_DELETE_PAYMENT, 11, "", ()),
        (K.XERO_DELETE_PAYMENT, 12, "", ()),
        (K.XERO_VOID_INVOICE, 1, "", (0, 1)),
    ]
    assert [s.added_automatically for s in plan.steps] == [True, True, False]
    (change_payments, change_invoices) = plan.xero_changes()
    assert (change_payments.kind, change_payments.total) == (K.XERO_DELETE_PAYMENT, Decimal(100))
    assert (change_invoices.kind, change_invoices.total) == (K.XERO_VOID_INVOICE, Decimal(110))


def test_a_batch_payment_is_left_to_a_person_and_holds_its_duplicate_back():
    inv = invoice(1)
    batch = unlinked_payment(11, inv, is_batch_payment=True)
    plain = unlinked_payment(12, inv)
    dup = duplicate(inv, payment_ids=[batch.xero_payment_id, plain.xero_payment_id])
    plan = plan_xero_cleanup([dup], [batch, plain])

    left = planning.PAYMENT_LEFT_IN_XERO.format(
        payment="Payment RCPT-11 of AUD 50.00 on INV-000001", reason=planning.BATCH_PAYMENT
    )
    assert shape(plan) == [
        (K.XERO_DELETE_PAYMENT, 11, planning.BATCH_PAYMENT, ()),
        (K.XERO_DELETE_PAYMENT, 12, "", ()),
        (K.XERO_VOID_INVOICE, 1, left, ()),
    ]
    assert [(x.label, x.reason) for x in plan.stays_in_xero] == [
        ("Duplicate INV-000001 in Xero (Smith & Co), AUD 110.00", left),
        ("Payment RCPT-11 of AUD 50.00 on INV-000001", planning.BATCH_PAYMENT),
    ]


def test_a_payment_still_linked_in_actionstep_is_not_deleted():
    inv = invoice(1)
    linked = payment(11, inv, link_status=LinkStatus.LINKED)
    plan = plan_xero_cleanup([duplicate(inv, payment_ids=[linked.xero_payment_id])], [linked])
    assert [(s.kind, s.skip_reason) for s in plan.steps] == [
        (K.XERO_DELETE_PAYMENT, planning.PAYMENT_STILL_LINKED),
        (
            K.XERO_VOID_INVOICE,
            planning.PAYMENT_LEFT_IN_XERO.format(
                payment="Payment RCPT-11 of AUD 50.00 on INV-000001",
                reason=planning.PAYMENT_STILL_LINKED,
            ),
        ),
    ]
    assert plan.runnable_count == 0


def test_a_payment_the_lists_do_not_know_holds_the_duplicate_back():
    inv = invoice(1)
    plan = plan_xero_cleanup([duplicate(inv, payment_ids=["33333333-0000-0000-0000-000000000009"])])
    assert [(s.kind, s.skip_reason) for s in plan.steps] == [
        (
            K.XERO_VOID_INVOICE,
            "1 payment on it in Xero is not in the linked lists: delete it in Xero by hand",
        )
    ]
    assert len(plan.stays_in_xero) == 1


def test_a_payment_already_deleted_in_xero_is_not_planned():
    inv = invoice(1)
    gone = unlinked_payment(11, inv, xero_status=XeroStatus.DELETED)
    plan = plan_xero_cleanup([duplicate(inv, payment_ids=[gone.xero_payment_id])], [gone])
    assert shape(plan) == [(K.XERO_VOID_INVOICE, 1, "", ())]


def test_a_duplicate_already_voided_is_skipped():
    plan = plan_xero_cleanup([duplicate(invoice(1), status=XeroStatus.VOIDED)])
    assert [s.skip_reason for s in plan.steps] == ["already voided in Xero"]
    assert plan.runnable_count == 0 and plan.stays_in_xero == []


def test_duplicates_are_appended_to_the_clean_up_of_orphans():
    orphan = invoice(1, link_status=LinkStatus.UNLINKED)
    orphan_payment = unlinked_payment(11, orphan)
    original = invoice(2)
    first = duplicate(original, xero_invoice_id="22222222-0000-0000-0000-000000000001")
    second = duplicate(original, xero_invoice_id="22222222-0000-0000-0000-000000000002")

    plan = plan_unlink(
        [orphan], [], PlanOptions(xero_cleanup=True), invoice_payments=[orphan_payment]
    )
    assert plan_xero_cleanup([first, second], plan=plan) is plan

    assert shape(plan) == [
        (K.UNLINK_INVOICE, 1, planning.ALREADY_UNLINKED, ()),
        (K.XERO_DELETE_PAYMENT, 11, "", ()),
        (K.XERO_VOID_INVOICE, 1, "", (1,)),
        (K.XERO_VOID_INVOICE, 2, "", ()),
        (K.XERO_VOID_INVOICE, 2, "", ()),
    ]
    assert [s.position for s in plan.steps] == [0, 1, 2, 3, 4]
    assert [s.target.xero_invoice_id for s in plan.steps[3:]] == [
        first.xero_invoice_id,
        second.xero_invoice_id,
    ]
    assert [len(g.steps) for g in plan.groups] == [3, 1, 1]
    assert plan.summary() == "3 invoices · 4 steps · Xero clean-up"


def test_a_plan_without_the_xero_clean_up_is_refused():
    with pytest.raises(InvalidOptions):
        plan_xero_cleanup([duplicate(invoice(1))], plan=Plan(options=PlanOptions()))
