"""Running batches in tests: sync a sandbox firm, queue a plan, execute the steps as workers
would, and read what the sandbox was asked to do."""

from collections import Counter
from dataclasses import dataclass

from unlinker.integrations import actionstep_resources
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
        connection=connection,
        user=None,
        selection={"source": "test"},
        planner=lambda busy: rows.plan(options, busy=busy),
    ).batch


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


@dataclass(frozen=True)
class Write:
    """One record written upstream by one request: `target` names the record ("actionstep
    billpayments/7", "xero Invoices/<id>"), `kind` what was done to it."""

    api: str
    resource: str
    record: str
    kind: str

    @property
    def target(self) -> str:
        return f"{self.api} {self.resource}/{self.record}"


# (API, method, resource) -> kind, for the writes Unlinker makes; any other write is counted too,
# as "<method> <resource>".
KINDS = {
    ("actionstep", "PUT", actionstep_resources.XERO_INVOICE_LINKS): "unlink invoice",
    ("actionstep", "PUT", actionstep_resources.XERO_PAYMENT_LINKS): "unlink payment",
    ("actionstep", "PUT", actionstep_resources.BILL_PAYMENTS): "reverse payment",
    ("actionstep", "DELETE", actionstep_resources.BILL_PAYMENTS): "delete payment",
    ("actionstep", "PUT", actionstep_resources.BILLS): "revert invoice to draft",
    ("actionstep", "DELETE", actionstep_resources.BILLS): "delete invoice",
    ("xero", "POST", "Payments"): "delete Xero payment",
    ("xero", "PUT", "Invoices"): "note on invoice",
    ("xero", "PUT", "Payments"): "note on payment",
    ("xero", "DELETE", "CreditNotes"): "remove credit note allocation",
    ("xero", "DELETE", "Prepayments"): "remove prepayment allocation",
    ("xero", "DELETE", "Overpayments"): "remove overpayment allocation",
}
NOTES = {"note on invoice", "note on payment"}
REST_ROOTS = {"actionstep": "/rest/", "xero": "/api.xro/2.0/"}


def upstream_writes(sandbox, since) -> list[Write]:
    """Every record written upstream since `since`, in order, one entry per record per request
    (a POST /Invoices that voids three invoices is three): a list, never a set, so that a record
    written twice shows twice.

    A request counts when the API acted on it and said so: its handler answered 2xx, with no
    injected fault, and it was not an idempotent replay of an earlier request. (A write whose
    answer an injected `after` fault replaced is not seen: the log does not say it acted.)"""
    writes = []
    for call in sandbox.requests(since=since, limit=10**7):
        root = REST_ROOTS.get(call["api"])
        if call["method"] == "GET" or root is None or root not in call["path"]:
            continue  # reads, and the OAuth endpoints
        if call["fault"] or call["replay"] or not 200 <= (call["status"] or 0) < 300:
            continue
        parts = call["path"].split(root, 1)[1].strip("/").split("/")
        resource, record = parts[0], "/".join(parts[1:])
        if call["api"] == "xero" and resource == "Invoices" and not record:
            for element in (call["body"] or {}).get("Invoices") or ():
                kind = {"VOIDED": "void", "DELETED": "delete"}.get(element.get("Status"), "change")
                writes.append(Write("xero", resource, element["InvoiceID"].lower(), kind))
            continue
        kind = KINDS.get((call["api"], call["method"], resource), f"{call['method']} {resource}")
        writes.append(Write(call["api"], resource, record.lower(), kind))
    return writes


def without_notes(writes: list[Write]) -> list[Write]:
    """The changes themselves, without the history notes that go with them."""
    return [write for write in writes if write.kind not in NOTES]


def assert_written_at_most_once(writes: list[Write]) -> None:
    counts = Counter(write.target for write in writes)
    twice = {
        target: [w.kind for w in writes if w.target == target]
        for target, count in counts.items()
        if count > 1
    }
    assert not twice, f"records written more than once: {twice}"


def assert_payments_before_invoices(writes: list[Write], built) -> None:
    """Every invoice unlinked after each of its payments (by the first write of each)."""
    position = {}
    for n, write in enumerate(writes):
        position.setdefault((write.resource, write.record), n)
    for bill in built["bills"]:
        invoice_write = position.get(
            (actionstep_resources.XERO_INVOICE_LINKS, str(bill["link_id"]))
        )
        if invoice_write is None:
            continue
        for payment in bill["payments"]:
            payment_write = position.get(
                (actionstep_resources.XERO_PAYMENT_LINKS, str(payment["link_id"]))
            )
            assert payment_write is not None and payment_write < invoice_write, (bill, writes)
