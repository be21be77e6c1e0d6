"""What each kind of step does upstream. Every action first re-reads, upstream, exactly what its
rule depends on — the record itself, and for an invoice its payments — and does nothing when the
record is already in the wanted state, so that a step retried after a crash never acts twice and
never acts on stale data. The rules hold here whatever the mirror says and whatever the API
would accept:

- an invoice is unlinked only when none of its payments' links is still live in Actionstep;
- an invoice is reverted or deleted in Actionstep only once it is unlinked and no payment is
  applied to it any more;
- a Xero invoice is voided or deleted only when Xero shows no payment and no credit note,
  prepayment or overpayment on it;
- nothing is voided, deleted or has a payment or an allocation removed in Xero when it is dated
  on or before one of the organisation's lock dates, read again (GET /Organisation) before
  each Xero change.

Every change made in Xero adds a note to the record's history there (unless the connection says
not to): which batch did it, for whom, and why. A note is a write like the others: sent with an
Idempotency-Key, recorded in the attempt's audit, and after a lost answer added only if the
record's history does not hold it yet.
"""

import hashlib
from contextlib import nullcontext
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from unlinker.integrations import actionstep_resources
from unlinker.integrations.errors import ApiError, ValidationFailed
from unlinker.integrations.records import InvoiceChange, XeroLocks
from unlinker.mirror.models import LinkedPayment, XeroStatus
from unlinker.mirror.services import refresh_xero_organisation

from .audit import earlier_write
from .models import StepKind, UnlinkStep
from .planning import CREDIT_NAMES, PlanOptions, credit_of_key, freed_number, lock_reason


class Refused(Exception):
    """The step must not run: a rule of the domain would be broken. Not retried."""


@dataclass
class StepResult:
    """What a step found and did."""

    summary: str
    already: bool = False  # upstream was already in the wanted state: nothing was written
    xero_status: str = ""  # for Xero invoice clean-up: the status the invoice ended in
    changed: bool = True  # False when the wanted state was reached without this step's write
    xero_number: str = ""  # for Xero invoice clean-up: the number the invoice was renamed to


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


# --- Xero: lock dates and history notes --------------------------------------------------


def _locks_now(step: UnlinkStep, clients) -> XeroLocks:
    """The organisation's lock dates read now, and kept on the connection for the next plan.
    None readable (a token without accounting.settings.read): Xero's own refusal stands."""
    organisation = refresh_xero_organisation(step.batch.connection_id, clients.xero)
    return organisation.locks if organisation is not None else XeroLocks()


def _refuse_if_locked(locks: XeroLocks, document_date, what: str) -> None:
    reason = lock_reason(locks, document_date)
    if reason:
        raise Refused(f"{what} is {reason}")


def _for_whom(step: UnlinkStep) -> str:
    user = step.batch.created_by
    if user is None:
        return "from the command line"
    first, last = user.first_name.strip(), user.last_name.strip()
    name = f"{first[0]}. {last}" if first and last else user.get_full_name() or user.username
    return f"for {name}"


def note_text(step: UnlinkStep, done: str, why: str = "unlinked from Actionstep") -> str:
    """ "Voided by Unlinker batch 42 for A. Admin: unlinked from Actionstep"."""
    return f"{done} by Unlinker batch {step.batch_id} {_for_whom(step)}: {why}"


def _why(step: UnlinkStep) -> str:
    if step.target_key.startswith("xero-invoice:") and step.invoice is not None:
        return (
            f"a duplicate of {step.invoice.invoice_number}, whose Actionstep invoice links to "
            "another copy"
        )
    return "unlinked from Actionstep"


def _add_note(step: UnlinkStep, clients, record: str, record_id: str, text: str, *, wrote: bool):
    """Add the note to the invoice's or payment's history in Xero (`record`: "invoice" or
    "payment"), on this step's own attempt. `wrote`: this attempt made the change; otherwise
    (found done) only when an earlier attempt of this step wrote and the note is not there yet.
    What it adds to the step's summary. A refusal is said there; a passing failure is raised,
    so that the step is retried and adds it then."""
    if not step.batch.connection.xero_history_notes:
        return ""
    attempt = getattr(step, "attempt", None)
    audit = getattr(clients, "audit", None)
    with audit.only(attempt) if audit is not None else nullcontext():
        if not wrote:
            if attempt is None or earlier_write(step, attempt.number) is None:
                return ""  # someone else made the change: not ours to note
            read = clients.xero.get_invoice_history if record == "invoice" else None
            history = (read or clients.xero.get_payment_history)(record_id)
            if any(entry.details == text for entry in history):
                return ""
        add = (
            clients.xero.add_invoice_note if record == "invoice" else clients.xero.add_payment_note
        )
        try:
            add(record_id, text, f"{step.idempotency_key}-note")
        except ApiError as exc:
            if exc.retryable:
                raise
            return f"; Xero refused the history note ({exc.message or type(exc).__name__})"
    return "; history note added"


# --- Xero: payments and allocations ---------------------------------------------------------


def xero_delete_payment(step: UnlinkStep, clients) -> StepResult:
    payment_id = step.xero_id or step.payment.xero_payment_id
    payment = clients.xero.get_payment(payment_id)
    text = note_text(step, "Deleted", _why(step))
    if payment.status == "DELETED":
        noted = _add_note(step, clients, "payment", payment_id, text, wrote=False)
        return _already(f"Xero payment {payment_id} was already deleted{noted}")
    if payment.batch_payment_id:
        raise Refused(
            "this payment is part of a Xero batch payment: deleting the batch would un-pay every "
            "invoice in it, so it is left to a person in Xero"
        )
    _refuse_if_locked(_locks_now(step, clients), payment.date, f"Xero payment {payment_id}")
    clients.xero.delete_payment(payment_id, idempotency_key=step.idempotency_key)
    noted = _add_note(step, clients, "payment", payment_id, text, wrote=True)
    return StepResult(f"Xero payment {payment_id} deleted{noted}")


def xero_delete_allocation(step: UnlinkStep, clients) -> StepResult:
    """Remove every live allocation of one credit note, prepayment or overpayment to the step's
    invoice, read from the document now; none left is done already. All are checked against
    the lock dates before any is removed."""
    kind, document_id = credit_of_key(step.target_key)
    invoice_id = step.invoice.xero_invoice_id.lower()
    what = CREDIT_NAMES.get(kind, kind.lower())
    live = [
        allocation
        for allocation in clients.xero.get_credit_allocations(kind, document_id)
        if allocation.invoice_id.lower() == invoice_id and not allocation.is_deleted
    ]
    total = sum((allocation.amount for allocation in live), Decimal(0))
    # As the plan named it ("Credit note CN-1 of 30.00"): the same words on every attempt.
    credit = step.target_label.rsplit(" allocated to ", 1)[0]
    text = note_text(step, f"{credit} unallocated", f"to void the invoice, {_why(step)}")
    if not live:
        noted = _add_note(step, clients, "invoice", invoice_id, text, wrote=False)
        return _already(
            f"nothing of {what} {document_id} is allocated to the invoice any more{noted}"
        )
    locks = _locks_now(step, clients)
    for allocation in live:
        _refuse_if_locked(locks, allocation.date, f"the {what}'s allocation of {allocation.amount}")
    for allocation in live:
        clients.xero.delete_allocation(
            kind,
            document_id,
            allocation.allocation_id,
            idempotency_key=f"{step.idempotency_key}-{allocation.allocation_id}",
        )
    noted = _add_note(step, clients, "invoice", invoice_id, text, wrote=True)
    count = "allocation" if len(live) == 1 else f"{len(live)} allocations"
    return StepResult(f"{what.capitalize()} {count} of {total:,.2f} removed{noted}")


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
    50 invoices a call and answers for each one, so each step gets its own result or error.
    The lock dates are read once for the group, before the write; with "free the number" each
    invoice is renamed in the same element that voids it, to a number read to be free."""
    ids = {step.pk: step.xero_id or step.invoice.xero_invoice_id for step in steps}
    found = {
        invoice.invoice_id.lower(): invoice
        for invoice in clients.xero.get_invoices_by_ids(sorted(set(ids.values())))
    }
    results: dict[int, StepResult | Exception] = {}
    changes: list[tuple[UnlinkStep, str]] = []
    for step in steps:
        current = found.get(ids[step.pk].lower())
        try:
            decision = _removal(current, ids[step.pk])
        except Refused as exc:
            results[step.pk] = exc
            continue
        if isinstance(decision, StepResult):
            if decision.xero_status in (XeroStatus.VOIDED, XeroStatus.DELETED):
                old = _number_before(step, current)
                text = _removal_note(step, decision.xero_status, old, current.number)
                if old != current.number:
                    decision.xero_number = current.number  # renamed by this step's write
                try:
                    decision.summary += _add_note(
                        step, clients, "invoice", ids[step.pk], text, wrote=False
                    )
                except ApiError as exc:
                    decision = exc
            results[step.pk] = decision
        else:
            changes.append((step, decision))
    if not changes:
        return results
    locks = _locks_now(steps[0], clients)
    allowed = []
    for step, target in changes:
        current = found[ids[step.pk].lower()]
        reason = lock_reason(locks, current.date)
        if reason:
            results[step.pk] = Refused(f"Xero invoice {current.number} is {reason}")
        else:
            allowed.append((step, target))
    if not allowed:
        return results
    numbers = _free_numbers(
        [(step, found[ids[step.pk].lower()]) for step, _ in allowed], clients, results
    )
    allowed = [(step, target) for step, target in allowed if step.pk not in results]
    if not allowed:
        return results
    # Stable for a retry of the same group, different for any other group.
    group = ",".join(f"{step.pk}:{target}:{numbers.get(step.pk, '')}" for step, target in allowed)
    key = f"unlinker-xero-{steps[0].batch_id}-" + hashlib.sha256(group.encode()).hexdigest()[:40]
    answers = clients.xero.update_invoices(
        [
            InvoiceChange(ids[step.pk], status=target, number=numbers.get(step.pk))
            for step, target in allowed
        ],
        idempotency_key=key,
    )
    for (step, target), answer in zip(allowed, answers, strict=True):
        if not answer.ok:
            results[step.pk] = ValidationFailed(
                list(answer.messages) or ["Xero refused the change"], api="xero"
            )
            continue
        verb = "voided" if target == "VOIDED" else "deleted"
        old = found[ids[step.pk].lower()].number
        new = numbers.get(step.pk, "")
        renamed = f" as {new}, freeing {old}" if new else ""
        text = _removal_note(step, target, old, new or old)
        result = StepResult(
            f"Xero invoice {old} {verb}{renamed} ({len(allowed)} in one call)",
            xero_status=target,
            xero_number=new,
        )
        try:
            result.summary += _add_note(step, clients, "invoice", ids[step.pk], text, wrote=True)
        except ApiError as exc:
            # Done in Xero, its note not yet: the retry finds it done and adds the note.
            results[step.pk] = exc
            continue
        results[step.pk] = result
    return results


def _done_word(status: str) -> str:
    return "Voided" if status == "VOIDED" else "Deleted"


def _removal_note(step: UnlinkStep, status: str, old: str, new: str) -> str:
    """The history note of a void or delete, and of the rename that went with it: the same
    words whether this attempt made the change or finds that an earlier one did."""
    if old == new:
        return note_text(step, _done_word(status), _why(step))
    done = f"Renamed from {old} to {new} and {_done_word(status).lower()}"
    return note_text(step, done, f"{_why(step)}; {old} is free for the invoice approved again")


def _number_before(step: UnlinkStep, current) -> str:
    """The number an invoice found voided had before this batch freed it: its number without
    the suffix (and the -2, -3 of a taken one), when the batch frees numbers."""
    suffix = settings.XERO_VOID_NUMBER_SUFFIX
    number = current.number
    if not PlanOptions.from_dict(step.batch.options).free_numbers or suffix not in number:
        return number
    base, _, tail = number.rpartition(suffix)
    return base if base and (not tail or (tail[:1] == "-" and tail[1:].isdigit())) else number


# Tried in turn for a freed number: "INV-1-VOID", then "INV-1-VOID-2" ... "INV-1-VOID-9".
FREED_NUMBER_TRIES = 9
NUMBERS_PER_READ = 25  # InvoiceNumbers= of a read: a short URL whatever the numbers


def _free_numbers(
    chosen: list[tuple[UnlinkStep, object]], clients, results: dict
) -> dict[int, str]:
    """The numbers the group's invoices are renamed to, when their batch frees numbers: each
    invoice's number + XERO_VOID_NUMBER_SUFFIX, or the first of its numbered variants that no
    invoice in Xero holds (read now, voided and deleted ones included) and no other invoice of
    the group takes. An invoice with all of them taken is refused, and the others go on."""
    suffix = settings.XERO_VOID_NUMBER_SUFFIX
    wanted = {
        step.pk: freed_number(current.number, suffix)
        for step, current in chosen
        if PlanOptions.from_dict(step.batch.options).free_numbers
        and current.number
        and not current.number.endswith(suffix)
    }
    if not wanted:
        return {}
    candidates = {
        pk: [base, *(f"{base}-{n}" for n in range(2, FREED_NUMBER_TRIES + 1))]
        for pk, base in wanted.items()
    }
    taken = _numbers_taken(clients, [base for base in wanted.values()])
    chosen_numbers: dict[int, str] = {}
    if any(base in taken for base in wanted.values()) or len(set(wanted.values())) < len(wanted):
        variants = [n for pk, names in candidates.items() for n in names[1:]]
        taken |= _numbers_taken(clients, variants)
    for pk, names in candidates.items():
        free = next((n for n in names if n not in taken), None)
        if free is None:
            results[pk] = Refused(
                f"the numbers {names[0]} to {names[-1]} are all taken in Xero: free the number "
                "by hand, or clean up without freeing it"
            )
            continue
        taken.add(free)
        chosen_numbers[pk] = free
    return chosen_numbers


def _numbers_taken(clients, numbers: list[str]) -> set[str]:
    taken: set[str] = set()
    for start in range(0, len(numbers), NUMBERS_PER_READ):
        chunk = numbers[start : start + NUMBERS_PER_READ]
        taken.update(i.number for i in clients.xero.get_invoices(numbers=chunk, summary_only=True))
    return taken


ACTIONS = {
    StepKind.UNLINK_PAYMENT: unlink_payment,
    StepKind.DELETE_PAYMENT: delete_payment,
    StepKind.REVERSE_PAYMENT: reverse_payment,
    StepKind.UNLINK_INVOICE: unlink_invoice,
    StepKind.REVERT_INVOICE: revert_invoice,
    StepKind.DELETE_INVOICE: delete_invoice,
    StepKind.XERO_DELETE_PAYMENT: xero_delete_payment,
    StepKind.XERO_DELETE_ALLOCATION: xero_delete_allocation,
}
# Steps run together, many to one call (see xero_remove_invoices).
GROUPED = {StepKind.XERO_VOID_INVOICE, StepKind.XERO_DELETE_INVOICE}
