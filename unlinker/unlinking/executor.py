"""Runs the steps of confirmed batches, one Celery task per step.

A step runs only when every step it depends on is done; when it finishes it queues the steps
that were waiting for it. It is claimed by one task at a time, every attempt is recorded (which
task, when, every request it sent and every answer: audit.py), and every action re-reads
upstream first (actions.py): a task delivered twice, or retried after a worker died, never acts
twice. Whatever an attempt raises counts: after MAX_ATTEMPTS the step fails with the reason and
the steps that depend on it are skipped, so that no step loops for ever.
"""

import logging
import random
from datetime import timedelta
from functools import cached_property

from django.conf import settings
from django.db import transaction
from django.db.models import Case, Exists, F, OuterRef, Q, Value, When
from django.utils import timezone

from unlinker.core.display import format_datetime, zone_of
from unlinker.integrations.errors import ApiError, AuthExpired, RateLimited
from unlinker.integrations.throttle import time_scale
from unlinker.integrations.xero import XERO_INVOICES_PER_CALL

from . import effects, targets
from .actions import ACTIONS, GROUPED, Refused, StepResult, xero_remove_invoices
from .audit import AttemptAudit, earlier_write
from .models import (
    FINISHED_STATES,
    UNFINISHED_STATES,
    StepAttempt,
    StepState,
    UnlinkBatch,
    UnlinkStep,
)

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
BACKOFF_CAP_SECONDS = 300
Attempt = StepAttempt.Outcome


def stale_after() -> timedelta:
    """A claim older than this belongs to a worker that died (tasks are killed at the time
    limit well before)."""
    return timedelta(seconds=settings.STEP_STALE_SECONDS)


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


class _ConnectionClients:
    """A connection's clients, each built (its credential read) only if the step uses it, and
    each telling the attempts' audit of every request."""

    def __init__(self, connection, audit: AttemptAudit):
        self.connection = connection
        self.audit = audit

    @cached_property
    def actionstep(self):
        from unlinker.connections.clients import actionstep_client_for

        client = actionstep_client_for(self.connection)
        client.audit = self.audit
        return client

    @cached_property
    def xero(self):
        from unlinker.connections.clients import xero_client_for

        client = xero_client_for(self.connection)
        client.audit = self.audit
        return client


def _dependencies():
    return UnlinkStep.depends_on.through.objects.filter(from_unlinkstep=OuterRef("pk"))


def _claim(step_id: int, task_id: str) -> UnlinkStep | None:
    """Take the step for this task and open its next attempt (`step.attempt`), or return None
    when it is not this task's to run."""
    now = timezone.now()
    with transaction.atomic():
        step = (
            UnlinkStep.objects.select_for_update(of=("self",))
            .select_related("batch", "batch__connection", "invoice", "payment")
            .annotate(
                dependency_unsuccessful=Exists(
                    _dependencies().exclude(
                        to_unlinkstep__state__in=[*UNFINISHED_STATES, StepState.DONE]
                    )
                ),
                dependency_waiting=Exists(
                    _dependencies().filter(to_unlinkstep__state__in=UNFINISHED_STATES)
                ),
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
        if step.attempts:
            # An attempt still open belongs to a worker that stopped: it keeps what it sent.
            StepAttempt.objects.filter(step=step, outcome=Attempt.RUNNING).update(
                outcome=Attempt.INTERRUPTED,
                finished_at=now,
                detail="its worker stopped before the attempt ended",
            )
        if step.counted_attempts >= MAX_ATTEMPTS:
            _fail(
                step,
                f"gave up after {step.counted_attempts} attempts; the last: "
                f"{step.error or 'its worker stopped mid-step'}",
                claimed=False,
            )
            return None
        step.state = StepState.RUNNING
        step.claimed_by = task_id or ""
        step.started_at = now
        step.attempts += 1
        step.next_attempt_at = None
        step.save(
            update_fields=["state", "claimed_by", "started_at", "attempts", "next_attempt_at"]
        )
        step.attempt = StepAttempt.objects.create(
            step=step, number=step.attempts, task_id=task_id or "", started_at=now
        )
        if batch.state != UnlinkBatch.State.RUNNING:
            UnlinkBatch.objects.filter(pk=batch.pk).update(
                state=UnlinkBatch.State.RUNNING, paused_until=None, pause_reason=""
            )
    return step


def execute_step(step_id: int, task_id: str = "") -> None:
    step = _claim(step_id, task_id)
    if step is None:
        return
    group = [step]
    if step.kind in GROUPED:
        group += _claim_companions(step, task_id)
    try:
        clients = _ConnectionClients(
            step.batch.connection, AttemptAudit([member.attempt for member in group])
        )
        if step.kind in GROUPED:
            results = xero_remove_invoices(group, clients)
        else:
            results = {step.pk: ACTIONS[step.kind](step, clients)}
    except Exception as exc:  # every failure is an attempt, recorded with its reason
        if not isinstance(exc, Refused | ApiError):
            log.exception("step %s: %s", step.pk, type(exc).__name__)
        results = {member.pk: exc for member in group}
    for member in group:
        _settle(member, results[member.pk])
    finish_batch_if_settled(step.batch_id)


def _settle(step: UnlinkStep, result: StepResult | Exception) -> None:
    try:
        if isinstance(result, Exception):
            _record_failure(step, result)
        else:
            _done(step, result)
    except Exception as exc:
        # Recording the result failed (a bug, the database gone for a moment): this attempt
        # counts as failed, and the step is retried from a fresh re-read.
        if isinstance(result, Exception):
            raise
        log.exception("step %s: recording its result failed", step.pk)
        _record_failure(step, exc)


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


class ClaimLost(Exception):
    """The step was taken over (the sweep judged this attempt's worker dead): this attempt must
    neither write upstream nor record anything on the step."""


def _owned(step: UnlinkStep):
    """The step, while this attempt still holds it: a takeover counts a new attempt. Every record
    of the attempt's result goes through it, so a worker that lost its step changes nothing."""
    return UnlinkStep.objects.filter(pk=step.pk, attempts=step.attempts, state=StepState.RUNNING)


def _why(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _record_failure(step: UnlinkStep, exc: Exception) -> None:
    if isinstance(exc, ClaimLost):
        if _owned(step).exists():  # another step of the same call was the one taken over
            _retry_later(step, 0, "another step of its call was taken over; nothing was sent")
        else:
            _end_attempt(step, Attempt.INTERRUPTED, "its step was taken over: nothing was sent")
    elif isinstance(exc, Refused):
        _fail(step, str(exc))
    elif isinstance(exc, RateLimited):
        _rate_limited(step, exc)
    elif isinstance(exc, AuthExpired):
        _fail(step, f"{exc.message or 'authorisation expired'}: reconnect it on Connections")
    elif isinstance(exc, ApiError) and not exc.retryable:
        _fail(step, _why(exc))
    elif step.counted_attempts < MAX_ATTEMPTS:
        # Passing failures, and anything unexpected: tried again, up to MAX_ATTEMPTS in all.
        _retry_later(step, _backoff(step.attempts), _why(exc))
    else:
        _fail(step, f"attempt {step.counted_attempts} of {MAX_ATTEMPTS}: {_why(exc)}")


def _backoff(attempts: int) -> float:
    base = min(BACKOFF_CAP_SECONDS, 2**attempts) / time_scale()
    return base * random.uniform(0.5, 1.5)  # jitter spreads retries of many steps apart


def _end_attempt(step: UnlinkStep, outcome: str, detail: str) -> None:
    attempt = getattr(step, "attempt", None)
    if attempt is not None:
        StepAttempt.objects.filter(pk=attempt.pk).update(
            outcome=outcome, detail=detail, finished_at=timezone.now()
        )


def _retry_later(
    step: UnlinkStep, countdown: float, why: str, outcome: str = Attempt.RETRYING
) -> None:
    with transaction.atomic():
        if not _owned(step).update(
            state=StepState.PENDING,
            claimed_by="",
            next_attempt_at=timezone.now() + timedelta(seconds=countdown),
            error=f"attempt {step.attempts}: {why}; retrying",
        ):
            return _lost(step)
        _end_attempt(step, outcome, why)
        transaction.on_commit(lambda: _queue([step.pk], countdown=countdown))


def _rate_limited(step: UnlinkStep, exc: RateLimited) -> None:
    # Not counted as a failed attempt: the API asked us to wait, nothing went wrong.
    UnlinkStep.objects.filter(pk=step.pk).update(rate_limited=F("rate_limited") + 1)
    if exc.is_daily:
        # Waiting hours in a countdown would outlive the broker's redelivery window: park the
        # batch in the database instead; the sweep resumes it.
        until = timezone.now() + timedelta(seconds=exc.retry_after or 3600)
        connection = step.batch.connection
        with transaction.atomic():
            UnlinkBatch.objects.filter(pk=step.batch_id).update(
                state=UnlinkBatch.State.PAUSED,
                paused_until=until,
                pause_reason=f"Xero's daily call limit for this organisation is used up; "
                f"resuming at {format_datetime(until, zone_of(connection))}",
            )
            if not _owned(step).update(
                state=StepState.PENDING, claimed_by="", next_attempt_at=until, error="daily limit"
            ):
                return _lost(step)
            _end_attempt(step, Attempt.WAITING, "Xero's daily call limit is used up")
        return
    # Actionstep sends no Retry-After: back off as for any passing failure.
    wait = exc.retry_after if exc.retry_after is not None else _backoff(step.attempts)
    _retry_later(
        step, wait + random.uniform(0, 1), f"rate limited ({exc.problem or 429})", Attempt.WAITING
    )


def _fail(step: UnlinkStep, error: str, *, claimed: bool = True) -> None:
    """`claimed`: the attempt holds the step (False: its claim found it past its attempts)."""
    with transaction.atomic():
        steps = _owned(step) if claimed else UnlinkStep.objects.filter(pk=step.pk)
        if not steps.update(
            state=StepState.FAILED, finished_at=timezone.now(), error=error, claimed_by=""
        ):
            return _lost(step)
        _end_attempt(step, Attempt.FAILED, error)
        _skip_dependents(step)
        targets.release_finished(step.batch_id)


def _lost(step: UnlinkStep) -> None:
    _end_attempt(
        step, Attempt.INTERRUPTED, "its step was taken over before this attempt recorded it"
    )


def _skip(step: UnlinkStep, reason: str) -> None:
    with transaction.atomic():
        UnlinkStep.objects.filter(pk=step.pk).update(
            state=StepState.SKIPPED, finished_at=timezone.now(), error=reason, claimed_by=""
        )
        _skip_dependents(step)
        targets.release_finished(step.batch_id)


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


def _summary(step: UnlinkStep, result: StepResult) -> str:
    """What the step did, in words: when a retry finds the work done, say whether an earlier
    attempt of this step had sent the write that did it."""
    if not result.already:
        return result.summary
    attempt = getattr(step, "attempt", None)
    write = earlier_write(step, attempt.number) if attempt else None
    if write is None:
        return f"{result.summary}; nothing sent"
    lost = ", whose answer was lost" if write.answer_lost else ""
    return f"already done (by attempt {write.attempt.number}'s write{lost}): {result.summary}"


def _done(step: UnlinkStep, result: StepResult) -> None:
    summary = _summary(step, result)
    with transaction.atomic():
        if not _owned(step).update(
            state=StepState.DONE,
            finished_at=timezone.now(),
            result=summary,
            error="",
            claimed_by="",
        ):
            # Taken over after its write went out: the attempt that took it re-reads, finds
            # the work done, and records it (this one's write is on its own attempt).
            _lost(step)
            return
        _end_attempt(step, Attempt.DONE, summary)
        effects.record_step(step, result.xero_status, xero_number=result.xero_number)
        targets.release_finished(step.batch_id, [step.target_key])
    if getattr(step, "has_dependents", True):  # annotated by _claim
        # After commit, so that the last of several dependencies to finish sees all of them done.
        # By primary key: a batch's pending steps can number thousands, its dependents few.
        dependents = UnlinkStep.depends_on.through.objects.filter(to_unlinkstep=step.pk)
        ids = list(dependents.values_list("from_unlinkstep", flat=True))
        _queue(list(ready_steps().filter(pk__in=ids).order_by().values_list("pk", flat=True)))


def _unfinished_steps():
    return UnlinkStep.objects.filter(batch_id=OuterRef("pk"), state__in=UNFINISHED_STATES)


def _steps_in(*states):
    return UnlinkStep.objects.filter(batch_id=OuterRef("pk"), state__in=states)


def finish_batch_if_settled(batch_id: int) -> None:
    """One statement: once none of its steps is pending or running, the batch is finished,
    finished with problems (a step failed, or was skipped because one did) or cancelled."""
    settled = UnlinkBatch.objects.filter(pk=batch_id).exclude(state__in=UnlinkBatch.SETTLED_STATES)
    problems = UnlinkStep.objects.filter(batch_id=OuterRef("pk")).filter(
        Q(state=StepState.FAILED) | Q(state=StepState.SKIPPED, skipped_by_plan=False)
    )
    changed = settled.exclude(Exists(_unfinished_steps())).update(
        state=Case(
            When(Exists(_steps_in(StepState.CANCELLED)), then=Value(UnlinkBatch.State.CANCELLED)),
            When(Exists(problems), then=Value(UnlinkBatch.State.PROBLEMS)),
            default=Value(UnlinkBatch.State.FINISHED),
        ),
        finished_at=timezone.now(),
        paused_until=None,
        pause_reason="",
    )
    if changed:
        targets.release_finished(batch_id)


def settle_batch_state(batch_id: int) -> None:
    """A batch is settled exactly when none of its steps is pending or running: finishing or
    cancelling the last waiting steps settles it, retrying a settled batch's steps re-opens it."""
    UnlinkBatch.objects.filter(pk=batch_id, state__in=UnlinkBatch.SETTLED_STATES).filter(
        Exists(_unfinished_steps())
    ).update(state=UnlinkBatch.State.QUEUED, finished_at=None)
    finish_batch_if_settled(batch_id)


def sweep() -> int:
    """Safety net run by beat: re-queue steps whose task was lost (a worker killed mid-step, a
    broker restarted) and resume paused batches whose wait is over. A step whose worker died
    MAX_ATTEMPTS times is failed by its next claim, never run again."""
    now = timezone.now()
    stale = now - stale_after()
    stopped = list(
        UnlinkStep.objects.filter(state=StepState.RUNNING, started_at__lt=stale).values_list(
            "pk", flat=True
        )
    )
    if stopped:
        with transaction.atomic():
            StepAttempt.objects.filter(step__in=stopped, outcome=Attempt.RUNNING).update(
                outcome=Attempt.INTERRUPTED,
                finished_at=now,
                detail="its worker stopped before the attempt ended",
            )
            UnlinkStep.objects.filter(pk__in=stopped, state=StepState.RUNNING).update(
                state=StepState.PENDING,
                claimed_by="",
                error="re-queued: its worker stopped mid-step",
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
