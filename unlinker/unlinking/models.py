"""Unlink batches and their steps: the plan a user confirmed, the records it holds while it runs,
and the audit record of every attempt of every step: each request sent, each answer."""

from django.conf import settings
from django.db import models
from django.db.models import Q

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
    XERO_DELETE_ALLOCATION = "xero_delete_allocation", "Remove allocation in Xero"
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
UNFINISHED_STATES = (StepState.PENDING, StepState.RUNNING)


class UnlinkBatch(models.Model):
    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"  # e.g. Xero's daily limit reached: resumes by itself
        # Every step finished. Which of these is decided when the last one does (executor).
        FINISHED = "finished", "Finished"  # every step that was to run is done
        PROBLEMS = "problems", "Finished with problems"  # some failed, or were skipped for it
        CANCELLED = "cancelled", "Cancelled"  # someone cancelled steps before they ran

    SETTLED_STATES = (State.FINISHED, State.PROBLEMS, State.CANCELLED)

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
    # The one-time key of the confirmation that made the batch: submitting it again (a double
    # click, Back and submit, a retry of the request) lands on this batch instead of a new one.
    confirm_key = models.CharField(max_length=64, null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "batch"  # "12 batches" above the task history
        verbose_name_plural = "batches"
        constraints = [
            models.UniqueConstraint(fields=["confirm_key"], name="one_batch_per_confirmation")
        ]

    def __str__(self):
        return f"Batch {self.pk}"

    @property
    def is_settled(self) -> bool:
        return self.state in self.SETTLED_STATES


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
    # The record the step writes, as BatchTarget names it (planning.PlannedStep.record_key).
    target_key = models.CharField(max_length=64, blank=True)
    actionstep_id = models.PositiveBigIntegerField(null=True, blank=True)
    xero_id = models.CharField(max_length=36, blank=True)
    depends_on = models.ManyToManyField(
        "self", symmetrical=False, blank=True, related_name="dependents"
    )
    added_automatically = models.BooleanField(
        default=False, help_text="Added by the plan (e.g. a payment of a selected invoice)"
    )
    # Skipped when the plan was made (already done, or blocked): not a problem of the run.
    skipped_by_plan = models.BooleanField(default=False)
    state = models.CharField(
        max_length=10, choices=StepState.choices, default=StepState.PENDING, db_index=True
    )
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Attempts made, every one")
    # Of those, attempts the API only asked to wait (429): they do not count towards the limit.
    rate_limited = models.PositiveSmallIntegerField(default=0)
    # The task that holds the step while running: its own redelivery (same id, after a worker
    # died) may take over at once; any other task only once the claim has gone stale.
    claimed_by = models.CharField(max_length=64, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    result = models.TextField(blank=True, help_text="What the step found and did, once done")
    error = models.TextField(blank=True, help_text="Why it failed or was skipped")

    class Meta:
        ordering = ["batch", "position"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "position"], name="step_position_unique")
        ]
        indexes = [
            models.Index(fields=["batch", "state"], name="step_batch_state"),
            models.Index(fields=["batch", "target_key"], name="step_batch_target"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.target_label}"

    @property
    def idempotency_key(self) -> str:
        # Stable across retries of this step, different for every other step and batch.
        return f"unlinker-step-{self.batch_id}-{self.pk}-{self.kind}"

    @property
    def counted_attempts(self) -> int:
        """Attempts that count towards MAX_ATTEMPTS: all but those the API asked to wait."""
        return self.attempts - self.rate_limited


class BatchTarget(models.Model):
    """A record an unfinished batch writes, held from the batch's creation until the batch's last
    step on it has finished. The constraint is the rule "a record has one writer": two batches
    can never both hold a record, however they race (services.create_batch)."""

    batch = models.ForeignKey(UnlinkBatch, on_delete=models.CASCADE, related_name="targets")
    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="+")
    record_key = models.CharField(max_length=64)
    held_since = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "record_key"],
                condition=Q(released_at__isnull=True),
                name="one_unfinished_batch_per_record",
            )
        ]
        indexes = [models.Index(fields=["batch", "record_key"], name="target_batch_record")]

    def __str__(self):
        return f"{self.record_key} held by batch {self.batch_id}"


class StepAttempt(models.Model):
    """One attempt of a step: claimed by a task, ended by an outcome. Never overwritten: a retry
    is a new attempt, and an attempt whose worker died keeps what it had sent."""

    class Outcome(models.TextChoices):
        RUNNING = "", "Running or interrupted"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        RETRYING = "retrying", "Failed, retried later"
        WAITING = "waiting", "Asked to wait by the API"
        INTERRUPTED = "interrupted", "Interrupted: its worker stopped"

    step = models.ForeignKey(UnlinkStep, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveSmallIntegerField()
    task_id = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, blank=True)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["step", "number"]
        constraints = [
            models.UniqueConstraint(fields=["step", "number"], name="attempt_number_unique")
        ]

    def __str__(self):
        return f"attempt {self.number} of step {self.step_id}"


class StepRequest(models.Model):
    """A request an attempt sent and the answer it got. A write is stored before it is sent, so
    that a worker killed before the answer leaves "sent, answer lost", not nothing."""

    attempt = models.ForeignKey(StepAttempt, on_delete=models.CASCADE, related_name="requests")
    sequence = models.PositiveSmallIntegerField()
    api = models.CharField(max_length=12)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    is_write = models.BooleanField(default=False)
    idempotency_key = models.CharField(max_length=128, blank=True)
    sent_at = models.DateTimeField()
    status = models.PositiveSmallIntegerField(null=True, blank=True, help_text="None: no answer")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    sent = models.TextField(blank=True, help_text="The body, summarised; secrets redacted")
    came_back = models.TextField(blank=True, help_text="The answer, summarised; secrets redacted")
    error = models.CharField(max_length=255, blank=True, help_text="Why no answer came")

    class Meta:
        ordering = ["attempt", "sequence"]
        indexes = [models.Index(fields=["attempt", "is_write"], name="request_attempt_write")]

    def __str__(self):
        return f"{self.method} {self.path}"

    @property
    def answer_lost(self) -> bool:
        return self.status is None
