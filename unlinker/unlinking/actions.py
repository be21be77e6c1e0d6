"""What each kind of step does upstream. Every action first re-reads, upstream, exactly what its
rule depends on — the record itself, and for an invoice its payments — and does nothing when the
record is already in the wanted state, so that a step retried after a crash never acts twice and
never acts on stale data. The rules hold here whatever the mirror says and whatever the API
would accept:

- an invoice is unlinked only when none of its payments' links is still live in Actionstep;
- an invoice is reverted or deleted in Actionstep only once it is unlinked and no payment is
  applied to it any more;
- a Xero invoice is voided or deleted only when Xero shows no payment and no credit note,
  prepayment or overpayment on it.
"""

import hashlib
from dataclasses import dataclass
from decimal import Decimal

from unlinker.integrations import actionstep_resources
from unlinker.integrations.errors import ValidationFailed
from unlinker.mirror.models import LinkedPayment, XeroStatus

from .models import StepKind, UnlinkStep


class Refused(Exception):
    """The step must not run: a rule of the domain would be broken. Not retried."""


@dataclass
class StepResult:
    """What a step found and did."""

    summary: str
    already: bool = False  # upstream was already in the wanted state: nothing was written
    xero_status: str = ""  # for Xero invoice clean-up: the status the invoice ended in
    changed: bool = True  # False when the wanted state was reached without this step's write


def _already(what: str, xero_status: str = "") -> StepResult:
    return StepResult(summary=what, already=True, xero_status=xero_status, changed=False)


def _payment_labels(connection_id: int, bill_payment_ids: list[int]) -> str:
    """The payments as people know them (their reference), for a refusal's message."""
    known = dict(
        LinkedPayment.objects.filter(
            connection_id=connection_id, actionstep_id__in=bill_payment_ids
        ).values_list("actionstep_id", "reference")
    )
    return ", ".join(known.get(pk) or f"#{pk}" for pk in bill_payment_ids[:5]) + (
        f" and {len(bill_payment_ids) - 5} more" if len(bill_payment_ids) > 5 else ""
    )


def unlink_payment(step: UnlinkStep, clients) -> StepResult:
    link_id = step.payment.link_id
    link = clients.actionstep.get_payment_link(link_id)
    if link.link_status == actionstep_resources.UNLINKED:
        return _already(f"payment link {link_id} was already unlinked")
    clients.actionstep.unlink_payment(link_id)
    return StepResult(f"payment link {link_id} unlinked")


def unlink_invoice(step: UnlinkStep, clients) -> StepResult:
    invoice = step.invoice
    link = clients.actionstep.get_invoice_link(invoice.link_id)
    if link.link_status == actionstep_resources.UNLINKED:
        return _already(f"invoice link {invoice.link_id} was already unlinked")
    # Payments first, read in Actionstep now: a payment linked since the plan was made, or one
    # the mirror never saw, keeps the invoice linked.
    still_linked = [
        payment_link.bill_payment_id or payment_link.id
        for payment_link in clients.actionstep.payment_links_for_bill(invoice.actionstep_id)
        if payment_link.link_status == actionstep_resources.LINKED
    ]
    if still_linked:
        labels = _payment_labels(invoice.connection_id, still_linked)
        noun = "payment" if len(still_linked) == 1 else "payments"
        verb = "is" if len(still_linked) == 1 else "are"
        raise Refused(
            f"{noun} {labels} {verb} still linked to Xero in Actionstep: the invoice is "
            "unlinked only after its payments"
        )
    clients.actionstep.unlink_invoice(invoice.link_id)
    return StepResult(f"invoice link {invoice.link_id} unlinked")


def _remove_payment(step: UnlinkStep, clients, *, reverse: bool) -> StepResult:
    payment_id = step.payment.actionstep_id
    payment = clients.actionstep.get_bill_payment(payment_id)
    if payment.status in (
        actionstep_resources.PAYMENT_DELETED,
        actionstep_resources.PAYMENT_REVERSED,
    ):
        return _already(f"payment {payment_id} is already {payment.status.lower()}")
    link = clients.actionstep.get_payment_link(step.payment.link_id)
    if link.link_status == actionstep_resources.LINKED:
        raise Refused(f"payment {payment_id} is still linked to Xero: it is unlinked first")
    reason = f"Removed by Unlinker batch {step.batch_id}"
    if reverse:
        clients.actionstep.reverse_payment(payment_id, reason)
        return StepResult(f"payment {payment_id} reversed")
    clients.actionstep.delete_payment(payment_id, reason)
    return StepResult(f"payment {payment_id} deleted")


def delete_payment(step, clients):
    return _remove_payment(step, clients, reverse=False)


def reverse_payment(step, clients):
    return _remove_payment(step, clients, reverse=True)


def _check_bill_editable(step: UnlinkStep, clients, bill) -> None:
    """Only an unlinked invoice with no payment applied can be edited or deleted in Actionstep:
    read both upstream now."""
    invoice = step.invoice
    link = clients.actionstep.get_invoice_link(invoice.link_id)
    if link.link_status == actionstep_resources.LINKED:
        raise Refused(f"invoice {bill.number} is still linked to Xero: it is unlinked first")
    applied = [
        payment.id
        for payment in clients.actionstep.payments_of_bill(bill.id)
        if payment.status == actionstep_resources.PAYMENT_ACTIVE
    ]
    if applied or (bill.total_paid or Decimal(0)) > 0:
        labels = _payment_labels(invoice.connection_id, applied) if applied else ""
        what = f"payments {labels} are" if len(applied) > 1 else f"payment {labels} is"
        if not applied:
            what = f"{bill.total_paid} of payments is"
        raise Refused(
            f"{what} still applied to invoice {bill.number} in Actionstep: remove them first"
        )


def revert_invoice(step: UnlinkStep, clients) -> StepResult:
    bill_id = step.invoice.actionstep_id
    bill = clients.actionstep.get_bill(bill_id)
    if bill.status == actionstep_resources.BILL_DRAFT:
        return _already(f"invoice {bill.number} is already a draft")
    if bill.status == actionstep_resources.BILL_DELETED:
        raise Refused(f"invoice {bill.number} was deleted in Actionstep")
    _check_bill_editable(step, clients, bill)
    clients.actionstep.revert_invoice_to_draft(bill_id)
    return StepResult(f"invoice {bill.number} reverted to draft")


def delete_invoice(step: UnlinkStep, clients) -> StepResult:
    bill_id = step.invoice.actionstep_id
    bill = clients.actionstep.get_bill(bill_id)
    if bill.status == actionstep_resources.BILL_DELETED:
        return _already(f"invoice {bill.number} was already deleted")
    _check_bill_editable(step, clients, bill)
    clients.actionstep.delete_invoice(bill_id)
    return StepResult(f"invoice {bill.number} deleted")


def xero_delete_payment(step: UnlinkStep, clients) -> StepResult:
    payment_id = step.xero_id or step.payment.xero_payment_id
    payment = clients.xero.get_payment(payment_id)
    if payment.status == "DELETED":
        return _already(f"Xero payment {payment_id} was already deleted")
    if payment.batch_payment_id:
        raise Refused(
            "this payment is part of a Xero batch payment: deleting the batch would un-pay every "
            "invoice in it, so it is left to a person in Xero"
        )
    clients.xero.delete_payment(payment_id, idempotency_key=step.idempotency_key)
    return StepResult(f"Xero payment {payment_id} deleted")


def _removal(current, invoice_id: str) -> StepResult | str:
    """What cleaning up one Xero invoice takes now: nothing (a StepResult), or the status to
    set. Void an AUTHORISED invoice, delete a DRAFT or SUBMITTED one. Anything allocated to it
    — a payment, a credit note, a prepayment, an overpayment — is refused here, by the product's
    own rule, whether or not Xero would refuse it too."""
    if current is None:
        return _already(f"Xero invoice {invoice_id} does not exist any more", XeroStatus.MISSING)
    if current.status in (XeroStatus.VOIDED, XeroStatus.DELETED):
        return _already(
            f"Xero invoice {current.number} is already {current.status}", current.status
        )
    if (
        current.status == XeroStatus.PAID
        or (current.amount_paid or Decimal(0)) > 0
        or current.payment_ids
    ):
        raise Refused(
            f"Xero invoice {current.number} still has payments applied ({current.amount_paid}): "
            "it is never voided while it has a payment"
        )
    if (current.amount_credited or Decimal(0)) > 0:
        raise Refused(
            f"Xero invoice {current.number} has credit notes, prepayments or overpayments "
            f"allocated ({current.amount_credited}): Xero keeps them, so it is not voided"
        )
    return "VOIDED" if current.status == XeroStatus.AUTHORISED else "DELETED"


def xero_remove_invoices(steps: list[UnlinkStep], clients) -> dict[int, StepResult | Exception]:
    """Clean up the Xero invoices of several steps with one read and one write: Xero takes up to
    50 invoices a call and answers for each one, so each step gets its own result or error."""
    ids = {step.pk: step.xero_id or step.invoice.xero_invoice_id for step in steps}
    found = {
        invoice.invoice_id.lower(): invoice
        for invoice in clients.xero.get_invoices_by_ids(sorted(set(ids.values())))
    }
    results: dict[int, StepResult | Exception] = {}
    changes: list[tuple[UnlinkStep, str]] = []
    for step in steps:
        try:
            decision = _removal(found.get(ids[step.pk].lower()), ids[step.pk])
        except Refused as exc:
            results[step.pk] = exc
            continue
        if isinstance(decision, StepResult):
            results[step.pk] = decision
        else:
            changes.append((step, decision))
    if not changes:
        return results
    # Stable for a retry of the same group, different for any other group.
    group = ",".join(str(step.pk) for step, _ in changes)
    key = f"unlinker-xero-{steps[0].batch_id}-" + hashlib.sha256(group.encode()).hexdigest()[:40]
    answers = clients.xero.update_invoice_statuses(
        [(ids[step.pk], target) for step, target in changes], idempotency_key=key
    )
    for (step, target), answer in zip(changes, answers, strict=True):
        if answer.ok:
            verb = "voided" if target == "VOIDED" else "deleted"
            results[step.pk] = StepResult(
                f"Xero invoice {ids[step.pk]} {verb} ({len(changes)} in one call)",
                xero_status=target,
            )
        else:
            results[step.pk] = ValidationFailed(
                list(answer.messages) or ["Xero refused the change"], api="xero"
            )
    return results


ACTIONS = {
    StepKind.UNLINK_PAYMENT: unlink_payment,
    StepKind.DELETE_PAYMENT: delete_payment,
    StepKind.REVERSE_PAYMENT: reverse_payment,
    StepKind.UNLINK_INVOICE: unlink_invoice,
    StepKind.REVERT_INVOICE: revert_invoice,
    StepKind.DELETE_INVOICE: delete_invoice,
    StepKind.XERO_DELETE_PAYMENT: xero_delete_payment,
}
# Steps run together, many to one call (see xero_remove_invoices).
GROUPED = {StepKind.XERO_VOID_INVOICE, StepKind.XERO_DELETE_INVOICE}
