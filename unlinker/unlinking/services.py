"""Changes to unlink batches: queueing a confirmed plan, cancelling what has not started,
retrying what failed. The executor runs the steps; it is only ever asked to, after commit."""

import logging
from collections import defaultdict
from collections.abc import Iterable

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from unlinker.accounts.roles import CLEANUP_XERO, QUEUE_UNLINK
from unlinker.connections.models import Connection
from unlinker.mirror.models import LinkedPayment

from . import executor
from .models import StepState, UnlinkBatch, UnlinkStep
from .planning import Plan

log = logging.getLogger(__name__)

# Rows per INSERT: one statement per chunk, never one per step. (SQLite lowers it further to
# stay under its 999 bound parameters a statement.)
BULK_CHUNK = 2000


MAY_STILL_SUCCEED = {StepState.PENDING, StepState.RUNNING, StepState.DONE}


class NothingToQueue(ValueError):
    """Every step of the plan is skipped: a batch would do nothing."""


def create_batch(*, connection: Connection, user, selection: dict, plan: Plan) -> UnlinkBatch:
    """Store a confirmed plan as a batch and queue its first steps once committed.

    `selection` describes what was selected, for the record: a `Selection.to_dict()` from the
    lists, or `{"source": "command line", "invoice_actionstep_ids": [...],
    "payment_actionstep_ids": [...]}`. The options are the plan's own, so the batch cannot
    record options other than those its steps were planned with. `user` is None only for the
    command line run without --user, which the shell's access already authorises.
    """
    _authorise(user, plan)
    if not plan.runnable_count:
        raise NothingToQueue("Nothing to queue: every step of the plan is skipped.")
    foreign = {step.target.connection_id for step in plan.steps} - {connection.pk}
    if foreign:
        raise ValueError(f"The plan has records of other connections ({sorted(foreign)})")

    now = timezone.now()
    with transaction.atomic():
        batch = UnlinkBatch.objects.create(
            connection=connection,
            created_by=user,
            options=plan.options.to_dict(),
            selection=selection,
            summary=plan.summary()[:255],
        )
        steps = UnlinkStep.objects.bulk_create(
            [_step_row(batch, planned, now) for planned in plan.steps], batch_size=BULK_CHUNK
        )
        # bulk_create sets the primary keys (PostgreSQL and SQLite ≥ 3.35 return them), and
        # steps[i] is the plan's step at position i.
        Dependency = UnlinkStep.depends_on.through
        Dependency.objects.bulk_create(
            [
                Dependency(
                    from_unlinkstep_id=steps[planned.position].pk, to_unlinkstep_id=steps[needed].pk
                )
                for planned in plan.steps
                for needed in planned.depends_on
            ],
            batch_size=BULK_CHUNK,
        )
        _enqueue_after_commit(batch)
    log.info("batch %s queued by %s: %s", batch.pk, user or "the command line", batch.summary)
    return batch


def _enqueue_after_commit(batch: UnlinkBatch) -> None:
    # robust: with the broker down the batch is still stored, and the executor's periodic sweep
    # queues its ready steps later; the user must not get an error for a batch that exists.
    transaction.on_commit(lambda: executor.enqueue_ready_steps(batch.pk), robust=True)


def _authorise(user, plan: Plan) -> None:
    if user is None:
        return
    if not user.has_perm(QUEUE_UNLINK):
        raise PermissionDenied("Queueing an unlink needs the operator role.")
    if plan.options.xero_cleanup and not user.has_perm(CLEANUP_XERO):
        raise PermissionDenied("Deleting and voiding in Xero needs the admin role.")


def _step_row(batch: UnlinkBatch, planned, now) -> UnlinkStep:
    target = planned.target
    is_payment = isinstance(target, LinkedPayment)
    return UnlinkStep(
        batch=batch,
        kind=planned.kind,
        position=planned.position + 1,  # people count steps from 1
        invoice=planned.invoice,
        payment=planned.payment,
        target_label=planned.target_label,
        actionstep_id=target.actionstep_id,
        xero_id=target.xero_payment_id if is_payment else target.xero_invoice_id,
        added_automatically=planned.added_automatically,
        state=StepState.SKIPPED if planned.skipped else StepState.PENDING,
        error=planned.skip_reason,
        finished_at=now if planned.skipped else None,
    )


def cancel_pending_steps(*, batch: UnlinkBatch, user) -> int:
    """Cancel every step not started yet; running ones finish. Returns how many."""
    with transaction.atomic():
        # One conditional UPDATE: a step the executor claims at the same moment is either
        # claimed (running, left alone) or cancelled (its claim then finds it finished).
        cancelled = UnlinkStep.objects.filter(batch=batch, state=StepState.PENDING).update(
            state=StepState.CANCELLED,
            finished_at=timezone.now(),
            next_attempt_at=None,
            error=f"cancelled by {user}",
        )
        executor.settle_batch_state(batch.pk)
    log.info("batch %s: %s cancelled %d steps", batch.pk, user, cancelled)
    return cancelled


def retry_failed_steps(*, batch: UnlinkBatch, user, step_ids: Iterable[int] | None = None) -> int:
    """Put failed steps (all, or those of `step_ids`) back to pending, with the steps that were
    skipped because of them, and queue what may run. Attempts are kept, errors cleared. A step
    skipped because of another failure still not retried stays skipped. Returns how many steps
    were put back."""
    wanted = None if step_ids is None else set(step_ids)
    with transaction.atomic():
        # Locks the batch row (on PostgreSQL) so that two retries of it do not interleave.
        UnlinkBatch.objects.select_for_update().get(pk=batch.pk)
        states = dict(UnlinkStep.objects.filter(batch=batch).values_list("pk", "state"))
        retried = {
            pk
            for pk, state in states.items()
            if state == StepState.FAILED and (wanted is None or pk in wanted)
        }
        if not retried:
            return 0
        revived = _skipped_because_of(batch, retried, states)
        now_pending = {
            "state": StepState.PENDING,
            "error": "",
            "finished_at": None,
            "next_attempt_at": None,
            "claimed_by": "",
        }
        UnlinkStep.objects.filter(pk__in=retried, state=StepState.FAILED).update(**now_pending)
        UnlinkStep.objects.filter(pk__in=revived, state=StepState.SKIPPED).update(**now_pending)
        executor.settle_batch_state(batch.pk)
        _enqueue_after_commit(batch)
    log.info(
        "batch %s: %s retried %d failed, %d skipped", batch.pk, user, len(retried), len(revived)
    )
    return len(retried) + len(revived)


def _skipped_because_of(batch: UnlinkBatch, retried: set[int], states: dict) -> set[int]:
    """The skipped steps that may run again once `retried` are pending: followed down the
    dependency edges, a skipped step comes back when none of its dependencies stays failed,
    skipped or cancelled. (Steps the plan skipped have no edges: they never come back.)"""
    Dependency = UnlinkStep.depends_on.through
    dependents, dependencies = defaultdict(list), defaultdict(list)
    for step, needs in Dependency.objects.filter(from_unlinkstep__batch=batch).values_list(
        "from_unlinkstep_id", "to_unlinkstep_id"
    ):
        dependents[needs].append(step)
        dependencies[step].append(needs)

    states = {**states, **dict.fromkeys(retried, StepState.PENDING)}
    revived: set[int] = set()
    frontier = list(retried)
    while frontier:
        next_frontier = []
        for pk in frontier:
            for waiting in dependents[pk]:
                if states[waiting] == StepState.SKIPPED and all(
                    states[needed] in MAY_STILL_SUCCEED for needed in dependencies[waiting]
                ):
                    states[waiting] = StepState.PENDING
                    revived.add(waiting)
                    next_frontier.append(waiting)
        frontier = next_frontier
    return revived
