"""Runs the steps of confirmed batches, one Celery task per step.

A step runs only when every step it depends on is done; when it finishes it queues the steps
that were waiting for it. Its state is recorded before and after each upstream call, claimed by
one task at a time, and every action re-reads upstream first (actions.py): a task delivered twice,
or retried after a worker died, never acts twice.
"""

import logging
import random
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from unlinker.connections.models import Connection
from unlinker.core.display import format_datetime, zone_of
from unlinker.integrations.errors import ApiError, AuthExpired, RateLimited
from unlinker.integrations.throttle import time_scale
from unlinker.mirror.models import LinkedInvoice, LinkedPayment, LinkStatus, XeroStatus
from unlinker.mirror.services import recount_linked_payments

from .actions import ACTIONS, GROUPED, Refused, xero_remove_invoices
from .models import FINISHED_STATES, StepKind, StepState, UnlinkBatch, UnlinkStep

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
XERO_INVOICES_PER_CALL = 50  # Xero's limit for one POST /Invoices
BACKOFF_CAP_SECONDS = 300


def stale_after() -> timedelta:
    """A claim older than this belongs to a worker that died (tasks are killed at the time
    limit well before)."""
    return timedelta(seconds=getattr(settings, "STEP_STALE_SECONDS", 600))


def _blocked_dependency():
    return UnlinkStep.depends_on.through.objects.filter(from_unlinkstep=OuterRef("pk")).exclude(
        to_unlinkstep__state=StepState.DONE
    )


def ready_steps(batch_id: int | None = None):
    """Pending steps whose dependencies are all done and that are not waiting for a retry time."""
    now = timezone.now()
    steps = UnlinkStep.objects.filter(state=StepState.PENDING).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    if batch_id is not None:
        steps = steps.filter(batch_id=batch_id)
    return steps.exclude(Exists(_blocked_dependency()))


def _queue(step_ids: list[int], countdown: float | None = None) -> None:
    from .tasks import run_step

    if not step_ids:
        return
    UnlinkStep.objects.filter(pk__in=step_ids).update(queued_at=timezone.now())
    for step_id in step_ids:
        if countdown:
            run_step.apply_async((step_id,), countdown=countdown)
        else:
            run_step.delay(step_id)


def enqueue_ready_steps(batch_id: int) -> int:
    """Queue a task for every step of the batch that may run now. Call after commit."""
    step_ids = list(ready_steps(batch_id).values_list("pk", flat=True))
    _queue(step_ids)
    return len(step_ids)


@dataclass
class Clients:
    actionstep: object
    xero: object


class _ConnectionClients:
    """A connection's clients, each built (its credential read) only if the step uses it."""

    def __init__(self, connection):
        self.connection = connection

    @cached_property
    def actionstep(self):
        from unlinker.integrations.factory import actionstep_client_for

        return actionstep_client_for(self.connection)

    @cached_property
    def xero(self):
        from unlinker.integrations.factory import xero_client_for

        return xero_client_for(self.connection)


def clients_for(connection) -> _ConnectionClients:
    return _ConnectionClients(connection)


def _dependencies():
    return UnlinkStep.depends_on.through.objects.filter(from_unlinkstep=OuterRef("pk"))


def _claim(step_id: int, task_id: str) -> UnlinkStep | None:
    """Take the step for this task, or return None when it is not this task's to run."""
    now = timezone.now()
    waiting = [StepState.PENDING, StepState.RUNNING]
    with transaction.atomic():
        step = (
            UnlinkStep.objects.select_for_update(of=("self",))
            .select_related("batch", "batch__connection", "invoice", "payment")
            .annotate(
                dependency_unsuccessful=Exists(
                    _dependencies().exclude(to_unlinkstep__state__in=[*waiting, StepState.DONE])
                ),
                dependency_waiting=Exists(_dependencies().filter(to_unlinkstep__state__in=waiting)),
                has_dependents=Exists(
                    UnlinkStep.depends_on.through.objects.filter(to_unlinkstep=OuterRef("pk"))
                ),
            )
            .filter(pk=step_id)
            .first()
        )
        if step is None or step.state in FINISHED_STATES:
            return None
        if step.state == StepState.RUNNING:
            own_redelivery = task_id and step.claimed_by == task_id
            stale = step.started_at and now - step.started_at > stale_after()
            if not (own_redelivery or stale):
                return None
        if step.next_attempt_at and step.next_attempt_at > now and step.state == StepState.PENDING:
            return None  # an earlier retry is scheduled; this delivery is a duplicate
        batch = step.batch
        if batch.paused_until and batch.paused_until > now:
            return None  # the sweep resumes it when the pause ends
        if step.dependency_unsuccessful:
            _skip(step, "not run: a step it depends on did not succeed")
            return None
        if step.dependency_waiting:
            return None  # queued again by the last dependency to finish
        step.state = StepState.RUNNING
        step.claimed_by = task_id or ""
        step.started_at = now
        step.attempts += 1
        step.next_attempt_at = None
        step.save(
            update_fields=["state", "claimed_by", "started_at", "attempts", "next_attempt_at"]
        )
        if batch.state != UnlinkBatch.State.RUNNING:
            UnlinkBatch.objects.filter(pk=batch.pk).update(
                state=UnlinkBatch.State.RUNNING, paused_until=None, pause_reason=""
            )
    return step


def execute_step(step_id: int, task_id: str = "", clients: Clients | None = None) -> None:
    step = _claim(step_id, task_id)
    if step is None:
        return
    group = [step]
    if step.kind in GROUPED:
        group += _claim_companions(step, task_id)
    try:
        clients = clients or clients_for(step.batch.connection)
        if step.kind in GROUPED:
            results = xero_remove_invoices(group, clients)
        else:
            results = {step.pk: ACTIONS[step.kind](step, clients)}
    except (Refused, ApiError) as exc:
        results = {member.pk: exc for member in group}
    for member in group:
        result = results[member.pk]
        if isinstance(result, Exception):
            _record_failure(member, result)
        else:
            _done(member, result)
    finish_batch_if_settled(step.batch_id)


def _claim_companions(step: UnlinkStep, task_id: str) -> list[UnlinkStep]:
    """Other ready steps of the same kind of the batch, up to what one Xero call takes."""
    candidates = (
        ready_steps(step.batch_id)
        .filter(kind__in=GROUPED)
        .exclude(pk=step.pk)
        .order_by("position")
        .values_list("pk", flat=True)[: XERO_INVOICES_PER_CALL - 1]
    )
    claimed = (_claim(pk, task_id) for pk in list(candidates))
    return [companion for companion in claimed if companion is not None]


def _record_failure(step: UnlinkStep, exc: Exception) -> None:
    if isinstance(exc, Refused):
        _fail(step, str(exc))
    elif isinstance(exc, RateLimited):
        _rate_limited(step, exc)
    elif isinstance(exc, AuthExpired):
        _fail(step, f"{exc.message or 'authorisation expired'}: reconnect it on Connections")
    elif exc.retryable and step.attempts < MAX_ATTEMPTS:
        _retry_later(step, _backoff(step.attempts), f"{type(exc).__name__}: {exc.message}")
    else:
        _fail(step, f"{type(exc).__name__}: {exc.message}")


def _backoff(attempts: int) -> float:
    base = min(BACKOFF_CAP_SECONDS, 2**attempts) / time_scale()
    return base * random.uniform(0.5, 1.5)  # jitter spreads retries of many steps apart


def _retry_later(step: UnlinkStep, countdown: float, why: str) -> None:
    UnlinkStep.objects.filter(pk=step.pk).update(
        state=StepState.PENDING,
        claimed_by="",
        next_attempt_at=timezone.now() + timedelta(seconds=countdown),
        error=f"attempt {step.attempts}: {why}; retrying",
    )
    transaction.on_commit(lambda: _queue([step.pk], countdown=countdown))


def _rate_limited(step: UnlinkStep, exc: RateLimited) -> None:
    if exc.is_daily:
        # Waiting hours in a countdown would outlive the broker's redelivery window: park the
        # batch in the database instead; the sweep resumes it.
        until = timezone.now() + timedelta(seconds=exc.retry_after or 3600)
        connection = Connection.objects.filter(batches=step.batch_id).first()
        UnlinkBatch.objects.filter(pk=step.batch_id).update(
            state=UnlinkBatch.State.PAUSED,
            paused_until=until,
            pause_reason=f"Xero's daily call limit for this organisation is used up; "
            f"resuming at {format_datetime(until, zone_of(connection))}",
        )
        UnlinkStep.objects.filter(pk=step.pk).update(
            state=StepState.PENDING, claimed_by="", next_attempt_at=until, error="daily limit"
        )
        return
    # Not counted as a failed attempt: the API asked us to wait, nothing went wrong.
    UnlinkStep.objects.filter(pk=step.pk).update(attempts=step.attempts - 1)
    # Actionstep sends no Retry-After: back off as for any passing failure.
    wait = exc.retry_after if exc.retry_after is not None else _backoff(step.attempts)
    _retry_later(step, wait + random.uniform(0, 1), f"rate limited ({exc.problem or 429})")


def _fail(step: UnlinkStep, error: str) -> None:
    with transaction.atomic():
        UnlinkStep.objects.filter(pk=step.pk).update(
            state=StepState.FAILED, finished_at=timezone.now(), error=error, claimed_by=""
        )
        _skip_dependents(step)


def _skip(step: UnlinkStep, reason: str) -> None:
    UnlinkStep.objects.filter(pk=step.pk).update(
        state=StepState.SKIPPED, finished_at=timezone.now(), error=reason, claimed_by=""
    )
    _skip_dependents(step)


def _skip_dependents(step: UnlinkStep) -> None:
    """Everything that waits on a failed, skipped or cancelled step is skipped with the reason;
    steps of other invoices are untouched."""
    blocked = {step.pk}
    frontier = [step.pk]
    while frontier:
        frontier = list(
            UnlinkStep.depends_on.through.objects.filter(to_unlinkstep__in=frontier)
            .exclude(from_unlinkstep__in=blocked)
            .values_list("from_unlinkstep", flat=True)
        )
        blocked.update(frontier)
    blocked.discard(step.pk)
    if blocked:
        UnlinkStep.objects.filter(pk__in=blocked, state=StepState.PENDING).update(
            state=StepState.SKIPPED,
            finished_at=timezone.now(),
            error=f"not run: step {step.position} ({step.get_kind_display()}) did not succeed",
        )


def _done(step: UnlinkStep, outcome) -> None:
    with transaction.atomic():
        UnlinkStep.objects.filter(pk=step.pk).update(
            state=StepState.DONE,
            finished_at=timezone.now(),
            last_request=outcome.request,
            last_response=outcome.response,
            error="",
            claimed_by="",
        )
        record_in_mirror(step, outcome)
    if getattr(step, "has_dependents", True):  # annotated by _claim
        # After commit, so that the last of several dependencies to finish sees all of them done.
        # By primary key: a batch's pending steps can number thousands, its dependents few.
        dependents = UnlinkStep.depends_on.through.objects.filter(to_unlinkstep=step.pk)
        ids = list(dependents.values_list("from_unlinkstep", flat=True))
        _queue(list(ready_steps().filter(pk__in=ids).order_by().values_list("pk", flat=True)))


MIRROR_EFFECTS = {
    StepKind.UNLINK_PAYMENT: (LinkedPayment, "payment_id", {"link_status": LinkStatus.UNLINKED}),
    StepKind.DELETE_PAYMENT: (LinkedPayment, "payment_id", {"actionstep_status": "Deleted"}),
    StepKind.REVERSE_PAYMENT: (LinkedPayment, "payment_id", {"actionstep_status": "Reversed"}),
    StepKind.UNLINK_INVOICE: (LinkedInvoice, "invoice_id", {"link_status": LinkStatus.UNLINKED}),
    StepKind.REVERT_INVOICE: (LinkedInvoice, "invoice_id", {"actionstep_status": "Draft"}),
    StepKind.DELETE_INVOICE: (LinkedInvoice, "invoice_id", {"actionstep_status": "Deleted"}),
    StepKind.XERO_DELETE_PAYMENT: (
        LinkedPayment,
        "payment_id",
        {"xero_status": XeroStatus.DELETED},
    ),
}


def record_in_mirror(step: UnlinkStep, outcome) -> None:
    """Keep the lists truthful without waiting for the next sync."""
    if step.kind in (StepKind.XERO_VOID_INVOICE, StepKind.XERO_DELETE_INVOICE):
        linked_copy = step.invoice.xero_invoice_id.lower() if step.invoice else ""
        # A duplicate's clean-up names the duplicate's Xero id: the linked copy is unchanged.
        if not step.xero_id or step.xero_id.lower() == linked_copy:
            LinkedInvoice.objects.filter(pk=step.invoice_id).update(xero_status=outcome.xero_status)
        return
    model, field, changes = MIRROR_EFFECTS[step.kind]
    target = getattr(step, field)
    if target is None:
        return
    model.objects.filter(pk=target).update(**changes)
    if step.kind == StepKind.UNLINK_PAYMENT and step.payment and step.payment.invoice_id:
        recount_linked_payments(step.batch.connection_id, [step.payment.invoice_id])


def _unfinished_steps():
    return UnlinkStep.objects.filter(batch_id=OuterRef("pk")).exclude(state__in=FINISHED_STATES)


def finish_batch_if_settled(batch_id: int) -> None:
    """One statement: the batch is finished once none of its steps is pending or running."""
    UnlinkBatch.objects.filter(pk=batch_id).exclude(state=UnlinkBatch.State.FINISHED).exclude(
        Exists(_unfinished_steps())
    ).update(
        state=UnlinkBatch.State.FINISHED,
        finished_at=timezone.now(),
        paused_until=None,
        pause_reason="",
    )


def settle_batch_state(batch_id: int) -> None:
    """A batch is finished exactly when none of its steps is pending or running: finishing or
    cancelling the last waiting steps finishes it, retrying a finished batch's steps re-opens it."""
    UnlinkBatch.objects.filter(pk=batch_id, state=UnlinkBatch.State.FINISHED).filter(
        Exists(_unfinished_steps())
    ).update(state=UnlinkBatch.State.QUEUED, finished_at=None)
    finish_batch_if_settled(batch_id)


def sweep() -> int:
    """Safety net run by beat: re-queue steps whose task was lost (a worker killed mid-step, a
    broker restarted) and resume paused batches whose wait is over."""
    now = timezone.now()
    stale = now - stale_after()
    UnlinkStep.objects.filter(state=StepState.RUNNING, started_at__lt=stale).update(
        state=StepState.PENDING, claimed_by="", error="re-queued: its worker stopped mid-step"
    )
    UnlinkBatch.objects.filter(state=UnlinkBatch.State.PAUSED, paused_until__lte=now).update(
        state=UnlinkBatch.State.RUNNING, paused_until=None, pause_reason=""
    )
    lost = (
        ready_steps()
        .filter(batch__state__in=[UnlinkBatch.State.QUEUED, UnlinkBatch.State.RUNNING])
        .filter(Q(queued_at__isnull=True) | Q(queued_at__lt=stale))
        .values_list("pk", flat=True)
    )
    step_ids = list(lost[:5000])
    _queue(step_ids)
    return len(step_ids)
