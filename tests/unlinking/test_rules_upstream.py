"""The rules are checked upstream at the moment of acting, whatever the mirror says and whatever
the API would accept: here the mirror is made to lie, and the sandbox is made lenient
(`set_lenient`), so that only Unlinker's own re-read can keep the rule."""

import pytest

from unlinker.integrations import actionstep_resources
from unlinker.mirror.models import LinkedInvoice, LinkedPayment, XeroStatus
from unlinker.unlinking.models import StepKind, StepState, UnlinkStep
from unlinker.unlinking.planning import PlanOptions

from .support import queue, run_all, synced

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["strict", "lenient"])
def sandbox_rules(request, upstream):
    """Every test runs twice: against the sandbox's refusals, and with every one switched off."""
    if request.param == "lenient":
        upstream.set_lenient(
            "payments_before_invoice",
            "unlinked_before_removal",
            "editable_bill",
            "void_with_allocations",
            "lock_dates",
        )
    return request.param


@pytest.fixture
def firm(upstream):
    return upstream.build(
        [{"total": "500.00", "payments": [{"amount": "200.00", "reference": "LATE-1"}]}]
    )


def test_an_invoice_is_not_unlinked_while_a_payment_the_mirror_never_saw_is_linked(
    upstream, connect, firm, sandbox_rules
):
    connection = synced(connect, firm)
    # The mirror lost the payment (a sync that had not seen it yet): it plans the invoice alone.
    LinkedPayment.objects.filter(connection=connection).delete()
    LinkedInvoice.objects.filter(connection=connection).update(linked_payment_count=0)
    since = upstream.last_request_id()
    batch = run_all(queue(connection, firm["bills"]))

    step = UnlinkStep.objects.get(batch=batch, kind=StepKind.UNLINK_INVOICE)
    assert step.state == StepState.FAILED
    # (the mirror has no row for it any more: it is named by its Actionstep id)
    payment_id = firm["bills"][0]["payments"][0]["id"]
    assert f"payment #{payment_id} is still linked to Xero in Actionstep" in step.error
    assert upstream.requests(since=since, api="actionstep", method="PUT") == []
    bill = firm["bills"][0]
    assert upstream.actionstep("xeroinvoicelinks", bill["link_id"])["linkStatus"] == "Linked"


def test_a_bill_is_not_reverted_while_a_payment_is_applied_upstream(
    upstream, connect, firm, sandbox_rules
):
    connection = synced(connect, firm)
    # The mirror believes the payment was reversed already: the plan reverts the invoice.
    LinkedPayment.objects.filter(connection=connection).update(
        actionstep_status=actionstep_resources.PAYMENT_REVERSED
    )
    since = upstream.last_request_id()
    batch = run_all(queue(connection, firm["bills"], PlanOptions(after="revert")))

    revert = UnlinkStep.objects.get(batch=batch, kind=StepKind.REVERT_INVOICE)
    assert revert.state == StepState.FAILED
    assert "still applied" in revert.error
    bill = firm["bills"][0]
    assert upstream.actionstep("bills", bill["id"])["status"] != "Draft"
    reverts = [
        c
        for c in upstream.requests(since=since, api="actionstep", method="PUT")
        if "/bills/" in c["path"]
    ]
    assert reverts == []


def test_a_xero_invoice_with_a_payment_is_never_voided(upstream, connect, firm, sandbox_rules):
    connection = synced(connect, firm)
    # The mirror believes the Xero payment is gone: the plan voids the invoice without it.
    LinkedPayment.objects.filter(connection=connection).update(xero_status=XeroStatus.DELETED)
    since = upstream.last_request_id()
    batch = run_all(queue(connection, firm["bills"], PlanOptions(xero_cleanup=True)))

    void = UnlinkStep.objects.get(batch=batch, kind=StepKind.XERO_VOID_INVOICE)
    assert void.state == StepState.FAILED
    assert "never voided while it has a payment" in void.error
    invoice = firm["bills"][0]["xero_invoice_id"]
    assert upstream.xero_invoice(invoice)["Status"] in ("AUTHORISED", "PAID")
    assert upstream.requests(since=since, api="xero", method="POST") == []
