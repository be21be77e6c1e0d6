"""Runs the steps of confirmed batches. (Being written by the lead: signatures are stable.)"""


def enqueue_ready_steps(batch_id: int) -> int:
    """Queue a task for every pending step of the batch whose dependencies are all done.
    Call it inside `transaction.on_commit`. Returns how many were queued."""
    from .models import StepState, UnlinkStep
    from .tasks import run_step

    ready = (
        UnlinkStep.objects.filter(batch_id=batch_id, state=StepState.PENDING)
        .exclude(depends_on__state__in=[s for s in StepState.values if s != StepState.DONE])
        .values_list("pk", flat=True)
    )
    count = 0
    for step_id in ready.iterator():
        run_step.delay(step_id)
        count += 1
    return count


def execute_step(step_id: int) -> None:
    raise NotImplementedError("the executor is being written")
