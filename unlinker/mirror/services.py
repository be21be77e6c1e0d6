"""Keeping the mirror in step with Actionstep (links, bills, payments) and with Xero (status).

Writes go in bulk, page by page: an upsert per page of up to 200 records, never a query per row.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta

from django.core.exceptions import PermissionDenied
from django.db import connections as db_connections
from django.db import transaction
from django.db.models import Count, F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from unlinker.accounts.roles import REFRESH
from unlinker.connections.clients import actionstep_client_for
from unlinker.connections.models import Connection
from unlinker.connections.services import record_xero_organisation
from unlinker.core.failures import REASON_MAX, failure_reason
from unlinker.core.iterables import chunked
from unlinker.core.upsert import upsert
from unlinker.integrations import actionstep_resources
from unlinker.integrations.errors import Forbidden
from unlinker.integrations.records import (
    InvoiceLink,
    Page,
    PaymentLink,
    XeroInvoice,
    XeroOrganisation,
    XeroPayment,
)
from unlinker.integrations.xero import XERO_INVOICES_PER_CALL

from .models import LinkedInvoice, LinkedPayment, LinkStatus, SyncRun, XeroStatus

log = logging.getLogger(__name__)

# Records modified in the same second as the newest one seen may still be committing upstream:
# the next incremental sync re-reads that last second (the upsert makes it harmless).
CURSOR_OVERLAP = timedelta(seconds=1)
# How old the organisation's lock dates and the batch payments may be before a refresh from
# Xero that reads no invoice reads them again.
ORGANISATION_MAX_AGE = timedelta(hours=1)
# Xero lists an invoice's payments without saying which belong to a batch payment (those only a
# person may remove): one more read, of the few live ones, tells.
LIVE_BATCH_PAYMENTS = 'Status=="AUTHORISED"&&BatchPaymentID!=null'
BATCH_PAYMENTS_CHUNK = 500  # ids per IN (...): well under SQLite's bound parameters
# A run still "running" after this long lost its worker (and its redelivery): start afresh.
SYNC_STALE_AFTER = timedelta(minutes=30)
ACTIVE_STATES = (SyncRun.State.QUEUED, SyncRun.State.RUNNING)

INVOICE_FIELDS = [
    "link_id",
    "link_status",
    "actionstep_status",
    "invoice_number",
    "reference",
    "matter_id",
    "matter_name",
    "contact_id",
    "contact_name",
    "invoice_date",
    "due_date",
    "currency",
    "total",
    "total_paid",
    "total_due",
    "xero_invoice_id",
    "xero_invoice_number",
    "upstream_modified_at",
    "vanished_at",
    "synced_at",
]
PAYMENT_FIELDS = [
    "invoice",
    "link_id",
    "link_status",
    "actionstep_status",
    "invoice_actionstep_id",
    "invoice_number",
    "matter_id",
    "matter_name",
    "contact_id",
    "contact_name",
    "payment_date",
    "amount",
    "currency",
    "reference",
    "xero_payment_id",
    "upstream_modified_at",
    "vanished_at",
    "synced_at",
]


def _link_status(value: str) -> str:
    return LinkStatus.LINKED if value == actionstep_resources.LINKED else LinkStatus.UNLINKED


def _latest(*stamps: datetime | None) -> datetime | None:
    present = [s for s in stamps if s]
    return max(present) if present else None


def _bill_context(page: Page, bill_id: int) -> dict:
    """The invoice-level fields denormalised onto both kinds of rows."""
    bill = page.bills.get(bill_id)
    if bill is None:
        return {}
    matter = page.matters.get(bill.matter_id) if bill.matter_id else None
    contact = page.contacts.get(bill.contact_id) if bill.contact_id else None
    return {
        "invoice_number": bill.number or "",
        "currency": bill.currency or "",
        "matter_id": bill.matter_id,
        "matter_name": matter.name if matter else "",
        "contact_id": bill.contact_id,
        "contact_name": contact.name if contact else "",
    }


def invoice_rows(connection_id: int, page: Page, now: datetime) -> list[LinkedInvoice]:
    rows = []
    for link in page.records:
        link: InvoiceLink
        bill = page.bills.get(link.bill_id)
        rows.append(
            LinkedInvoice(
                connection_id=connection_id,
                actionstep_id=link.bill_id,
                link_id=link.id,
                link_status=_link_status(link.link_status),
                actionstep_status=bill.status if bill else "",
                reference=(bill.reference or "") if bill else "",
                invoice_date=bill.invoice_date if bill else None,
                due_date=bill.due_date if bill else None,
                total=bill.total if bill else 0,
                total_paid=bill.total_paid if bill else 0,
                total_due=bill.total_due if bill else 0,
                xero_invoice_id=(link.xero_invoice_id or "").lower(),
                xero_invoice_number=link.xero_invoice_number or "",
                upstream_modified_at=_latest(link.modified_at, bill.modified_at if bill else None),
                vanished_at=None,
                synced_at=now,
                **_bill_context(page, link.bill_id),
            )
        )
    return rows


def payment_rows(connection_id: int, page: Page, now: datetime) -> list[LinkedPayment]:
    rows = []
    for link in page.records:
        link: PaymentLink
        payment = page.payments.get(link.bill_payment_id)
        rows.append(
            LinkedPayment(
                connection_id=connection_id,
                actionstep_id=link.bill_payment_id,
                link_id=link.id,
                link_status=_link_status(link.link_status),
                actionstep_status=payment.status if payment else "",
                invoice_actionstep_id=link.bill_id,
                payment_date=payment.payment_date if payment else None,
                amount=payment.amount if payment else 0,
                reference=(payment.reference or "") if payment else "",
                xero_payment_id=(link.xero_payment_id or "").lower(),
                upstream_modified_at=_latest(
                    link.modified_at, payment.modified_at if payment else None
                ),
                vanished_at=None,
                synced_at=now,
                **_bill_context(page, link.bill_id),
            )
        )
    return rows


def _read_ahead(client, pages: Iterator[Page]) -> Iterator[Page]:
    """The same pages, page N+1 read from Actionstep while page N is written here: a sync then
    takes as long as the slower of the two, not both. The token is loaded first, in this
    thread, so the reader touches the database only if it must refresh it mid-sync; any
    connection it opened is closed at the end."""
    client.tokens.access_token()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sync-reader") as reader:
        try:
            pending = reader.submit(next, pages, None)
            while (page := pending.result()) is not None:
                pending = reader.submit(next, pages, None)
                yield page
        finally:
            reader.submit(db_connections.close_all).result()


def _attach_invoices(connection_id: int, rows: list[LinkedPayment]) -> None:
    """Point each payment at its mirrored invoice, one query per page (invoices sync first)."""
    pks = dict(
        LinkedInvoice.objects.filter(
            connection_id=connection_id, actionstep_id__in={r.invoice_actionstep_id for r in rows}
        ).values_list("actionstep_id", "pk")
    )
    for row in rows:
        row.invoice_id = pks.get(row.invoice_actionstep_id)


def _analyze(*models) -> None:
    """After a bulk load PostgreSQL's statistics are stale, and it may plan the correlated
    updates below as a table scan per row; refreshing them takes a moment."""
    if db_connections["default"].vendor != "postgresql":
        return
    with db_connections["default"].cursor() as cursor:
        for model in models:
            cursor.execute(
                f"ANALYZE {db_connections['default'].ops.quote_name(model._meta.db_table)}"
            )


def _upsert(model, rows: list, fields: list[str]) -> None:
    upsert(model, rows, unique_fields=["connection", "actionstep_id"], update_fields=fields)


def _record_page(run: SyncRun, page: Page, upserted: int) -> None:
    run.pages_done += 1
    run.records_upserted += upserted
    SyncRun.objects.filter(pk=run.pk).update(
        pages_done=run.pages_done,
        pages_total=F("pages_total") + (page.page_count if page.page == 1 else 0),
        records_upserted=run.records_upserted,
    )


def _cursor(stamp: datetime | None) -> str | None:
    return (stamp - CURSOR_OVERLAP).isoformat() if stamp else None


def _since(run: SyncRun, resource: str) -> datetime | None:
    value = run.cursors.get(resource)
    return datetime.fromisoformat(value) if value else None


def previous_cursors(connection_id: int) -> dict:
    last = (
        SyncRun.objects.filter(connection_id=connection_id, state=SyncRun.State.DONE)
        .order_by("-finished_at")
        .values_list("cursors", flat=True)
        .first()
    )
    return last or {}


def new_sync_run(connection, *, user=None, full: bool = False) -> SyncRun:
    """A queued sync of the connection: full when asked, or when no finished sync left cursors
    to continue from; otherwise only what changed since that one."""
    cursors = {} if full else previous_cursors(connection.pk)
    return SyncRun.objects.create(
        connection=connection, requested_by=user, full=full or not cursors, cursors=cursors
    )


def start_sync(*, connection, user=None, full: bool = False) -> SyncRun:
    """Record a sync request; the task picks it up after commit. One at a time per connection:
    a request while one is queued or running returns that one. A person asking (`user`) needs
    the refresh permission: a sync spends the firm's API calls. Without a user it is the
    schedule or the command line asking."""
    if user is not None and not user.has_perm(REFRESH):
        raise PermissionDenied("Refreshing from Actionstep needs the operator role.")
    with transaction.atomic():
        active = (
            SyncRun.objects.select_for_update()
            .filter(connection=connection, state__in=ACTIVE_STATES)
            .first()
        )
        if active and timezone.now() - (active.started_at or active.created_at) > SYNC_STALE_AFTER:
            fail_sync(active, "interrupted: no progress for 30 min")
        elif active:
            return active
        run = new_sync_run(connection, user=user, full=full)
        from .tasks import sync_connection

        # robust: with the broker down the run is still recorded; it shows as queued until it
        # is stale, and the next Refresh (or beat's sync_all) then starts a new one.
        transaction.on_commit(lambda: sync_connection.delay(run.pk), robust=True)
    return run


def sync_now(run: SyncRun) -> SyncRun:
    """Run a recorded sync in this process, with the connection's own Actionstep client: what
    the task and `manage.py sync` both do. Whatever stops it, an API's refusal or a bug, ends
    the run "failed" with the reason, and is raised."""
    try:
        return run_sync(run, actionstep_client_for(run.connection))
    except (Exception, KeyboardInterrupt) as exc:
        fail_sync(run, failure_reason(exc))
        raise


def fail_sync(run: SyncRun, reason: str) -> None:
    """Record why a queued or running sync stopped (a finished one stays as it finished)."""
    SyncRun.objects.filter(pk=run.pk, state__in=ACTIVE_STATES).update(
        state=SyncRun.State.FAILED, finished_at=timezone.now(), error=reason[:REASON_MAX]
    )


def run_sync(run: SyncRun, client) -> SyncRun:
    """Page through Actionstep and upsert. Full: every link record, then whatever was not seen
    is marked vanished. Incremental: only what changed since the last run's cursors."""
    started = timezone.now()
    SyncRun.objects.filter(pk=run.pk).update(state=SyncRun.State.RUNNING, started_at=started)
    requests_before = client.requests_made
    cursors = dict(run.cursors)
    cid = run.connection_id

    newest = _since(run, actionstep_resources.XERO_INVOICE_LINKS)
    for page in _read_ahead(client, client.iter_invoice_links(modified_after=newest)):
        rows = invoice_rows(cid, page, timezone.now())
        _upsert(LinkedInvoice, rows, INVOICE_FIELDS)
        newest = _latest(newest, *(r.upstream_modified_at for r in rows))
        _record_page(run, page, len(rows))
    cursors[actionstep_resources.XERO_INVOICE_LINKS] = _cursor(newest)
    if run.full:
        _analyze(LinkedInvoice)  # each payment page looks its invoices up by Actionstep id

    newest = _since(run, actionstep_resources.XERO_PAYMENT_LINKS)
    for page in _read_ahead(client, client.iter_payment_links(modified_after=newest)):
        rows = payment_rows(cid, page, timezone.now())
        _attach_invoices(cid, rows)
        _upsert(LinkedPayment, rows, PAYMENT_FIELDS)
        newest = _latest(newest, *(r.upstream_modified_at for r in rows))
        _record_page(run, page, len(rows))
    cursors[actionstep_resources.XERO_PAYMENT_LINKS] = _cursor(newest)

    if not run.full:
        # A bill or a payment can change (totals, status) without its link record changing.
        cursors[actionstep_resources.BILLS] = _cursor(_apply_bill_changes(run, client))
        cursors[actionstep_resources.BILL_PAYMENTS] = _cursor(_apply_payment_changes(run, client))
    else:
        cursors[actionstep_resources.BILLS] = cursors[actionstep_resources.XERO_INVOICE_LINKS]
        cursors[actionstep_resources.BILL_PAYMENTS] = cursors[
            actionstep_resources.XERO_PAYMENT_LINKS
        ]

    if run.full:
        _analyze(LinkedPayment)
    attach_payments_to_invoices(cid)
    recount_linked_payments(cid)
    vanished = mark_vanished(cid, started) if run.full else 0

    SyncRun.objects.filter(pk=run.pk).update(
        state=SyncRun.State.DONE,
        finished_at=timezone.now(),
        cursors=cursors,
        records_vanished=vanished,
        requests_made=client.requests_made - requests_before,
    )
    run.refresh_from_db()
    return run


def _apply_bill_changes(run: SyncRun, client) -> datetime | None:
    newest = _since(run, actionstep_resources.BILLS)
    for page in client.iter_bills(modified_after=newest):
        by_id = {bill.id: bill for bill in page.records}
        rows = list(
            LinkedInvoice.objects.filter(connection_id=run.connection_id, actionstep_id__in=by_id)
        )
        for row in rows:
            bill = by_id[row.actionstep_id]
            row.actionstep_status = bill.status
            row.invoice_number = bill.number or ""
            row.currency = bill.currency or ""
            row.reference = bill.reference or ""
            row.invoice_date, row.due_date = bill.invoice_date, bill.due_date
            row.total, row.total_paid, row.total_due = bill.total, bill.total_paid, bill.total_due
            row.upstream_modified_at = _latest(row.upstream_modified_at, bill.modified_at)
        LinkedInvoice.objects.bulk_update(
            rows,
            [
                "actionstep_status",
                "invoice_number",
                "currency",
                "reference",
                "invoice_date",
                "due_date",
                "total",
                "total_paid",
                "total_due",
                "upstream_modified_at",
            ],
        )
        newest = _latest(newest, *(b.modified_at for b in page.records))
        _record_page(run, page, len(rows))
    return newest


def _apply_payment_changes(run: SyncRun, client) -> datetime | None:
    newest = _since(run, actionstep_resources.BILL_PAYMENTS)
    for page in client.iter_bill_payments(modified_after=newest):
        by_id = {payment.id: payment for payment in page.records}
        rows = list(
            LinkedPayment.objects.filter(connection_id=run.connection_id, actionstep_id__in=by_id)
        )
        for row in rows:
            payment = by_id[row.actionstep_id]
            row.actionstep_status = payment.status
            row.payment_date, row.amount = payment.payment_date, payment.amount
            row.reference = payment.reference or ""
            row.upstream_modified_at = _latest(row.upstream_modified_at, payment.modified_at)
        LinkedPayment.objects.bulk_update(
            rows,
            ["actionstep_status", "payment_date", "amount", "reference", "upstream_modified_at"],
        )
        newest = _latest(newest, *(p.modified_at for p in page.records))
        _record_page(run, page, len(rows))
    return newest


def attach_payments_to_invoices(connection_id: int) -> int:
    invoice = LinkedInvoice.objects.filter(
        connection_id=connection_id, actionstep_id=OuterRef("invoice_actionstep_id")
    ).values("pk")[:1]
    return LinkedPayment.objects.filter(connection_id=connection_id, invoice__isnull=True).update(
        invoice=Subquery(invoice)
    )


def recount_linked_payments(connection_id: int, invoice_ids: Iterable[int] | None = None) -> int:
    """linked_payment_count is what the ordering rule reads: payments still linked to Xero.
    Returns how many invoices' counts changed."""
    still_linked = (
        LinkedPayment.objects.filter(invoice=OuterRef("pk"), link_status=LinkStatus.LINKED)
        .order_by()
        .values("invoice")
        .annotate(n=Count("pk"))
        .values("n")
    )
    counted = Coalesce(Subquery(still_linked), 0)
    invoices = LinkedInvoice.objects.filter(connection_id=connection_id)
    if invoice_ids is not None:
        invoices = invoices.filter(pk__in=list(invoice_ids))
    # Only the rows whose count changed: every sync recounts, and most syncs change nothing.
    return invoices.exclude(linked_payment_count=counted).update(linked_payment_count=counted)


def mark_vanished(connection_id: int, seen_since: datetime) -> int:
    now = timezone.now()
    count = 0
    for model in (LinkedInvoice, LinkedPayment):
        count += model.objects.filter(
            connection_id=connection_id, synced_at__lt=seen_since, vanished_at__isnull=True
        ).update(vanished_at=now)
    return count


def refresh_xero_status(connection_id: int, client, *, only_unchecked: bool = False) -> int:
    """Read every linked invoice's Xero copy in batches of IDs and record its status, totals,
    date, what is allocated to it and which of its payments still exist; then what the
    clean-up's plan needs besides: the organisation's lock dates and which payments are part
    of a batch payment. Returns the number of Xero reads made.

    A refresh that finds nothing to read (an incremental sync changed no invoice) reads the
    organisation and the batch payments only once they are ORGANISATION_MAX_AGE old: every
    clean-up step reads the lock dates again before it acts, so the plan's may be an hour old."""
    requests_before = client.requests_made
    invoices = LinkedInvoice.objects.filter(connection_id=connection_id).exclude(xero_invoice_id="")
    if only_unchecked:
        invoices = invoices.filter(xero_checked_at__isnull=True)
    ids = invoices.order_by("pk").values_list("xero_invoice_id", flat=True)
    for chunk in chunked(ids.iterator(chunk_size=2000), XERO_INVOICES_PER_CALL):
        _refresh_chunk(connection_id, chunk, client)
    read_any = client.requests_made > requests_before
    if read_any or _organisation_stale(connection_id):
        refresh_xero_organisation(connection_id, client)
        record_batch_payments(connection_id, client.iter_payments(LIVE_BATCH_PAYMENTS))
    return client.requests_made - requests_before


def _organisation_stale(connection_id: int) -> bool:
    read_at = (
        Connection.objects.filter(pk=connection_id)
        .values_list("xero_organisation_read_at", flat=True)
        .first()
    )
    return read_at is None or timezone.now() - read_at > ORGANISATION_MAX_AGE


def refresh_xero_organisation(connection_id: int, client) -> XeroOrganisation | None:
    """Read the organisation's lock dates into the connection; None when this connection may
    not read its settings (a token without accounting.settings.read): they stay as they were,
    and each clean-up step finds Xero's own refusal instead."""
    try:
        organisation = client.get_organisation()
    except Forbidden as exc:
        log.info(
            "connection %s: the organisation's lock dates are not readable: %s", connection_id, exc
        )
        return None
    record_xero_organisation(connection_id, organisation)
    return organisation


def credits_json(invoice: XeroInvoice) -> list[dict]:
    """What is allocated to a Xero invoice, as LinkedInvoice.xero_credits and
    XeroInvoiceCopy.credits keep it (JSON: money and dates as strings)."""
    return [
        {
            "kind": credit.kind,
            "document_id": credit.document_id.lower(),
            "number": credit.number,
            "amount": str(credit.amount),
            "date": credit.date.isoformat() if credit.date else None,
        }
        for credit in invoice.credits
    ]


def record_batch_payments(connection_id: int, payments: Iterable[XeroPayment]) -> int:
    """Mark the mirrored payments that are part of a live Xero batch payment (`payments`: every
    live payment of the tenant that belongs to one), each with the other invoices its batch
    pays; unmark those no longer in one. Returns how many payments changed."""
    batches: dict[str, list[XeroPayment]] = defaultdict(list)
    for payment in payments:
        if payment.batch_payment_id:
            batches[payment.batch_payment_id.lower()].append(payment)
    in_batch = {p.payment_id.lower(): batch for batch, ps in batches.items() for p in ps}
    rows = LinkedPayment.objects.filter(connection_id=connection_id).exclude(xero_payment_id="")
    candidates = list(rows.filter(is_batch_payment=True))
    for chunk in chunked(list(in_batch), BATCH_PAYMENTS_CHUNK):
        candidates += rows.filter(xero_payment_id__in=chunk).exclude(is_batch_payment=True)
    changed = []
    for row in candidates:
        batch = in_batch.get(row.xero_payment_id.lower(), "")
        others = [
            {"number": p.invoice_number, "amount": str(p.amount)}
            for p in batches.get(batch, ())
            if p.payment_id.lower() != row.xero_payment_id.lower()
        ]
        state = (bool(batch), batch, others)
        if state != (row.is_batch_payment, row.xero_batch_payment_id, row.xero_batch_invoices):
            row.is_batch_payment, row.xero_batch_payment_id, row.xero_batch_invoices = state
            changed.append(row)
    LinkedPayment.objects.bulk_update(
        changed,
        ["is_batch_payment", "xero_batch_payment_id", "xero_batch_invoices"],
        batch_size=500,
    )
    return len(changed)


def _refresh_chunk(connection_id: int, xero_ids: list[str], client) -> None:
    found = {inv.invoice_id.lower(): inv for inv in client.get_invoices_by_ids(xero_ids)}
    now = timezone.now()
    rows = list(
        LinkedInvoice.objects.filter(connection_id=connection_id, xero_invoice_id__in=xero_ids)
    )
    payment_dates: dict[str, date | None] = {}
    for row in rows:
        copy = found.get(row.xero_invoice_id.lower())
        if copy is None:
            row.xero_status = XeroStatus.MISSING
        else:
            row.xero_status = copy.status
            row.xero_total, row.xero_amount_paid = copy.total, copy.amount_paid
            row.xero_amount_credited = copy.amount_credited
            row.xero_credits = credits_json(copy)
            row.xero_date = copy.date
            row.xero_contact_name = copy.contact_name or ""
            row.xero_currency = copy.currency or ""
            payment_dates.update(
                (pid.lower(), copy.payment_dates.get(pid)) for pid in copy.payment_ids
            )
        row.xero_checked_at = now
    LinkedInvoice.objects.bulk_update(
        rows,
        [
            "xero_status",
            "xero_total",
            "xero_amount_paid",
            "xero_contact_name",
            "xero_currency",
            "xero_amount_credited",
            "xero_credits",
            "xero_date",
            "xero_checked_at",
        ],
    )
    payments = list(
        LinkedPayment.objects.filter(connection_id=connection_id, invoice__in=rows)
        .exclude(xero_payment_id="")
        .select_related("invoice")
    )
    for payment in payments:
        invoice_status = payment.invoice.xero_status
        xero_id = payment.xero_payment_id.lower()
        if invoice_status == XeroStatus.MISSING:
            payment.xero_status = XeroStatus.MISSING
        elif xero_id in payment_dates:
            payment.xero_status = XeroStatus.AUTHORISED
            payment.xero_date = payment_dates[xero_id]
        else:
            payment.xero_status = XeroStatus.DELETED
        payment.xero_checked_at = now
    LinkedPayment.objects.bulk_update(payments, ["xero_status", "xero_date", "xero_checked_at"])
