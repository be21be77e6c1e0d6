"""What each kind of step does upstream. Every action re-reads the record first and does nothing
when it is already in the wanted state, so a step retried after a crash never acts twice, and
never acts on stale data."""

import hashlib
from dataclasses import dataclass
from decimal import Decimal

from unlinker.integrations import actionstep_resources as res
from unlinker.integrations.errors import ValidationFailed
from unlinker.mirror.models import LinkedPayment, LinkStatus, XeroStatus

from .models import StepKind, UnlinkStep


class Refused(Exception):
    """The step must not run: a rule of the domain would be broken. Not retried."""


@dataclass
class Outcome:
    request: str
    response: str
    already: bool = False  # upstream was already in the wanted state: nothing was sent
    xero_status: str = ""  # for Xero invoice clean-up: the status the invoice ended in


def _already(what: str) -> Outcome:
    return Outcome(request="(nothing sent)", response=what, already=True)


def unlink_payment(step: UnlinkStep, clients) -> Outcome:
    link_id = step.payment.link_id
    link = clients.actionstep.get_payment_link(link_id)
    if link.link_status == res.UNLINKED:
        return _already(f"payment link {link_id} was already unlinked")
    clients.actionstep.unlink_payment(link_id)
    return Outcome(f"PUT {res.XERO_PAYMENT_LINKS}/{link_id} linkStatus=Unlinked", "200 unlinked")


def unlink_invoice(step: UnlinkStep, clients) -> Outcome:
    invoice = step.invoice
    # The seed's rule, enforced here whatever the plan said: payments first.
    still_linked = list(
        LinkedPayment.objects.filter(invoice=invoice, link_status=LinkStatus.LINKED).values_list(
            "reference", flat=True
        )[:5]
    )
    if still_linked:
        raise Refused(
            "payments on this invoice are still linked to Xero: "
            + ", ".join(r or "(no reference)" for r in still_linked)
        )
    link = clients.actionstep.get_invoice_link(invoice.link_id)
    if link.link_status == res.UNLINKED:
        return _already(f"invoice link {invoice.link_id} was already unlinked")
    clients.actionstep.unlink_invoice(invoice.link_id)
    return Outcome(
        f"PUT {res.XERO_INVOICE_LINKS}/{invoice.link_id} linkStatus=Unlinked", "200 unlinked"
    )


def _remove_payment(step: UnlinkStep, clients, *, reverse: bool) -> Outcome:
    payment_id = step.payment.actionstep_id
    payment = clients.actionstep.get_bill_payment(payment_id)
    if payment.status in (res.PAYMENT_DELETED, res.PAYMENT_REVERSED):
        return _already(f"payment {payment_id} is already {payment.status.lower()}")
    reason = f"Removed by Unlinker batch {step.batch_id}"
    if reverse:
        clients.actionstep.reverse_payment(payment_id, reason)
        return Outcome(f"PUT {res.BILL_PAYMENTS}/{payment_id} status=Reversed", "200 reversed")
    clients.actionstep.delete_payment(payment_id, reason)
    return Outcome(f"DELETE {res.BILL_PAYMENTS}/{payment_id}", "204 deleted")


def delete_payment(step, clients):
    return _remove_payment(step, clients, reverse=False)


def reverse_payment(step, clients):
    return _remove_payment(step, clients, reverse=True)


def revert_invoice(step: UnlinkStep, clients) -> Outcome:
    bill_id = step.invoice.actionstep_id
    bill = clients.actionstep.get_bill(bill_id)
    if bill.status == res.BILL_DRAFT:
        return _already(f"invoice {bill.number} is already a draft")
    if bill.status == res.BILL_DELETED:
        raise Refused(f"invoice {bill.number} was deleted in Actionstep")
    clients.actionstep.revert_invoice_to_draft(bill_id)
    return Outcome(f"PUT {res.BILLS}/{bill_id} status=Draft", "200 reverted to draft")


def delete_invoice(step: UnlinkStep, clients) -> Outcome:
    bill_id = step.invoice.actionstep_id
    bill = clients.actionstep.get_bill(bill_id)
    if bill.status == res.BILL_DELETED:
        return _already(f"invoice {bill.number} was already deleted")
    clients.actionstep.delete_invoice(bill_id)
    return Outcome(f"DELETE {res.BILLS}/{bill_id}", "204 deleted")


def xero_delete_payment(step: UnlinkStep, clients) -> Outcome:
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
    return Outcome(f"POST /Payments/{payment_id} Status=DELETED", "200 deleted")


def _removal(current, invoice_id: str) -> Outcome | str:
    """What cleaning up one Xero invoice takes now: nothing (an Outcome), or the status to set.
    Void an AUTHORISED invoice, delete a DRAFT or SUBMITTED one. A payment on it is refused
    here (the product's own rule); credit notes and prepayments Xero refuses itself."""
    if current is None:
        outcome = _already(f"Xero invoice {invoice_id} does not exist any more")
        outcome.xero_status = XeroStatus.MISSING
        return outcome
    if current.status in (XeroStatus.VOIDED, XeroStatus.DELETED):
        outcome = _already(f"Xero invoice {current.number} is already {current.status}")
        outcome.xero_status = current.status
        return outcome
    if current.status == XeroStatus.PAID or (current.amount_paid or Decimal(0)) > 0:
        raise Refused(
            f"Xero invoice {current.number} still has payments applied ({current.amount_paid}): "
            "it is never voided while it has a payment"
        )
    return "VOIDED" if current.status == XeroStatus.AUTHORISED else "DELETED"


def xero_remove_invoices(steps: list[UnlinkStep], clients) -> dict[int, Outcome | Exception]:
    """Clean up the Xero invoices of several steps with one read and one write: Xero takes up to
    50 invoices a call and answers for each one, so each step gets its own outcome or error."""
    ids = {step.pk: step.xero_id or step.invoice.xero_invoice_id for step in steps}
    found = {
        invoice.invoice_id.lower(): invoice
        for invoice in clients.xero.get_invoices_by_ids(sorted(set(ids.values())))
    }
    results: dict[int, Outcome | Exception] = {}
    changes: list[tuple[UnlinkStep, str]] = []
    for step in steps:
        try:
            decision = _removal(found.get(ids[step.pk].lower()), ids[step.pk])
        except Refused as exc:
            results[step.pk] = exc
            continue
        if isinstance(decision, Outcome):
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
            results[step.pk] = Outcome(
                f"POST /Invoices ({len(changes)} in one call) {ids[step.pk]} Status={target}",
                f"200 {answer.status or target}",
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
