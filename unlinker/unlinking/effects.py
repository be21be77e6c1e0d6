"""What a finished step changes in the local copies: the mirror's linked records and the
reconciliation's copy of Xero. Run in the transaction that records the step as done, so that the
lists, the next plan and the reconciliation never show a difference Unlinker itself made, and a
clean-up resolves its finding at once.

Amounts move only on the change of status that this step made in the copy (a conditional
UPDATE), so that recording a step twice — a retry after its first record was lost — never
subtracts a payment twice.
"""

from decimal import Decimal

from django.db.models import Case, F, Value, When
from django.utils import timezone

from unlinker.integrations import actionstep_resources
from unlinker.mirror.models import LinkedInvoice, LinkedPayment, LinkStatus, XeroStatus
from unlinker.mirror.services import recount_linked_payments
from unlinker.reconciliation.models import CLEANABLE, Finding, XeroInvoiceCopy

from .models import StepKind, UnlinkStep
from .planning import credit_of_key

NOT_APPLIED = (actionstep_resources.PAYMENT_DELETED, actionstep_resources.PAYMENT_REVERSED)


def record_step(step: UnlinkStep, xero_status: str = "", *, xero_number: str = "") -> None:
    if step.kind == StepKind.UNLINK_PAYMENT:
        _unlink_payment(step)
    elif step.kind == StepKind.UNLINK_INVOICE:
        LinkedInvoice.objects.filter(pk=step.invoice_id).update(link_status=LinkStatus.UNLINKED)
    elif step.kind in (StepKind.DELETE_PAYMENT, StepKind.REVERSE_PAYMENT):
        _remove_payment(step)
    elif step.kind == StepKind.REVERT_INVOICE:
        LinkedInvoice.objects.filter(pk=step.invoice_id).update(
            actionstep_status=actionstep_resources.BILL_DRAFT
        )
    elif step.kind == StepKind.DELETE_INVOICE:
        LinkedInvoice.objects.filter(pk=step.invoice_id).update(
            actionstep_status=actionstep_resources.BILL_DELETED
        )
    elif step.kind == StepKind.XERO_DELETE_PAYMENT:
        _delete_xero_payment(step)
    elif step.kind == StepKind.XERO_DELETE_ALLOCATION:
        _remove_xero_allocation(step)
    elif step.kind in (StepKind.XERO_VOID_INVOICE, StepKind.XERO_DELETE_INVOICE):
        _remove_xero_invoice(step, xero_status, xero_number)


def _unlink_payment(step: UnlinkStep) -> None:
    LinkedPayment.objects.filter(pk=step.payment_id).update(link_status=LinkStatus.UNLINKED)
    invoice_id = step.payment.invoice_id if step.payment else None
    if invoice_id:
        recount_linked_payments(step.batch.connection_id, [invoice_id])


def _remove_payment(step: UnlinkStep) -> None:
    status = (
        actionstep_resources.PAYMENT_DELETED
        if step.kind == StepKind.DELETE_PAYMENT
        else actionstep_resources.PAYMENT_REVERSED
    )
    changed = (
        LinkedPayment.objects.filter(pk=step.payment_id)
        .exclude(actionstep_status__in=NOT_APPLIED)
        .update(actionstep_status=status)
    )
    payment = step.payment
    if changed and payment and payment.invoice_id:
        # Actionstep's own arithmetic: the bill owes the amount again, a closed bill is open.
        LinkedInvoice.objects.filter(pk=payment.invoice_id).update(
            total_paid=F("total_paid") - payment.amount,
            total_due=F("total_due") + payment.amount,
            actionstep_status=Case(
                When(
                    actionstep_status=actionstep_resources.BILL_CLOSED,
                    then=Value(actionstep_resources.BILL_OPEN),
                ),
                default=F("actionstep_status"),
            ),
        )


def _delete_xero_payment(step: UnlinkStep) -> None:
    payment = step.payment
    xero_id = (step.xero_id or (payment.xero_payment_id if payment else "")).lower()
    changed = (
        LinkedPayment.objects.filter(pk=step.payment_id)
        .exclude(xero_status=XeroStatus.DELETED)
        .update(xero_status=XeroStatus.DELETED)
    )
    amount = payment.amount if payment else Decimal(0)
    if changed and payment and payment.invoice_id:
        # Xero's arithmetic: the amount is owed again, a paid invoice is authorised again.
        LinkedInvoice.objects.filter(pk=payment.invoice_id, xero_amount_paid__isnull=False).update(
            xero_amount_paid=F("xero_amount_paid") - amount
        )
        LinkedInvoice.objects.filter(pk=payment.invoice_id, xero_status=XeroStatus.PAID).update(
            xero_status=XeroStatus.AUTHORISED
        )
    if not xero_id or payment is None:
        return
    # The Xero copy that carries the payment: the invoice's own, or a duplicate with its number.
    copies = XeroInvoiceCopy.objects.filter(
        connection_id=step.batch.connection_id, number=payment.invoice_number
    )
    for copy in copies:
        if xero_id in copy.payment_ids:
            copy.payment_ids = [pid for pid in copy.payment_ids if pid != xero_id]
            copy.amount_paid = max(Decimal(0), copy.amount_paid - amount)
            if copy.status == XeroStatus.PAID:
                copy.status = XeroStatus.AUTHORISED
            copy.save(update_fields=["payment_ids", "amount_paid", "status"])


def _remove_xero_allocation(step: UnlinkStep) -> None:
    """The credit's allocation is gone from the invoice's copies: the mirror's and the
    reconciliation's; what it credited is owed again. Only when the copy still lists it, so
    that recording the step twice subtracts once."""
    _, document_id = credit_of_key(step.target_key)
    invoice = step.invoice
    if invoice is None:
        return
    rows = [
        *LinkedInvoice.objects.select_for_update().filter(pk=invoice.pk),
        *XeroInvoiceCopy.objects.select_for_update().filter(
            connection_id=step.batch.connection_id, invoice_id=invoice.xero_invoice_id.lower()
        ),
    ]
    for row in rows:
        is_copy = isinstance(row, XeroInvoiceCopy)
        credits = row.credits if is_copy else row.xero_credits
        kept = [c for c in credits if (c.get("document_id") or "").lower() != document_id]
        if len(kept) == len(credits):
            continue
        removed = sum((Decimal(str(c.get("amount") or 0)) for c in credits), Decimal(0)) - sum(
            (Decimal(str(c.get("amount") or 0)) for c in kept), Decimal(0)
        )
        if is_copy:
            row.credits = kept
            row.amount_credited = max(Decimal(0), row.amount_credited - removed)
            row.save(update_fields=["credits", "amount_credited"])
        else:
            row.xero_credits = kept
            credited = row.xero_amount_credited
            if credited is not None:
                row.xero_amount_credited = max(Decimal(0), credited - removed)
            row.save(update_fields=["xero_credits", "xero_amount_credited"])


def _remove_xero_invoice(step: UnlinkStep, xero_status: str, xero_number: str = "") -> None:
    invoice = step.invoice
    xero_id = (step.xero_id or (invoice.xero_invoice_id if invoice else "")).lower()
    if not xero_status:
        return
    own_copy = invoice is not None and invoice.xero_invoice_id.lower() == xero_id
    if own_copy:
        LinkedInvoice.objects.filter(pk=invoice.pk).update(xero_status=xero_status)
    if not xero_id:
        return
    connection_id = step.batch.connection_id
    if xero_status != XeroStatus.MISSING:
        renamed = {"number": xero_number} if xero_number else {}
        XeroInvoiceCopy.objects.filter(connection_id=connection_id, invoice_id=xero_id).update(
            status=xero_status, **renamed
        )
    # The orphan or duplicate this removes is resolved now, not at the next run.
    Finding.objects.filter(
        run__connection_id=connection_id,
        xero_invoice_id=xero_id,
        kind__in=CLEANABLE,
        resolved_at__isnull=True,
    ).update(resolved_at=timezone.now(), resolved_by_batch_id=step.batch_id)
