"""Changes to unlink batches: queueing a confirmed plan, cancelling what has not started,
retrying what failed. The executor runs the steps; it is only ever asked to, after commit."""

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from unlinker.accounts.roles import CLEANUP_XERO, QUEUE_UNLINK
from unlinker.connections.models import Connection
from unlinker.mirror.models import LinkedPayment

from . import executor, targets
from .models import StepState, UnlinkBatch, UnlinkStep
from .planning import Plan

log = logging.getLogger(__name__)

# Rows per INSERT: one statement per chunk, never one per step. (SQLite lowers it further to
# stay under its 999 bound parameters a statement.)
BULK_CHUNK = 2000


MAY_STILL_SUCCEED = {StepState.PENDING, StepState.RUNNING, StepState.DONE}

# What makes a plan: given the records unfinished batches hold (record key -> batch id), the
# plan of the selection now. Called again when a racing batch took some records first.
Planner = Callable[[Mapping[str, int]], Plan]


class NothingToQueue(ValueError):
    """Every step of the plan is skipped: a batch would do nothing. `holders` names the
    unfinished batches that hold records of the plan, when they are why."""

    def __init__(self, message: str, holders: Iterable[int] = ()):
        super().__init__(message)
        self.holders = sorted(set(holders))


class PlanChanged(ValueError):
    """The plan is not the one the user confirmed (a sync ran, another batch went first, the
    options changed): nothing was queued. `plan` is the plan as it is now."""

    def __init__(self, plan: Plan):
        super().__init__("The plan changed since it was shown")
        self.plan = plan


@dataclass(frozen=True)
class Queued:
    batch: UnlinkBatch
    created: bool  # False: this confirmation had queued the batch already
    # Records that a batch confirmed at the same moment took first: batch id -> how many.
    taken_by_others: dict[int, int] = field(default_factory=dict)


def create_batch(
    *,
    connection: Connection,
    user,
    selection: dict,
    planner: Planner,
    expected_digest: str | None = None,
    confirm_key: str | None = None,
) -> Queued:
    """Store a confirmed plan as a batch, holding its records, and queue its first steps once
    committed. One confirmation makes one batch, and a record is written by one unfinished batch
    at a time; the database enforces both (UnlinkBatch.confirm_key, BatchTarget).

    `confirm_key` is the confirmation's one-time key: a second submission of it, at the same
    moment or later, creates nothing and answers the first batch. `expected_digest` is the
    digest of the plan the user was shown: a plan that differs raises PlanChanged. Records a
    racing batch takes first are skipped ("in batch N, still running"), and what depends on
    them with them.

    `selection` describes what was selected, for the record (see selectors.describe_selection).
    `user` is None only for the command line run without --user, which the shell's access
    already authorises.
    """
    with transaction.atomic():
        if confirm_key and (earlier := _confirmed_by(confirm_key)):
            return Queued(earlier, created=False)
        # Locked: a disconnect at this moment waits for this batch (and then cancels it), or
        # this batch finds the connection gone.
        locked = Connection.objects.select_for_update().only("disconnected_at")
        locked = locked.get(pk=connection.pk)
        if locked.disconnected_at:
            raise NothingToQueue(f"{connection} was disconnected: nothing can be queued on it.")
        plan = planner(targets.holders(connection.pk))
        _authorise(user, plan)
        if expected_digest is not None and plan.digest() != expected_digest:
            raise PlanChanged(plan)
        _check_queueable(connection, plan)
        try:
            with transaction.atomic():  # a savepoint: the same key confirmed at this moment
                batch = UnlinkBatch.objects.create(
                    connection=connection,
                    created_by=user,
                    options=plan.options.to_dict(),
                    selection=selection,
                    summary=plan.summary()[:255],
                    confirm_key=confirm_key or None,
                )
        except IntegrityError:
            earlier = _confirmed_by(confirm_key) if confirm_key else None
            if earlier is None:
                raise
            return Queued(earlier, created=False)

        wanted = plan.record_keys()
        held = targets.take(batch, wanted)
        taken = {}
        if held != wanted:
            # A batch confirmed at the same moment holds some of them now: plan without them.
            taken = targets.holders(connection.pk, wanted - held)
            plan = planner({**targets.holders(connection.pk), **taken})
            _check_queueable(connection, plan)
            if not plan.record_keys() <= held:
                raise RuntimeError("the planner ignored the records other batches hold")
            targets.give_back(batch.pk, held - plan.record_keys())
            UnlinkBatch.objects.filter(pk=batch.pk).update(summary=plan.summary()[:255])
        _store_steps(batch, plan)
        _enqueue_after_commit(batch)
    log.info("batch %s queued by %s: %s", batch.pk, user or "the command line", batch.summary)
    return Queued(batch, created=True, taken_by_others=dict(Counter(taken.values())))


def _confirmed_by(confirm_key: str) -> UnlinkBatch | None:
    return UnlinkBatch.objects.filter(confirm_key=confirm_key).first()


def _check_queueable(connection: Connection, plan: Plan) -> None:
    if not plan.runnable_count:
        holders = [step.busy_batch for step in plan.steps if step.busy_batch]
        if holders:
            raise NothingToQueue(
                "Nothing to queue: every record of the plan is held by "
                + ", ".join(f"batch {pk}" for pk in sorted(set(holders)))
                + ", still running.",
                holders,
            )
        raise NothingToQueue("Nothing to queue: every step of the plan is skipped.")
    foreign = {step.target.connection_id for step in plan.steps} - {connection.pk}
    if foreign:
        raise ValueError(f"The plan has records of other connections ({sorted(foreign)})")


def _store_steps(batch: UnlinkBatch, plan: Plan) -> None:
    now = timezone.now()
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
        target_key=planned.record_key,
        actionstep_id=target.actionstep_id,
        xero_id=planned.xero_id
        or (target.xero_payment_id if is_payment else target.xero_invoice_id),
        added_automatically=planned.added_automatically,
        state=StepState.SKIPPED if planned.skipped else StepState.PENDING,
        skipped_by_plan=planned.skipped,
        error=planned.skip_reason,
        finished_at=now if planned.skipped else None,
    )


def cancel_pending_steps(*, batch: UnlinkBatch, user, reason: str = "") -> int:
    """Cancel every step not started yet; running ones finish. Returns how many."""
    with transaction.atomic():
        # One conditional UPDATE: a step the executor claims at the same moment is either
        # claimed (running, left alone) or cancelled (its claim then finds it finished).
        cancelled = UnlinkStep.objects.filter(batch=batch, state=StepState.PENDING).update(
            state=StepState.CANCELLED,
            finished_at=timezone.now(),
            next_attempt_at=None,
            error=reason or f"cancelled by {user}",
        )
        targets.release_finished(batch.pk)
        executor.settle_batch_state(batch.pk)
    log.info("batch %s: %s cancelled %d steps", batch.pk, user, cancelled)
    return cancelled


def cancel_batches_of(*, connection: Connection, user) -> tuple[int, list[int]]:
    """When a connection is disconnected: cancel what its unfinished batches have not started.
    Returns how many steps were cancelled, and in which batches."""
    unfinished = UnlinkBatch.objects.filter(connection=connection).exclude(
        state__in=UnlinkBatch.SETTLED_STATES
    )
    count, batches = 0, []
    for batch in unfinished:
        cancelled = cancel_pending_steps(
            batch=batch, user=user, reason=f"cancelled: {connection} was disconnected by {user}"
        )
        count += cancelled
        batches.append(batch.pk)
    return count, batches


def retry_failed_steps(*, batch: UnlinkBatch, user, step_ids: Iterable[int] | None = None) -> int:
    """Put failed steps (all, or those of `step_ids`) back to pending, with the steps that were
    skipped because of them, and queue what may run. Returns how many steps were put back."""
    return _queue_again(batch, user, StepState.FAILED, step_ids)


def resume_cancelled_steps(
    *, batch: UnlinkBatch, user, step_ids: Iterable[int] | None = None
) -> int:
    """Put cancelled steps (all, or those of `step_ids`) back to pending and queue what may run.
    Returns how many steps were put back."""
    return _queue_again(batch, user, StepState.CANCELLED, step_ids)


def _queue_again(batch: UnlinkBatch, user, state: str, step_ids) -> int:
    """Failed or cancelled steps back to pending. Attempts and their record are kept, errors
    cleared. A step skipped because of another failure still not retried stays skipped. The
    batch takes back the records of the steps it queues again; a record another unfinished
    batch holds by now keeps its step where it is, with the reason."""
    wanted = None if step_ids is None else set(step_ids)
    with transaction.atomic():
        # Locks the batch row (on PostgreSQL) so that two retries of it do not interleave.
        UnlinkBatch.objects.select_for_update().get(pk=batch.pk)
        rows = {
            pk: (step_state, key)
            for pk, step_state, key in UnlinkStep.objects.filter(batch=batch).values_list(
                "pk", "state", "target_key"
            )
        }
        states = {pk: step_state for pk, (step_state, _) in rows.items()}
        again = {
            pk
            for pk, step_state in states.items()
            if step_state == state and (wanted is None or pk in wanted)
        }
        if not again:
            return 0
        revived = _skipped_because_of(batch, again, states) if state == StepState.FAILED else set()
        held = targets.take(batch, {rows[pk][1] for pk in again | revived})
        kept_back = {pk for pk in again | revived if rows[pk][1] not in held}
        if kept_back:
            holders = targets.holders(batch.connection_id, {rows[pk][1] for pk in kept_back})
            for pk in kept_back & again:
                holder = holders.get(rows[pk][1])
                where = f"batch {holder}" if holder else "another batch"
                UnlinkStep.objects.filter(pk=pk).update(
                    error=f"not queued again: its record is in {where}, still running"
                )
            again -= kept_back
            revived = _skipped_because_of(batch, again, states) if again else set()
            revived -= kept_back
        now_pending = {
            "state": StepState.PENDING,
            "error": "",
            "finished_at": None,
            "next_attempt_at": None,
            "claimed_by": "",
        }
        UnlinkStep.objects.filter(pk__in=again, state=state).update(**now_pending)
        UnlinkStep.objects.filter(pk__in=revived, state=StepState.SKIPPED).update(**now_pending)
        targets.release_finished(batch.pk)
        executor.settle_batch_state(batch.pk)
        _enqueue_after_commit(batch)
    log.info(
        "batch %s: %s queued %d %s steps again, and %d skipped",
        batch.pk,
        user,
        len(again),
        state,
        len(revived),
    )
    return len(again) + len(revived)


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
