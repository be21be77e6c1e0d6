"""Running batches in tests: sync a sandbox firm, queue a plan, execute the steps as workers
would, and read what the sandbox was asked to do."""

from unlinker.mirror import services as mirror
from unlinker.unlinking import executor
from unlinker.unlinking.models import StepState, UnlinkBatch, UnlinkStep
from unlinker.unlinking.planning import PlanOptions
from unlinker.unlinking.selectors import rows_for_actionstep_ids
from unlinker.unlinking.services import create_batch


def synced(connect, built) -> object:
    connection = connect(built["firm"])
    mirror.sync_now(mirror.new_sync_run(connection, full=True))
    return connection


def queue(connection, bills, options=None, payment_ids=()):
    options = options or PlanOptions()
    rows = rows_for_actionstep_ids(
        connection, invoice_ids=[b["id"] for b in bills], payment_ids=list(payment_ids)
    )
    return create_batch(
        connection=connection, user=None, selection={"source": "test"}, plan=rows.plan(options)
    )


def run_all(batch, rng=None, task_id=None):
    """Execute every ready step, in a random order when `rng` is given, until none is left;
    a retry's wait is treated as elapsed."""
    for _ in range(500):
        if UnlinkBatch.objects.filter(pk=batch.pk, state=UnlinkBatch.State.PAUSED).exists():
            break  # parked in the database until the sweep resumes it
        ready = list(executor.ready_steps(batch.pk).values_list("pk", flat=True))
        if not ready:
            waiting = UnlinkStep.objects.filter(batch=batch, state=StepState.PENDING)
            if not waiting.exclude(next_attempt_at=None).update(next_attempt_at=None):
                break
            continue
        if rng:
            rng.shuffle(ready)
        for step_id in ready:
            executor.execute_step(step_id, task_id=task_id or f"task-{step_id}")
    batch.refresh_from_db()
    return batch


def link_writes(sandbox, since):
    """(resource, id) of every successful unlink the sandbox received, in order."""
    writes = []
    for call in sandbox.requests(since=since, api="actionstep", method="PUT"):
        if call["status"] == 200 and "link" in call["path"]:
            resource, record = call["path"].rstrip("/").split("/")[-2:]
            writes.append((resource, int(record)))
    return writes


def assert_payments_before_invoices(writes, built):
    position = {write: n for n, write in enumerate(writes)}
    for bill in built["bills"]:
        invoice_write = position.get(("xeroinvoicelinks", bill["link_id"]))
        if invoice_write is None:
            continue
        for payment in bill["payments"]:
            payment_write = position.get(("xeropaymentlinks", payment["link_id"]))
            assert payment_write is not None and payment_write < invoice_write, (bill, writes)
