"""Reads of the mirror. Both the list pages and a stored Selection start from these, so that what
a page shows and what a bulk action acts on are the same rows."""

from django.db.models import QuerySet

from unlinker.connections.models import Connection

from .models import LinkedInvoice, LinkedPayment


def linked_invoices(connection: Connection | int) -> QuerySet[LinkedInvoice]:
    """The connection's invoices that Actionstep still returns, newest first. Vanished ones are
    kept by the sync for history but can no longer be unlinked, so the lists leave them out."""
    return LinkedInvoice.objects.filter(connection=connection, vanished_at__isnull=True).order_by(
        "-invoice_date", "-id"
    )


def linked_payments(connection: Connection | int) -> QuerySet[LinkedPayment]:
    """The connection's payments that Actionstep still returns, newest first."""
    return LinkedPayment.objects.filter(connection=connection, vanished_at__isnull=True).order_by(
        "-payment_date", "-id"
    )
