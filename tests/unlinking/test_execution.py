"""Running batches against the sandbox: order, idempotency, failures, retries, clean-up in Xero.

Steps are executed here the way workers execute them (execute_step, in whatever order they are
ready), so that each test can control timing; tests/unlinking/test_worker_drills.py runs real
worker processes."""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from unlinker.connections.clients import xero_client_for
from unlinker.connections.models import Connection
from unlinker.mirror import services as mirror
from unlinker.mirror.models import LinkedInvoice
from unlinker.unlinking import executor
from unlinker.unlinking.models import StepKind, StepState, UnlinkBatch, UnlinkStep
from unlinker.unlinking.planning import PlanOptions
from unlinker.unlinking.services import retry_failed_steps

from .support import (
    assert_payments_before_invoices,
    assert_written_at_most_once,
    queue,
    run_all,
    synced,
    upstream_writes,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def firm(upstream):
    return upstream.build(
        [
            {"total": "1100.00", "payments": [{"amount": "500.00"}, {"amount": "600.00"}]},
            {"total": "220.00", "payments": [{"amount": "20.00"}]},
            {"total": "330.00"},
        ]
    )


def test_a_batch_unlinks_payments_before_their_invoices(upstream, connect, firm):
    connection = synced(connect, firm)
    since = upstream.last_request_id()
    batch = run_all(queue(connection, firm["bills"]), rng=random.Random(1))

    assert batch.state == UnlinkBatch.State.FINISHED
    assert set(UnlinkStep.objects.filter(batch=batch).values_list("state", flat=True)) == {
        StepState.DONE
    }
    writes = upstream_writes(upstream, since)
    assert_written_at_most_once(writes)
    assert len(writes) == 6  # 3 invoices, 3 payments, once each
    assert_payments_before_invoices(writes, firm)
    for bill in firm["bills"]:
        assert upstream.actionstep("xeroinvoicelinks", bill["link_id"])["linkStatus"] == "Unlinked"
    assert not LinkedInvoice.objects.filter(connection=connection, link_status="linked").exists()
    assert set(LinkedInvoice.objects.values_list("linked_payment_count", flat=True)) == {0}
    calls = upstream.requests(since=since, api="actionstep")
    # A payment: its link re-read, then the write. An invoice: its link and its payments' links
    # re-read (the payments-first rule, checked in Actionstep), then the write.
    assert len(calls) == 3 * 2 + 3 * 3


def test_every_step_run_twice_unlinks_each_record_once(upstream, connect, firm):
    connection = synced(connect, firm)
    since = upstream.last_request_id()
    batch = run_all(queue(connection, firm["bills"]))
    # as if every task were delivered again after its step finished, or after a crash that
    # lost the record of it: the steps run once more, each re-reading upstream first
    UnlinkStep.objects.filter(batch=batch).update(state=StepState.PENDING, claimed_by="")
    run_all(batch)
    writes = upstream_writes(upstream, since)
    assert_written_at_most_once(writes)
    assert len(writes) == 6
    assert UnlinkStep.objects.filter(batch=batch, result__contains="already").count() == 6


def test_a_duplicate_delivery_of_a_running_step_does_nothing(upstream, connect, firm):
    connection = synced(connect, firm)
    batch = queue(connection, firm["bills"][2:])
    step = UnlinkStep.objects.get(batch=batch)
    UnlinkStep.objects.filter(pk=step.pk).update(state=StepState.RUNNING, claimed_by="other-task")
    since = upstream.last_request_id()
    executor.execute_step(step.pk, task_id="duplicate-task")
    assert upstream.requests(since=since, api="actionstep") == []
    # its own redelivery (same task id, e.g. after the worker died) takes over at once
    executor.execute_step(step.pk, task_id="other-task")
    step.refresh_from_db()
    assert step.state == StepState.DONE


def test_a_failed_payment_blocks_its_invoice_only(upstream, connect, firm):
    connection = synced(connect, firm)
    failing = firm["bills"][0]["payments"][0]["link_id"]
    upstream.set_faults(
        "actionstep",
        rules=[
            {
                "method": "PUT",
                "path_contains": f"/xeropaymentlinks/{failing}",
                "status": 422,
                "times": 1,
            }
        ],
    )
    batch = run_all(queue(connection, firm["bills"]))
    steps = {
        (s.kind, s.payment_id or s.invoice_id): s for s in UnlinkStep.objects.filter(batch=batch)
    }
    failed = [s for s in steps.values() if s.state == StepState.FAILED]
    assert len(failed) == 1 and failed[0].kind == StepKind.UNLINK_PAYMENT
    assert failed[0].error  # the API's own message
    first_invoice = LinkedInvoice.objects.get(actionstep_id=firm["bills"][0]["id"])
    blocked = steps[(StepKind.UNLINK_INVOICE, first_invoice.pk)]
    assert blocked.state == StepState.SKIPPED and "did not succeed" in blocked.error
    others = [
        s for s in steps.values() if s.invoice_id != first_invoice.pk and s.payment_id is None
    ]
    assert others and all(s.state == StepState.DONE for s in others)
    assert batch.state == UnlinkBatch.State.PROBLEMS  # never a plain "finished"

    upstream.clear_faults()
    assert retry_failed_steps(batch=batch, user=None) == 2
    batch = run_all(batch)
    assert set(UnlinkStep.objects.filter(batch=batch).values_list("state", flat=True)) == {
        StepState.DONE
    }


def test_server_errors_are_retried_and_validation_errors_are_not(upstream, connect, firm):
    connection = synced(connect, firm)
    link = firm["bills"][2]["link_id"]
    upstream.set_faults(
        "actionstep",
        rules=[
            {
                "method": "PUT",
                "path_contains": f"/xeroinvoicelinks/{link}",
                "status": 503,
                "times": 2,
            }
        ],
    )
    batch = run_all(queue(connection, firm["bills"][2:]))
    step = UnlinkStep.objects.get(batch=batch)
    assert step.state == StepState.DONE and step.attempts == 3


def test_a_day_limit_pauses_the_batch_instead_of_spinning(upstream, connect, firm):
    connection = synced(connect, firm)
    upstream.set_limits("xero", per_day=0)
    batch = queue(connection, firm["bills"][2:], options=PlanOptions(xero_cleanup=True))
    run_all(batch)
    batch.refresh_from_db()
    xero_step = UnlinkStep.objects.get(batch=batch, kind__startswith="xero_")
    assert batch.state == UnlinkBatch.State.PAUSED and "daily" in batch.pause_reason
    assert xero_step.state == StepState.PENDING
    assert xero_step.next_attempt_at == batch.paused_until
    assert (batch.paused_until - batch.created_at).total_seconds() > 3600


@pytest.mark.parametrize(
    "bill, expected",
    [
        ({"total": "100.00", "xero_status": "DRAFT"}, "DELETED"),
        ({"total": "100.00", "xero_status": "SUBMITTED"}, "DELETED"),
        ({"total": "100.00"}, "VOIDED"),
        ({"total": "100.00", "payments": [{"amount": "100.00"}]}, "VOIDED"),
        ({"total": "100.00", "payments": [{"amount": "30.00"}, {"amount": "70.00"}]}, "VOIDED"),
    ],
    ids=["draft", "submitted", "authorised", "paid-one-payment", "paid-two-payments"],
)
def test_xero_clean_up_of_each_status(upstream, connect, bill, expected):
    built = upstream.build([bill])
    connection = synced(connect, built)
    mirror.refresh_xero_status(connection.pk, xero_client_for(connection))
    batch = run_all(queue(connection, built["bills"], options=PlanOptions(xero_cleanup=True)))
    assert set(UnlinkStep.objects.filter(batch=batch).values_list("state", flat=True)) == {
        StepState.DONE
    }
    made = built["bills"][0]
    assert upstream.xero_invoice(made["xero_invoice_id"])["Status"] == expected
    for payment in made["payments"]:
        assert upstream.xero_payment(payment["xero_payment_id"])["Status"] == "DELETED"

    since = upstream.last_request_id()
    UnlinkStep.objects.filter(batch=batch).update(state=StepState.PENDING)
    run_all(batch)
    assert upstream.requests(since=since, api="xero", method="POST") == []  # nothing twice


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    firm_shape=st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=5),
    chosen=st.data(),
    remove=st.sampled_from(["none", "delete", "reverse"]),
    after=st.sampled_from(["none", "revert", "delete"]),
    fault_rate=st.sampled_from([0.0, 0.15, 0.3]),
    order_seed=st.integers(min_value=0, max_value=10**6),
)
def test_ordering_invariant_under_random_firms_options_and_faults(
    upstream, connect, firm_shape, chosen, remove, after, fault_rate, order_seed
):
    upstream.reset()
    UnlinkBatch.objects.all().delete()
    Connection.objects.all().delete()
    built = upstream.build(
        [{"total": "900.00", "payments": [{"amount": "100.00"}] * n} for n in firm_shape]
    )
    connection = synced(connect, built)
    bills = chosen.draw(
        st.lists(st.sampled_from(built["bills"]), min_size=1, unique_by=lambda b: b["id"])
    )
    upstream.set_faults(
        "actionstep", rates={"500": fault_rate / 2, "503": fault_rate / 2}, seed=order_seed
    )
    since = upstream.last_request_id()
    batch = run_all(
        queue(connection, bills, options=PlanOptions(remove_payments=remove, after=after)),
        rng=random.Random(order_seed),
    )
    upstream.clear_faults()

    writes = upstream_writes(upstream, since)
    assert_written_at_most_once(writes)
    assert_payments_before_invoices(writes, built)
    for step in UnlinkStep.objects.filter(batch=batch):
        assert step.state in (StepState.DONE, StepState.FAILED, StepState.SKIPPED), step
        if step.state != StepState.DONE:
            assert step.error, step
    assert batch.state == UnlinkBatch.State.FINISHED


def test_xero_invoices_are_cleaned_up_many_to_a_call_each_with_its_own_outcome(upstream, connect):
    built = upstream.build(
        [{"total": "100.00"}, {"total": "200.00", "amount_credited": "50.00"}, {"total": "300.00"}]
    )
    connection = synced(connect, built)
    mirror.refresh_xero_status(connection.pk, xero_client_for(connection))
    # as if the credit was allocated after the mirror last read Xero: the plan would skip it
    LinkedInvoice.objects.update(xero_credits=[], xero_amount_credited=None)
    since = upstream.last_request_id()
    batch = run_all(queue(connection, built["bills"], options=PlanOptions(xero_cleanup=True)))

    posts = upstream.requests(since=since, api="xero", method="POST")
    assert len(posts) == 1 and posts[0]["path"].endswith("/Invoices")  # one call for the two
    writes = upstream_writes(upstream, since)
    assert_written_at_most_once(writes)
    # each invoice unlinked, then voided; the credited one's void is refused by Unlinker, which
    # re-read it with the others: it is never sent
    assert sorted(w.kind for w in writes) == (
        ["note on invoice"] * 2 + ["unlink invoice"] * 3 + ["void"] * 2
    )
    steps = {
        s.invoice.actionstep_id: s
        for s in UnlinkStep.objects.filter(batch=batch, kind__startswith="xero_")
    }
    credited = steps[built["bills"][1]["id"]]
    assert credited.state == StepState.FAILED
    assert "credit notes, prepayments or overpayments allocated" in credited.error
    for bill in (built["bills"][0], built["bills"][2]):
        assert steps[bill["id"]].state == StepState.DONE
        assert upstream.xero_invoice(bill["xero_invoice_id"])["Status"] == "VOIDED"
    assert upstream.xero_invoice(built["bills"][1]["xero_invoice_id"])["Status"] == "AUTHORISED"


def test_a_step_taken_over_by_the_sweep_is_never_written_by_its_first_worker(
    upstream, connect, firm
):
    """The sweep judged a worker dead and another task claimed its step: if the first worker
    was only slow, it must neither send its write nor record anything on the step."""
    from unlinker.unlinking.actions import ACTIONS
    from unlinker.unlinking.audit import AttemptAudit

    connection = synced(connect, firm)
    batch = queue(connection, firm["bills"][2:])  # one step: unlink the third invoice
    step_id = UnlinkStep.objects.get(batch=batch).pk
    slow = executor._claim(step_id, "task-slow")
    UnlinkStep.objects.filter(pk=step_id).update(state=StepState.PENDING, claimed_by="")
    taken = executor._claim(step_id, "task-taking-over")
    assert taken.attempts == slow.attempts + 1

    since = upstream.last_request_id()
    clients = executor._ConnectionClients(connection, AttemptAudit([slow.attempt]))
    with pytest.raises(executor.ClaimLost):
        ACTIONS[slow.kind](slow, clients)
    assert upstream.requests(since=since, method="PUT") == []  # the write never went out
    executor._settle(slow, executor.ClaimLost("taken over"))
    step = UnlinkStep.objects.get(pk=step_id)
    assert step.state == StepState.RUNNING and step.attempts == taken.attempts  # untouched
    assert slow.attempt.requests.filter(is_write=True).count() == 0

    executor.execute_step(step_id, task_id="task-taking-over")  # the new holder runs it
    step.refresh_from_db()
    assert step.state == StepState.DONE
    assert len(upstream.requests(since=since, method="PUT")) == 1
