"""The local copy of each connection's linked records, synced from Actionstep (and their Xero
status from Xero), so that lists filter and page fast on 100,000s of rows."""

from django.conf import settings
from django.db import models
from django.db.models import Func, TextField

from unlinker.connections.models import Connection

# The columns the lists' search box reads (filters.LinkedRecordFilterSet.q), read as one text:
# on PostgreSQL one trigram index over that text (migration 0004) serves the whole search, where
# an OR of five indexed columns made the planner read the table.
INVOICE_SEARCH_FIELDS = (
    "invoice_number",
    "xero_invoice_number",
    "reference",
    "matter_name",
    "contact_name",
)
PAYMENT_SEARCH_FIELDS = ("reference", "invoice_number", "matter_name", "contact_name")


def search_text(fields: tuple[str, ...]) -> Func:
    """The columns joined by spaces: `(a || ' ' || b ...)`, as the index holds it (the columns
    are never NULL)."""
    return Func(
        *fields, template="(%(expressions)s)", arg_joiner=" || ' ' || ", output_field=TextField()
    )


class LinkStatus(models.TextChoices):
    LINKED = "linked", "Linked"
    UNLINKED = "unlinked", "Unlinked"


class XeroStatus(models.TextChoices):
    UNKNOWN = "", "Not checked"
    DRAFT = "DRAFT", "Draft"
    SUBMITTED = "SUBMITTED", "Submitted"
    AUTHORISED = "AUTHORISED", "Authorised"
    PAID = "PAID", "Paid"
    VOIDED = "VOIDED", "Voided"
    DELETED = "DELETED", "Deleted"
    MISSING = "MISSING", "Missing in Xero"


class LinkedRecord(models.Model):
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="+")
    actionstep_id = models.PositiveBigIntegerField(help_text="The bill / bill payment id")
    link_id = models.PositiveBigIntegerField(help_text="The Xero link record's id in Actionstep")
    link_status = models.CharField(max_length=10, choices=LinkStatus.choices)
    actionstep_status = models.CharField(max_length=16, blank=True)
    xero_status = models.CharField(max_length=12, choices=XeroStatus.choices, blank=True)
    # denormalised from the invoice so that both lists filter without a join
    invoice_number = models.CharField(max_length=64, blank=True)
    matter_id = models.PositiveBigIntegerField(null=True, blank=True)
    matter_name = models.CharField(max_length=255, blank=True)
    contact_id = models.PositiveBigIntegerField(null=True, blank=True)
    contact_name = models.CharField(max_length=255, blank=True)
    upstream_modified_at = models.DateTimeField(null=True, blank=True)
    vanished_at = models.DateTimeField(
        null=True, blank=True, help_text="No longer returned by Actionstep (kept, not deleted)"
    )
    xero_checked_at = models.DateTimeField(null=True, blank=True)
    # The record's date in Xero, with which Xero compares its lock dates (None: not read yet;
    # the plan then uses the Actionstep date, which the integration copied to Xero).
    xero_date = models.DateField(null=True, blank=True)
    synced_at = models.DateTimeField()

    class Meta:
        abstract = True


class LinkedInvoice(LinkedRecord):
    reference = models.CharField(max_length=255, blank=True)
    invoice_date = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    total = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    total_paid = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    total_due = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    xero_invoice_id = models.CharField(max_length=36, blank=True)
    xero_invoice_number = models.CharField(max_length=64, blank=True)
    xero_total = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    xero_amount_paid = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    xero_contact_name = models.CharField(max_length=255, blank=True)
    xero_currency = models.CharField(max_length=3, blank=True, help_text="Xero's CurrencyCode")
    xero_amount_credited = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True
    )
    # The credit notes, prepayments and overpayments allocated to the Xero copy, as Xero lists
    # them on the invoice: [{"kind", "document_id", "number", "amount", "date"}]. Xero refuses
    # to void an invoice while any is allocated (mirror.services.credits_json).
    xero_credits = models.JSONField(default=list, blank=True)
    # Payments on this invoice whose Xero link is still live; kept by sync and by unlink steps.
    linked_payment_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "actionstep_id"], name="linked_invoice_unique_per_connection"
            )
        ]
        indexes = [
            models.Index(fields=["connection", "invoice_date", "id"], name="li_conn_date"),
            models.Index(
                fields=["connection", "link_status", "invoice_date"], name="li_conn_status"
            ),
            models.Index(fields=["connection", "invoice_number"], name="li_conn_number"),
            models.Index(fields=["connection", "matter_name"], name="li_conn_matter"),
            models.Index(fields=["connection", "contact_name"], name="li_conn_contact"),
            models.Index(fields=["connection", "xero_status"], name="li_conn_xero_status"),
            models.Index(fields=["connection", "total"], name="li_conn_total"),
            models.Index(fields=["connection", "xero_invoice_id"], name="li_conn_xero_id"),
        ]

    def __str__(self):
        return self.invoice_number or f"bill {self.actionstep_id}"

    @property
    def currency_code(self) -> str:
        """The invoice's currency: Actionstep's, else the one Xero reported."""
        return self.currency or self.xero_currency


class LinkedPayment(LinkedRecord):
    invoice = models.ForeignKey(
        LinkedInvoice, null=True, blank=True, on_delete=models.SET_NULL, related_name="payments"
    )
    invoice_actionstep_id = models.PositiveBigIntegerField(help_text="The bill it is applied to")
    payment_date = models.DateField(null=True, blank=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    # the invoice's currency, denormalised like its number
    currency = models.CharField(max_length=3, blank=True)
    reference = models.CharField(max_length=255, blank=True)
    xero_payment_id = models.CharField(max_length=36, blank=True)
    is_batch_payment = models.BooleanField(default=False)
    xero_batch_payment_id = models.CharField(max_length=36, blank=True)
    # The other invoices its Xero batch payment pays, which deleting the batch would un-pay:
    # [{"number", "amount"}].
    xero_batch_invoices = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "actionstep_id"], name="linked_payment_unique_per_connection"
            )
        ]
        indexes = [
            models.Index(fields=["connection", "payment_date", "id"], name="lp_conn_date"),
            models.Index(
                fields=["connection", "link_status", "payment_date"], name="lp_conn_status"
            ),
            models.Index(fields=["connection", "invoice_number"], name="lp_conn_number"),
            models.Index(fields=["connection", "matter_name"], name="lp_conn_matter"),
            models.Index(fields=["connection", "contact_name"], name="lp_conn_contact"),
            models.Index(fields=["connection", "xero_status"], name="lp_conn_xero_status"),
            models.Index(fields=["connection", "amount"], name="lp_conn_amount"),
            models.Index(fields=["connection", "invoice_actionstep_id"], name="lp_conn_bill"),
            models.Index(fields=["invoice", "link_status"], name="lp_invoice_status"),
        ]

    def __str__(self):
        return self.reference or f"payment {self.actionstep_id}"

    @property
    def currency_code(self) -> str:
        return self.currency


class SyncRun(models.Model):
    """One sync of a connection's mirror; the Refresh button shows the latest one's progress."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="sync_runs")
    full = models.BooleanField(default=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # high-water marks per Actionstep resource: {"xeroinvoicelinks": "2025-...", ...}
    cursors = models.JSONField(default=dict, blank=True)
    pages_done = models.PositiveIntegerField(default=0)
    pages_total = models.PositiveIntegerField(default=0)
    records_upserted = models.PositiveIntegerField(default=0)
    records_vanished = models.PositiveIntegerField(default=0)
    requests_made = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        get_latest_by = "created_at"

    def __str__(self):
        return f"sync {self.pk} of {self.connection} ({self.state})"
