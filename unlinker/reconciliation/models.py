"""What Xero holds for each connection, and the differences found between it and Actionstep."""

from django.conf import settings
from django.db import models

from unlinker.connections.models import Connection
from unlinker.mirror.models import LinkedInvoice


class XeroInvoiceCopy(models.Model):
    """A sales invoice as Xero last reported it. Kept up to date with paged reads
    (If-Modified-Since after the first run), so a report costs a few reads, not one per invoice."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="+")
    invoice_id = models.CharField(max_length=36)
    number = models.CharField(max_length=64, blank=True)
    reference = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=12)
    contact_name = models.CharField(max_length=255, blank=True)
    total = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    amount_paid = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    amount_credited = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, blank=True, help_text="Xero's CurrencyCode")
    payment_ids = models.JSONField(default=list, blank=True)
    date = models.DateField(null=True, blank=True)
    # What is allocated to it (credit notes, prepayments, overpayments), as on LinkedInvoice.
    credits = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "invoice_id"], name="xero_copy_unique")
        ]
        indexes = [
            models.Index(fields=["connection", "number"], name="xero_copy_number"),
            models.Index(fields=["connection", "status"], name="xero_copy_status"),
        ]

    def __str__(self):
        return f"{self.number} ({self.status})"


class ReconciliationRun(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    # One run at a time per connection is queued or running (services.start_reconciliation).
    ACTIVE_STATES = (State.QUEUED, State.RUNNING)

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="+")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    full = models.BooleanField(default=False, help_text="Read every live invoice, not only changes")
    reads_made = models.PositiveIntegerField(default=0)
    pages_done = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True, help_text="Findings per kind")
    changes = models.JSONField(
        default=dict, blank=True, help_text="New and resolved findings since the previous run"
    )
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"reconciliation {self.pk} of {self.connection}"

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE_STATES

    def kind_counts(self) -> list[tuple[str, str, int]]:
        """(kind, label, how many) for every kind of finding, in the kinds' order."""
        return [(kind, label, self.counts.get(kind, 0)) for kind, label in Finding.Kind.choices]


class Finding(models.Model):
    class Kind(models.TextChoices):
        ORPHAN = "orphan", "Orphan in Xero"
        DUPLICATE = "duplicate", "Duplicate in Xero"
        BROKEN_LINK = "broken_link", "Broken link"
        MISMATCH = "mismatch", "Amounts or contact differ"

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="findings")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    invoice = models.ForeignKey(
        LinkedInvoice, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    invoice_number = models.CharField(max_length=64, blank=True)
    xero_invoice_id = models.CharField(max_length=36, blank=True)
    xero_status = models.CharField(max_length=12, blank=True)
    actionstep_total = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    xero_total = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, help_text="Of both totals")
    detail = models.CharField(max_length=500)
    # Identifies "the same finding" across runs, to show what changed since the previous one.
    key = models.CharField(max_length=120)
    # Set when a clean-up step removed the Xero invoice this finding is about: the report stops
    # listing it at once, not only after the next run.
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by_batch = models.ForeignKey(
        "unlinking.UnlinkBatch", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["kind", "invoice_number", "id"]
        indexes = [models.Index(fields=["run", "kind"], name="finding_run_kind")]

    def __str__(self):
        return f"{self.get_kind_display()}: {self.invoice_number}"


# What the clean-up from the report can remove in Xero; the other findings need a person.
CLEANABLE = (Finding.Kind.ORPHAN, Finding.Kind.DUPLICATE)
