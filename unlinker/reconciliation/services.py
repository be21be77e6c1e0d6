"""The reconciliation report: read what Xero holds, compare it with the mirror of Actionstep's
links, and record the differences as findings of a run. And the clean-up of what it found, queued
as an unlink batch of Xero steps."""

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import (
    Count,
    DecimalField,
    Exists,
    F,
    JSONField,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce, Lower
from django.utils import timezone

from unlinker.accounts.roles import REFRESH
from unlinker.connections.models import Connection
from unlinker.core.display import format_money
from unlinker.core.failures import REASON_MAX, failure_reason
from unlinker.core.iterables import chunked
from unlinker.core.upsert import upsert
from unlinker.integrations.xero import XERO_INVOICES_PER_CALL
from unlinker.mirror.models import LinkedInvoice, LinkedPayment, LinkStatus, XeroStatus
from unlinker.mirror.services import LIVE_BATCH_PAYMENTS, credits_json, record_batch_payments

from .models import Finding, ReconciliationRun, XeroInvoiceCopy

log = logging.getLogger(__name__)

LIVE = (XeroStatus.DRAFT, XeroStatus.SUBMITTED, XeroStatus.AUTHORISED, XeroStatus.PAID)
GONE = (XeroStatus.VOIDED, XeroStatus.DELETED)
SALES_INVOICES = 'Type=="ACCREC"'
STORE_CHUNK = 500
UPDATE_CHUNK = 500
COPY_FIELDS = [
    "number",
    "reference",
    "status",
    "contact_name",
    "total",
    "amount_paid",
    "amount_credited",
    "currency",
    "payment_ids",
    "date",
    "credits",
    "updated_at",
    "seen_at",
]
# The task's hard time limit: 50,000 invoices take some 550 reads, nine minutes at Xero's 60 a
# minute. It stays well under the broker's visibility timeout (an hour), past which a task not
# acknowledged yet would be delivered to a second worker.
TIME_LIMIT_SECONDS = 1800
# A run running longer than a task may live lost its worker; a run queued this long ago and
# never started lost its task (the broker was down, or restarted empty).
RUNNING_STALE = timedelta(seconds=TIME_LIMIT_SECONDS + 60)
QUEUED_STALE = timedelta(minutes=10)


class AlreadyRunning(Exception):
    def __init__(self, run: ReconciliationRun):
        super().__init__(f"Reconciliation {run.pk} of {run.connection} is already {run.state}.")
        self.run = run


def start_reconciliation(*, connection, user=None, full: bool = False) -> ReconciliationRun:
    """Queue a run and return it; the task runs it after commit. One at a time per connection:
    while one is queued or running, that one is returned, and queued again if its task was
    lost. A person asking (`user`) needs the refresh permission: a run reads all of Xero's
    sales invoices. Without a user it is the schedule asking."""
    if user is not None and not user.has_perm(REFRESH):
        raise PermissionDenied("Running the reconciliation needs the operator role.")
    run, opened = _open_run(connection, user=user, full=full)
    lost = run.state == ReconciliationRun.State.QUEUED and (
        run.created_at < timezone.now() - QUEUED_STALE
    )
    if opened or lost:
        from .tasks import reconcile

        # robust: with the broker down the run is still recorded, and the next request for it
        # (a click, or beat's reconcile_all) sends it again once it is stale.
        transaction.on_commit(lambda: reconcile.delay(run.pk), robust=True)
    return run


def reconcile_now(*, connection, client, full: bool = False) -> ReconciliationRun:
    """Run one here and now (the command line). Raises AlreadyRunning while another is queued
    or running."""
    run, opened = _open_run(connection, user=None, full=full)
    if not opened:
        raise AlreadyRunning(run)
    return run_reconciliation(run, client)


def _open_run(connection, *, user, full: bool) -> tuple[ReconciliationRun, bool]:
    """The connection's active run, or a new one (True)."""
    with transaction.atomic():
        # Locks the connection row (on PostgreSQL), so that two requests cannot both find no
        # active run and open one each.
        Connection.objects.select_for_update().filter(pk=connection.pk).first()
        active = ReconciliationRun.objects.filter(
            connection=connection, state__in=ReconciliationRun.ACTIVE_STATES
        ).first()
        stopped = (
            active is not None
            and active.state == ReconciliationRun.State.RUNNING
            and active.started_at < timezone.now() - RUNNING_STALE
        )
        if stopped:
            fail(active, "its worker stopped before it finished")
        elif active is not None:
            return active, False
        run = ReconciliationRun.objects.create(connection=connection, requested_by=user, full=full)
    return run, True


def _claim(run: ReconciliationRun) -> bool:
    """Take a queued run for this caller. A running one belongs to another task, unless it
    started longer ago than a task may live (a redelivery after its worker died)."""
    now = timezone.now()
    claimable = Q(state=ReconciliationRun.State.QUEUED) | Q(
        state=ReconciliationRun.State.RUNNING, started_at__lt=now - RUNNING_STALE
    )
    claimed = ReconciliationRun.objects.filter(claimable, pk=run.pk).update(
        state=ReconciliationRun.State.RUNNING, started_at=now
    )
    run.refresh_from_db()
    return bool(claimed)


def fail(run: ReconciliationRun, error: str) -> None:
    """Record why a queued or running run stopped (a finished one stays as it finished)."""
    ReconciliationRun.objects.filter(pk=run.pk, state__in=ReconciliationRun.ACTIVE_STATES).update(
        state=ReconciliationRun.State.FAILED, finished_at=timezone.now(), error=error[:REASON_MAX]
    )


def _previous(run: ReconciliationRun) -> ReconciliationRun | None:
    return (
        ReconciliationRun.objects.filter(
            connection_id=run.connection_id, state=ReconciliationRun.State.DONE
        )
        .exclude(pk=run.pk)
        .order_by("-started_at")
        .first()
    )


def _copy(connection_id: int, invoice, now: datetime) -> XeroInvoiceCopy:
    return XeroInvoiceCopy(
        connection_id=connection_id,
        invoice_id=invoice.invoice_id.lower(),
        number=invoice.number,
        reference=invoice.reference,
        status=invoice.status,
        contact_name=invoice.contact_name,
        total=invoice.total,
        amount_paid=invoice.amount_paid,
        amount_credited=invoice.amount_credited,
        currency=invoice.currency or "",
        payment_ids=[p.lower() for p in invoice.payment_ids],
        date=invoice.date,
        credits=credits_json(invoice),
        updated_at=invoice.updated_at,
        seen_at=now,
    )


def _store_copies(connection_id: int, invoices) -> int:
    now = timezone.now()
    rows = [_copy(connection_id, invoice, now) for invoice in invoices]
    return upsert(
        XeroInvoiceCopy, rows, unique_fields=["connection", "invoice_id"], update_fields=COPY_FIELDS
    )


def read_xero(run: ReconciliationRun, client) -> list:
    """Bring the connection's Xero copies up to date and return the live payments that are
    part of a batch payment.

    First run: every live sales invoice, a page at a time. Later runs: only what changed since
    the previous run started, whatever its status (so voids and deletions are seen)."""
    reads_before = client.requests_made

    def record_progress():
        run.pages_done = client.requests_made - reads_before
        ReconciliationRun.objects.filter(pk=run.pk).update(pages_done=run.pages_done)

    previous = None if run.full else _previous(run)
    if previous is None:
        invoices = client.iter_invoices(statuses=list(LIVE), where=SALES_INVOICES)
    else:
        invoices = client.iter_invoices(where=SALES_INVOICES, modified_since=previous.started_at)
    for chunk in chunked(invoices, STORE_CHUNK):
        _store_copies(run.connection_id, chunk)
        record_progress()

    # Linked invoices Xero did not list as live: a few targeted reads tell voided or deleted
    # from missing altogether.
    unknown = (
        LinkedInvoice.objects.filter(connection_id=run.connection_id)
        .exclude(xero_invoice_id="")
        .exclude(Exists(_copy_of_invoice(run.connection_id)))
        .values_list("xero_invoice_id", flat=True)
    )
    refresh_copies(
        run.connection_id, client, unknown.iterator(chunk_size=2000), on_batch=record_progress
    )

    batch_payments = list(client.iter_payments(LIVE_BATCH_PAYMENTS))
    record_progress()
    return batch_payments


def refresh_copies(connection_id: int, client, invoice_ids, on_batch=None) -> int:
    """The targeted re-read: these invoices' copies read again from Xero,
    XERO_INVOICES_PER_CALL to one `GET /Invoices?IDs=` (unknown ids are simply absent). The run
    uses it for the linked invoices Xero did not list, the webhooks for the invoices their events
    name. How many copies were stored."""
    stored = 0
    for batch in chunked(invoice_ids, XERO_INVOICES_PER_CALL):
        stored += _store_copies(connection_id, client.get_invoices_by_ids(batch)) or 0
        if on_batch:
            on_batch()
    return stored


def refresh_invoices(connection_id: int, client, invoice_ids) -> int:
    """Re-read these invoices and show what Xero now says of them on the linked lists."""
    ids = sorted({i.lower() for i in invoice_ids})
    stored = refresh_copies(connection_id, client, ids)
    with transaction.atomic():
        update_mirror_from_copies(connection_id, None, invoice_ids=ids)
    return stored


def _copy_of_invoice(connection_id: int):
    return XeroInvoiceCopy.objects.filter(
        connection_id=connection_id, invoice_id=Lower(OuterRef("xero_invoice_id"))
    )


def _with_copy(connection_id: int):
    copy = _copy_of_invoice(connection_id)
    money = DecimalField(max_digits=14, decimal_places=2)
    return (
        LinkedInvoice.objects.filter(connection_id=connection_id)
        .exclude(xero_invoice_id="")
        .annotate(
            copy_status=Subquery(copy.values("status")[:1]),
            copy_total=Subquery(copy.values("total")[:1], output_field=money),
            copy_paid=Subquery(copy.values("amount_paid")[:1], output_field=money),
            copy_contact=Subquery(copy.values("contact_name")[:1]),
            copy_currency=Subquery(copy.values("currency")[:1]),
            contact_folded=Lower("contact_name"),
            copy_contact_folded=Lower(Subquery(copy.values("contact_name")[:1])),
        )
    )


def _finding(run, kind, invoice, detail, *, key_suffix="", xero_id=None, status=None, total=None):
    return Finding(
        run=run,
        kind=kind,
        invoice=invoice,
        invoice_number=invoice.invoice_number,
        xero_invoice_id=xero_id if xero_id is not None else invoice.xero_invoice_id,
        xero_status=status if status is not None else (invoice.copy_status or "MISSING"),
        actionstep_total=invoice.total,
        xero_total=total if total is not None else invoice.copy_total,
        currency=_currency(invoice),
        detail=detail[:500],
        key=f"{kind}:{invoice.actionstep_id}:{key_suffix}"[:120],
    )


def _currency(invoice) -> str:
    return invoice.currency or getattr(invoice, "copy_currency", None) or invoice.xero_currency


def _money(amount, invoice) -> str:
    return format_money(amount, _currency(invoice))


def find_differences(run: ReconciliationRun) -> list[Finding]:
    cid = run.connection_id
    rows = _with_copy(cid)
    findings: list[Finding] = []

    for invoice in rows.filter(link_status=LinkStatus.UNLINKED, copy_status__in=LIVE).iterator():
        findings.append(
            _finding(
                run,
                Finding.Kind.ORPHAN,
                invoice,
                f"Unlinked in Actionstep, still {invoice.copy_status} in Xero: void or delete it "
                "there, or approving the invoice again creates a duplicate.",
            )
        )

    broken = rows.filter(link_status=LinkStatus.LINKED).filter(
        Q(copy_status__in=GONE) | Q(copy_status__isnull=True)
    )
    for invoice in broken.iterator():
        state = invoice.copy_status or "missing"
        findings.append(
            _finding(
                run,
                Finding.Kind.BROKEN_LINK,
                invoice,
                f"Linked in Actionstep to a Xero invoice that is {state.lower()}.",
            )
        )

    differing = rows.filter(link_status=LinkStatus.LINKED, copy_status__in=LIVE).filter(
        ~Q(total=F("copy_total"))
        | ~Q(total_paid=F("copy_paid"))
        | ~Q(contact_folded=F("copy_contact_folded"))
    )
    for invoice in differing.iterator():
        parts = []
        if invoice.total != invoice.copy_total:
            parts.append(
                f"total {_money(invoice.total, invoice)} in Actionstep, "
                f"{_money(invoice.copy_total, invoice)} in Xero"
            )
        if invoice.total_paid != invoice.copy_paid:
            parts.append(
                f"paid {_money(invoice.total_paid, invoice)} in Actionstep, "
                f"{_money(invoice.copy_paid, invoice)} in Xero"
            )
        if (invoice.contact_name or "").lower() != (invoice.copy_contact or "").lower():
            parts.append(f"contact {invoice.contact_name!r} / {invoice.copy_contact!r}")
        findings.append(_finding(run, Finding.Kind.MISMATCH, invoice, "; ".join(parts)))

    duplicated_numbers = (
        XeroInvoiceCopy.objects.filter(connection_id=cid, status__in=LIVE)
        .exclude(number="")
        .values("number")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .values_list("number", flat=True)
    )
    extra_copies = XeroInvoiceCopy.objects.filter(
        connection_id=cid, status__in=LIVE, number__in=Subquery(duplicated_numbers)
    )
    invoices_by_number = {
        inv.invoice_number: inv
        for inv in rows.filter(invoice_number__in=Subquery(duplicated_numbers))
    }
    for copy in extra_copies.iterator():
        invoice = invoices_by_number.get(copy.number)
        if invoice is None or copy.invoice_id == invoice.xero_invoice_id.lower():
            continue  # the copy the link points at is the original, not the duplicate
        findings.append(
            _finding(
                run,
                Finding.Kind.DUPLICATE,
                invoice,
                f"Xero has another live invoice {copy.number} "
                f"({copy.status}, {format_money(copy.total, copy.currency)}) "
                "besides the one linked: re-created when the invoice was approved again.",
                key_suffix=copy.invoice_id,
                xero_id=copy.invoice_id,
                status=copy.status,
                total=copy.total,
            )
        )
    return findings


def update_mirror_from_copies(
    connection_id: int, batch_payment_ids: set[str] | None, invoice_ids=None
) -> None:
    """The lists (and the plans made from them) show each invoice's and payment's Xero status
    as this run read it. `invoice_ids`: only the linked invoices with these Xero ids (and their
    payments); `batch_payment_ids` None: which payments are part of a batch stays as known."""
    copy = _copy_of_invoice(connection_id)
    money = DecimalField(max_digits=14, decimal_places=2)
    now = timezone.now()
    invoices = LinkedInvoice.objects.filter(connection_id=connection_id).exclude(xero_invoice_id="")
    if invoice_ids is not None:
        invoices = invoices.annotate(xero_id_folded=Lower("xero_invoice_id")).filter(
            xero_id_folded__in=list(invoice_ids)
        )
    invoices.update(
        # after read_xero every linked invoice has a copy unless Xero has none at all
        xero_status=Coalesce(Subquery(copy.values("status")[:1]), Value(XeroStatus.MISSING)),
        xero_total=Subquery(copy.values("total")[:1], output_field=money),
        xero_amount_paid=Subquery(copy.values("amount_paid")[:1], output_field=money),
        xero_contact_name=Coalesce(Subquery(copy.values("contact_name")[:1]), Value("")),
        xero_currency=Coalesce(Subquery(copy.values("currency")[:1]), Value("")),
        xero_amount_credited=Subquery(copy.values("amount_credited")[:1], output_field=money),
        xero_credits=Coalesce(Subquery(copy.values("credits")[:1]), Value([], JSONField())),
        xero_date=Subquery(copy.values("date")[:1]),
        xero_checked_at=now,
    )
    _update_payments_from_copies(connection_id, batch_payment_ids, now, invoice_ids)


def _update_payments_from_copies(
    connection_id: int, batch_payment_ids: set[str] | None, now, invoice_ids=None
) -> None:
    """A payment is live in Xero while its invoice's copy lists it. Its new state is worked out
    here, in chunks of rows; only the rows whose state changed are written."""
    live: set[str] = set()
    copies = XeroInvoiceCopy.objects.filter(connection_id=connection_id)
    if invoice_ids is not None:
        copies = copies.filter(invoice_id__in=list(invoice_ids))
    for payment_ids in copies.values_list("payment_ids", flat=True).iterator(chunk_size=2000):
        live.update(payment_ids)
    payments = LinkedPayment.objects.filter(connection_id=connection_id, invoice__isnull=False)
    if invoice_ids is not None:
        payments = payments.annotate(invoice_xero_id=Lower("invoice__xero_invoice_id")).filter(
            invoice_xero_id__in=list(invoice_ids)
        )
    payments = (
        payments.exclude(xero_payment_id="")
        .exclude(invoice__xero_status=XeroStatus.UNKNOWN)  # an invoice never sent to Xero
        .values_list(
            "pk", "xero_payment_id", "invoice__xero_status", "xero_status", "is_batch_payment"
        )
    )
    changed: dict[tuple[str, bool], list[int]] = defaultdict(list)
    for pk, xero_id, invoice_status, status, batch in payments.iterator(chunk_size=2000):
        if invoice_status == XeroStatus.MISSING:
            new_status = XeroStatus.MISSING
        elif xero_id in live:
            new_status = XeroStatus.AUTHORISED
        else:
            new_status = XeroStatus.DELETED
        new_batch = batch if batch_payment_ids is None else xero_id in batch_payment_ids
        if (new_status, new_batch) != (status, batch):
            changed[(new_status, new_batch)].append(pk)
    for (status, batch), pks in changed.items():
        for chunk in chunked(pks, UPDATE_CHUNK):
            LinkedPayment.objects.filter(pk__in=chunk).update(
                xero_status=status, is_batch_payment=batch, xero_checked_at=now
            )


def run_reconciliation(run: ReconciliationRun, client) -> ReconciliationRun:
    """Run a queued run: read Xero, record the findings and what changed since the previous
    run, update the mirror. A run another task holds is left alone. A failure is recorded on the
    run (so that it does not hold the connection's next run back), then raised."""
    if not _claim(run):
        return run
    reads_before = client.requests_made
    try:
        batch_payments = read_xero(run, client)
        batch_payment_ids = {p.payment_id.lower() for p in batch_payments}
        findings = find_differences(run)
        previous = _previous(run)
        old_keys = set(
            Finding.objects.filter(run=previous).values_list("key", flat=True) if previous else ()
        )
        new_keys = {f.key for f in findings}
        counts = dict.fromkeys(Finding.Kind.values, 0)
        for finding in findings:
            counts[finding.kind] += 1
        with transaction.atomic():
            Finding.objects.bulk_create(findings, batch_size=2000)
            update_mirror_from_copies(run.connection_id, batch_payment_ids)
            record_batch_payments(run.connection_id, batch_payments)
            ReconciliationRun.objects.filter(pk=run.pk).update(
                state=ReconciliationRun.State.DONE,
                finished_at=timezone.now(),
                reads_made=client.requests_made - reads_before,
                counts=counts,
                changes={
                    "new": len(new_keys - old_keys),
                    "resolved": len(old_keys - new_keys),
                    "previous_run": previous.pk if previous else None,
                },
            )
    except (Exception, KeyboardInterrupt) as exc:
        # An API's refusal or a bug alike: the type and message on the page, the traceback in
        # the worker's log.
        fail(run, failure_reason(exc))
        raise
    run.refresh_from_db()
    log.info("reconciliation %s of connection %s: %s", run.pk, run.connection_id, run.counts)
    return run
