"""Unlink batches and their steps: the plan a user confirmed, and the audit record of what each
step sent and got back."""

from django.conf import settings
from django.db import models

from unlinker.connections.models import Connection
from unlinker.mirror.models import LinkedInvoice, LinkedPayment


class StepKind(models.TextChoices):
    # Actionstep
    UNLINK_PAYMENT = "unlink_payment", "Unlink payment from Xero"
    DELETE_PAYMENT = "delete_payment", "Delete payment in Actionstep"
    REVERSE_PAYMENT = "reverse_payment", "Reverse payment in Actionstep"
    UNLINK_INVOICE = "unlink_invoice", "Unlink invoice from Xero"
    REVERT_INVOICE = "revert_invoice", "Revert invoice to draft in Actionstep"
    DELETE_INVOICE = "delete_invoice", "Delete invoice in Actionstep"
    # Xero clean-up
    XERO_DELETE_PAYMENT = "xero_delete_payment", "Delete payment in Xero"
    XERO_VOID_INVOICE = "xero_void_invoice", "Void invoice in Xero"
    XERO_DELETE_INVOICE = "xero_delete_invoice", "Delete invoice in Xero"


class StepState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_STATES = (StepState.DONE, StepState.FAILED, StepState.SKIPPED, StepState.CANCELLED)


class UnlinkBatch(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"  # e.g. Xero's daily limit reached: resumes by itself
        FINISHED = "finished", "Finished"

    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="batches")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    options = models.JSONField(default=dict, help_text="The plan options the user confirmed")
    selection = models.JSONField(default=dict, help_text="What was selected (ids or the filter)")
    summary = models.CharField(max_length=255, blank=True)
    paused_until = models.DateTimeField(null=True, blank=True)
    pause_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Batch {self.pk}"


class UnlinkStep(models.Model):
    batch = models.ForeignKey(UnlinkBatch, on_delete=models.CASCADE, related_name="steps")
    kind = models.CharField(max_length=24, choices=StepKind.choices)
    position = models.PositiveIntegerField(help_text="Order within the batch's plan")
    invoice = models.ForeignKey(
        LinkedInvoice, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    payment = models.ForeignKey(
        LinkedPayment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # What the step acts on, kept even if the mirror row goes away: Actionstep ids and Xero ids.
    target_label = models.CharField(max_length=255, blank=True)
    actionstep_id = models.PositiveBigIntegerField(null=True, blank=True)
    xero_id = models.CharField(max_length=36, blank=True)
    depends_on = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="dependents"
    )
    added_automatically = models.BooleanField(
        default=False, help_text="Added by the plan (e.g. a payment of a selected invoice)"
    )
    state = models.CharField(
        max_length=10, choices=StepState.choices, default=StepState.PENDING, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    # The task that holds the step while running: its own redelivery (same id, after a worker
    # died) may take over at once; any other task only once the claim has gone stale.
    claimed_by = models.CharField(max_length=64, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_request = models.TextField(blank=True, help_text="What was sent, summarised")
    last_response = models.TextField(blank=True, help_text="What came back, summarised")
    error = models.TextField(blank=True, help_text="Why it failed or was skipped")

    class Meta:
        ordering = ["batch", "position"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "position"], name="step_position_unique")
        ]
        indexes = [models.Index(fields=["batch", "state"], name="step_batch_state")]

    def __str__(self):
        return f"{self.get_kind_display()} {self.target_label}"

    @property
    def idempotency_key(self) -> str:
        # Stable across retries of this step, different for every other step and batch.
        return f"unlinker-step-{self.batch_id}-{self.pk}-{self.kind}"
