"""The reconciliation report: read what Xero holds, compare it with the mirror of Actionstep's
links, and record the differences as findings of a run."""

from datetime import datetime

from django.db import transaction
from django.db.models import Count, DecimalField, Exists, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Lower
from django.utils import timezone

from unlinker.core.iterables import chunked
from unlinker.mirror.models import LinkedInvoice, LinkStatus, XeroStatus

from .models import Finding, ReconciliationRun, XeroInvoiceCopy

LIVE = (XeroStatus.DRAFT, XeroStatus.SUBMITTED, XeroStatus.AUTHORISED, XeroStatus.PAID)
GONE = (XeroStatus.VOIDED, XeroStatus.DELETED)
SALES_INVOICES = 'Type=="ACCREC"'
STORE_CHUNK = 500
IDS_PER_READ = 50
COPY_FIELDS = [
    "number",
    "reference",
    "status",
    "contact_name",
    "total",
    "amount_paid",
    "amount_credited",
    "payment_ids",
    "updated_at",
    "seen_at",
]


def start_reconciliation(*, connection, user=None, full: bool = False) -> ReconciliationRun:
    """Record the request; the task runs it after commit. One at a time per connection."""
    with transaction.atomic():
        active = (
            ReconciliationRun.objects.select_for_update()
            .filter(
                connection=connection,
                state__in=[ReconciliationRun.State.QUEUED, ReconciliationRun.State.RUNNING],
            )
            .first()
        )
        if active:
            return active
        run = ReconciliationRun.objects.create(connection=connection, requested_by=user, full=full)
        from .tasks import reconcile

        transaction.on_commit(lambda: reconcile.delay(run.pk))
    return run


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
        payment_ids=[p.lower() for p in invoice.payment_ids],
        updated_at=invoice.updated_at,
        seen_at=now,
    )


def _store_copies(connection_id: int, invoices) -> int:
    now = timezone.now()
    rows = [_copy(connection_id, invoice, now) for invoice in invoices]
    if rows:
        XeroInvoiceCopy.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["connection", "invoice_id"],
            update_fields=COPY_FIELDS,
        )
    return len(rows)


def read_xero(run: ReconciliationRun, client) -> None:
    """First run: every live sales invoice, a page at a time. Later runs: only what changed
    since the previous run started, whatever its status (so voids and deletions are seen)."""
    reads_before = client.requests_made
    previous = None if run.full else _previous(run)
    if previous is None:
        invoices = client.iter_invoices(statuses=list(LIVE), where=SALES_INVOICES)
    else:
        invoices = client.iter_invoices(where=SALES_INVOICES, modified_since=previous.started_at)
    for chunk in chunked(invoices, STORE_CHUNK):
        _store_copies(run.connection_id, chunk)
        run.pages_done = client.requests_made - reads_before
        ReconciliationRun.objects.filter(pk=run.pk).update(pages_done=run.pages_done)

    # Linked invoices Xero did not list as live: a few targeted reads tell voided or deleted
    # from missing altogether.
    unknown = (
        LinkedInvoice.objects.filter(connection_id=run.connection_id)
        .exclude(xero_invoice_id="")
        .exclude(Exists(_copy_of_invoice(run.connection_id)))
        .values_list("xero_invoice_id", flat=True)
    )
    for batch in chunked(unknown.iterator(chunk_size=2000), IDS_PER_READ):
        _store_copies(run.connection_id, client.get_invoices_by_ids(batch))


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
            contact_folded=Lower("contact_name"),
            copy_contact_folded=Lower(Subquery(copy.values("contact_name")[:1])),
        )
    )


def _finding(run, kind, invoice, detail, *, key_suffix="", xero_id=None, status=None, total=None):
    return Finding(
        run=run,
        kind=kind,
        invoice=invoice,
        invoice_number=invoice.invoice_number if invoice else "",
        xero_invoice_id=xero_id if xero_id is not None else invoice.xero_invoice_id,
        xero_status=status if status is not None else (invoice.copy_status or "MISSING"),
        actionstep_total=invoice.total if invoice else None,
        xero_total=total if total is not None else getattr(invoice, "copy_total", None),
        detail=detail[:500],
        key=f"{kind}:{invoice.actionstep_id if invoice else ''}:{key_suffix}"[:120],
    )


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
            parts.append(f"total {invoice.total} in Actionstep, {invoice.copy_total} in Xero")
        if invoice.total_paid != invoice.copy_paid:
            parts.append(f"paid {invoice.total_paid} in Actionstep, {invoice.copy_paid} in Xero")
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
                f"Xero has another live invoice {copy.number} ({copy.status}, {copy.total}) "
                "besides the one linked: re-created when the invoice was approved again.",
                key_suffix=copy.invoice_id,
                xero_id=copy.invoice_id,
                status=copy.status,
                total=copy.total,
            )
        )
    return findings


def update_mirror_from_copies(connection_id: int) -> int:
    """The lists show each invoice's Xero status as this run read it."""
    copy = _copy_of_invoice(connection_id)
    money = DecimalField(max_digits=14, decimal_places=2)
    return (
        LinkedInvoice.objects.filter(connection_id=connection_id)
        .exclude(xero_invoice_id="")
        .update(
            # after read_xero every linked invoice has a copy unless Xero has none at all
            xero_status=Coalesce(Subquery(copy.values("status")[:1]), Value(XeroStatus.MISSING)),
            xero_total=Subquery(copy.values("total")[:1], output_field=money),
            xero_amount_paid=Subquery(copy.values("amount_paid")[:1], output_field=money),
            xero_contact_name=Coalesce(Subquery(copy.values("contact_name")[:1]), Value("")),
            xero_checked_at=timezone.now(),
        )
    )


def run_reconciliation(run: ReconciliationRun, client) -> ReconciliationRun:
    started = timezone.now()
    ReconciliationRun.objects.filter(pk=run.pk).update(
        state=ReconciliationRun.State.RUNNING, started_at=started
    )
    run.started_at = started
    reads_before = client.requests_made
    read_xero(run, client)
    findings = find_differences(run)
    previous = _previous(run)
    old_keys = (
        set(Finding.objects.filter(run=previous).values_list("key", flat=True))
        if previous
        else set()
    )
    new_keys = {f.key for f in findings}
    counts = {kind: 0 for kind in Finding.Kind.values}
    for finding in findings:
        counts[finding.kind] += 1
    with transaction.atomic():
        Finding.objects.bulk_create(findings, batch_size=2000)
        update_mirror_from_copies(run.connection_id)
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
    run.refresh_from_db()
    return run
