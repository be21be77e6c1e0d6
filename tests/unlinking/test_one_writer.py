"""One plan, one batch; one writer per record; the rules kept by Unlinker alone.

Random firms; two or three overlapping plans confirmed at the same moment from threads (each
with its own database connection, as two web workers would be); then every ready step of every
batch executed by a pool of threads while the sandbox fails calls at random — before acting, and
after acting with the answer lost. The sandbox is lenient (it accepts what it would refuse), so
that only Unlinker's own checks can keep the rules. The sandbox's request log is then read:

- every write that acted, of every kind, counted per target: at most one;
- no invoice link unlinked while a link of one of its payments was still live;
- no Xero invoice voided or deleted while a payment was still live on it.
"""

import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection as db
from django.db import connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unlinker.connections.models import Connection
from unlinker.mirror.models import LinkedInvoice
from unlinker.unlinking import executor, services
from unlinker.unlinking.models import BatchTarget, StepState, UnlinkBatch, UnlinkStep
from unlinker.unlinking.planning import PlanOptions
from unlinker.unlinking.selectors import PlanRows

from .support import synced

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

REST = "/actionstep/api/rest"
XERO = "/xero/api/api.xro/2.0"
LENIENT = (
    "payments_before_invoice",
    "unlinked_before_removal",
    "editable_bill",
    "void_with_allocations",
    "lock_dates",
)


def effective_writes(upstream, since) -> list[dict]:
    """Every write that acted upstream, in the order received: the sandbox logs `acted` for a
    write its handler carried out, whether or not the answer then reached the client (a replay
    of an idempotency key never acts)."""
    return [call for call in upstream.requests(since=since, limit=10**6) if call["acted"]]


def targets_of(call) -> list[str]:
    """The records a write acted on: its path, or for Xero's many-to-one POST /Invoices every
    invoice of its body."""
    body = call["body"] if isinstance(call["body"], dict) else {}
    if call["api"] == "xero" and call["path"].endswith("/Invoices"):
        return [f"xero-invoice:{i['InvoiceID'].lower()}" for i in body.get("Invoices", [])]
    return [call["path"].lower()]


def confirm_together(connection, plans) -> list:
    """Each planner confirmed from its own thread, all released at once."""
    barrier = threading.Barrier(len(plans))
    results = [None] * len(plans)

    def confirm(n, planner):
        try:
            barrier.wait()
            results[n] = services.create_batch(
                connection=connection,
                user=None,
                selection={"source": "test", "plan": n},
                planner=planner,
                confirm_key=f"property-{connection.pk}-{n}",
            )
        except services.NothingToQueue as exc:
            results[n] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=confirm, args=item) for item in enumerate(plans)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def run_everything(batches, seed: int) -> None:
    """Every ready step of every batch, by three threads, until none is left."""
    rng = random.Random(seed)
    ids = [batch.pk for batch in batches]

    def run(step_id):
        try:
            executor.execute_step(step_id, task_id=f"t-{step_id}-{rng.random()}")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=3) as pool:
        for _ in range(200):
            ready = list(
                executor.ready_steps().filter(batch_id__in=ids).values_list("pk", flat=True)
            )
            if not ready:
                waiting = UnlinkStep.objects.filter(batch_id__in=ids, state=StepState.PENDING)
                if not waiting.exclude(next_attempt_at=None).update(next_attempt_at=None):
                    break
                continue
            rng.shuffle(ready)
            list(pool.map(run, ready))


firms = st.lists(st.integers(min_value=0, max_value=2), min_size=2, max_size=5)
option_sets = st.fixed_dictionaries(
    {
        "remove_payments": st.sampled_from(["none", "delete", "reverse"]),
        "after": st.sampled_from(["none", "revert", "delete"]),
        "xero_cleanup": st.booleans(),
    }
)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    shape=firms,
    data=st.data(),
    plans=st.integers(min_value=2, max_value=3),
    fault_rate=st.sampled_from([0.0, 0.1, 0.2]),
    seed=st.integers(min_value=0, max_value=10**6),
)
def test_overlapping_plans_confirmed_together_write_each_record_once(
    upstream, connect, shape, data, plans, fault_rate, seed
):
    assert db.vendor == "postgresql"
    upstream.reset()
    UnlinkBatch.objects.all().delete()  # each example starts from nothing (a shrink replays)
    Connection.objects.all().delete()
    upstream.set_lenient(*LENIENT)
    built = upstream.build(
        [{"total": "300.00", "payments": [{"amount": "100.00"}] * n} for n in shape],
        name=f"Property firm {seed}",
    )
    connection = synced(connect, built)
    invoices = list(LinkedInvoice.objects.filter(connection=connection).order_by("pk"))
    planners = []
    for _ in range(plans):
        chosen = data.draw(
            st.lists(st.sampled_from(invoices), min_size=1, unique_by=lambda i: i.pk)
        )
        options = PlanOptions(**data.draw(option_sets))
        rows = PlanRows(chosen, [], [p for i in chosen for p in i.payments.all()])
        planners.append(lambda busy, rows=rows, options=options: rows.plan(options, busy=busy))

    since = upstream.last_request_id()
    results = confirm_together(connection, planners)
    batches = [r.batch for r in results if isinstance(r, services.Queued)]
    assert batches, results
    # One writer per record, in the database itself: no record held by two unfinished batches.
    held = BatchTarget.objects.filter(connection=connection, released_at__isnull=True)
    assert held.values("record_key").distinct().count() == held.count()
    runnable = Counter(
        key
        for key in UnlinkStep.objects.filter(batch__in=batches)
        .exclude(state=StepState.SKIPPED)
        .values_list("target_key", flat=True)
        .distinct()
    )
    by_batch = {
        key: set(
            UnlinkStep.objects.filter(batch__in=batches, target_key=key)
            .exclude(state=StepState.SKIPPED)
            .values_list("batch", flat=True)
        )
        for key in runnable
    }
    assert all(len(owners) == 1 for owners in by_batch.values()), by_batch

    kinds = {"500": fault_rate / 3, "503": fault_rate / 3, "drop": fault_rate / 3}
    for api in ("actionstep", "xero"):
        upstream.set_faults(
            api,
            rates=kinds,
            rules=[{"status": "drop", "method": "PUT", "after": True, "times": 2}],
            seed=seed,
        )
    run_everything(batches, seed)
    upstream.clear_faults()

    writes = effective_writes(upstream, since)
    wrote = UnlinkStep.objects.filter(batch__in=batches, state=StepState.DONE).exclude(
        result__contains="already"
    )
    assert writes or not wrote.exists()  # the log shows the writes the steps say they made
    counted = Counter(target for call in writes for target in targets_of(call))
    assert all(n == 1 for n in counted.values()), [t for t, n in counted.items() if n > 1]

    # The order of the writes that acted keeps both rules.
    order = {}
    for position, call in enumerate(writes):
        for target in targets_of(call):
            order.setdefault(target, position)
    for bill in built["bills"]:
        invoice_unlink = order.get(f"{REST}/xeroinvoicelinks/{bill['link_id']}")
        if invoice_unlink is not None:
            for payment in bill["payments"]:
                if payment.get("link_status", "Linked") != "Linked":
                    continue
                unlinked = order.get(f"{REST}/xeropaymentlinks/{payment['link_id']}")
                assert unlinked is not None and unlinked < invoice_unlink, (bill, writes)
        voided = order.get(f"xero-invoice:{bill['xero_invoice_id'].lower()}")
        if voided is not None:
            for payment in bill["payments"]:
                deleted = order.get(f"{XERO}/payments/{payment['xero_payment_id'].lower()}")
                assert deleted is not None and deleted < voided, (bill, writes)

    for batch in UnlinkBatch.objects.filter(pk__in=[b.pk for b in batches]):
        assert batch.is_settled, batch.state
        for step in batch.steps.all():
            assert step.state != StepState.DONE or step.result, step
            assert step.state == StepState.DONE or step.error, step
