"""Queueing a plan, cancelling and retrying steps, and the selectors that read batches."""

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection as db_connection
from django.http import Http404

from unlinker.mirror.models import LinkStatus
from unlinker.unlinking import executor, selectors, services
from unlinker.unlinking.models import StepKind as K
from unlinker.unlinking.models import StepState as S
from unlinker.unlinking.models import UnlinkBatch, UnlinkStep
from unlinker.unlinking.planning import PlanOptions

from .factories import store_firm

pytestmark = pytest.mark.django_db

SELECTION = {"connection_id": 0, "kind": "invoices", "ids": [1], "filter_query": None}


def planner_of(firm, invoices=None, **options):
    rows = selectors.PlanRows(
        invoices=firm.invoices if invoices is None else invoices,
        payments=[],
        invoice_payments=firm.payments,
    )
    return lambda busy: rows.plan(PlanOptions(**options), busy=busy)


def plan_of(firm, invoices=None, **options):
    return planner_of(firm, invoices, **options)({})


def queue(firm, user, **options):
    return services.create_batch(
        connection=firm.connection,
        user=user,
        selection=SELECTION,
        planner=planner_of(firm, **options),
    ).batch


def states(batch):
    return dict(batch.steps.values_list("position", "state"))


def set_state(batch, positions, state, **fields):
    batch.steps.filter(position__in=positions).update(state=state, **fields)


def test_create_batch_stores_the_plan_and_queues_after_commit(
    firm, make_user, enqueued, django_capture_on_commit_callbacks
):
    operator = make_user("olive", "operator")
    firm.invoices[2].link_status = LinkStatus.UNLINKED  # planned as skipped
    firm.payments[2].link_status = LinkStatus.UNLINKED
    with django_capture_on_commit_callbacks(execute=True):
        batch = queue(firm, operator, remove_payments="reverse")

    assert enqueued == [batch.pk]
    assert batch.created_by == operator
    assert batch.options == PlanOptions(remove_payments="reverse").to_dict()
    assert batch.options["remove_payments"] == "reverse" and not batch.options["xero_cleanup"]
    assert batch.selection == SELECTION
    assert batch.summary == "3 invoices · 7 steps · reverse payments"
    steps = list(batch.steps.order_by("position"))
    assert [(s.position, s.kind, s.state) for s in steps] == [
        (1, K.UNLINK_PAYMENT, S.PENDING),
        (2, K.UNLINK_INVOICE, S.PENDING),
        (3, K.REVERSE_PAYMENT, S.PENDING),
        (4, K.UNLINK_PAYMENT, S.PENDING),
        (5, K.UNLINK_INVOICE, S.PENDING),
        (6, K.REVERSE_PAYMENT, S.PENDING),
        (7, K.UNLINK_INVOICE, S.SKIPPED),
        (8, K.REVERSE_PAYMENT, S.PENDING),
    ]
    first_payment, first_invoice, first_reverse = steps[0], steps[1], steps[2]
    assert list(first_invoice.depends_on.all()) == [first_payment]
    assert list(first_reverse.depends_on.all()) == [first_payment]
    assert first_payment.payment == firm.payments[0] and first_payment.invoice is None
    assert first_payment.added_automatically
    assert first_payment.actionstep_id == firm.payments[0].actionstep_id
    assert first_payment.xero_id == firm.payments[0].xero_payment_id
    assert first_invoice.xero_id == firm.invoices[0].xero_invoice_id
    skipped = steps[6]
    assert skipped.error == "already unlinked" and skipped.finished_at is not None
    assert not skipped.depends_on.exists() and not skipped.dependents.exists()


def test_create_batch_is_a_bounded_number_of_queries(make_user, django_assert_max_num_queries):
    big = store_firm(invoices=1000, payments_each=1)
    planner = planner_of(big)
    assert len(planner({}).steps) == 2000
    operator = make_user("olive", "operator")
    # PostgreSQL takes each table in one INSERT; SQLite binds at most 999 parameters a statement,
    # so Django splits the rows into ~50 INSERTs. Either way, not a query per step.
    bound = 30 if db_connection.vendor == "postgresql" else 60
    with django_assert_max_num_queries(bound):
        batch = services.create_batch(
            connection=big.connection, user=operator, selection=SELECTION, planner=planner
        ).batch
    assert batch.steps.count() == 2000
    assert (
        UnlinkStep.depends_on.through.objects.filter(from_unlinkstep__batch=batch).count() == 1000
    )


def test_a_plan_with_nothing_to_run_is_not_queued(firm, make_user):
    for record in [*firm.invoices, *firm.payments]:
        record.link_status = LinkStatus.UNLINKED
    with pytest.raises(services.NothingToQueue):
        queue(firm, make_user("olive", "operator"))
    assert not UnlinkBatch.objects.exists()


@pytest.mark.parametrize(
    "role, options",
    [("viewer", {}), ("operator", {"xero_cleanup": True})],
)
def test_queueing_needs_the_role(firm, make_user, role, options):
    with pytest.raises(PermissionDenied):
        queue(firm, make_user("someone", role), **options)
    assert not UnlinkBatch.objects.exists()


def test_an_admin_may_queue_a_xero_clean_up(firm, make_user):
    batch = queue(firm, make_user("ada", "admin"), xero_cleanup=True)
    assert batch.steps.filter(kind=K.XERO_VOID_INVOICE).count() == 3


def test_records_of_another_connection_are_refused(firm, make_user):
    other = store_firm("Other Firm", invoices=1)
    with pytest.raises(ValueError, match="other connections"):
        services.create_batch(
            connection=firm.connection,
            user=make_user("olive", "operator"),
            selection=SELECTION,
            planner=planner_of(other),
        )
    assert not UnlinkBatch.objects.exists()


def test_cancel_leaves_running_and_finished_steps_alone(firm, make_user):
    operator = make_user("olive", "operator")
    batch = queue(firm, operator)
    set_state(batch, [1], S.DONE)
    set_state(batch, [2], S.RUNNING)

    assert services.cancel_pending_steps(batch=batch, user=operator) == 4
    assert states(batch) == {
        1: S.DONE,
        2: S.RUNNING,
        3: S.CANCELLED,
        4: S.CANCELLED,
        5: S.CANCELLED,
        6: S.CANCELLED,
    }
    assert batch.steps.get(position=3).error == "cancelled by olive"
    batch.refresh_from_db()
    assert batch.state == UnlinkBatch.State.QUEUED  # the running step still has to finish


def test_cancelling_the_last_waiting_steps_finishes_the_batch(firm, make_user):
    operator = make_user("olive", "operator")
    batch = queue(firm, operator)
    set_state(batch, [1, 2], S.DONE)
    services.cancel_pending_steps(batch=batch, user=operator)
    batch.refresh_from_db()
    assert batch.state == UnlinkBatch.State.CANCELLED and batch.finished_at is not None
    assert services.cancel_pending_steps(batch=batch, user=operator) == 0


def test_retry_puts_failed_steps_and_those_skipped_because_of_them_back(
    make_user, enqueued, django_capture_on_commit_callbacks
):
    firm = store_firm(invoices=2, payments_each=1)
    firm.invoices[1].link_status = LinkStatus.UNLINKED  # the plan skips its unlink
    firm.payments[1].link_status = LinkStatus.UNLINKED
    operator = make_user("olive", "operator")
    batch = queue(firm, operator, remove_payments="delete", after="revert")
    # 1 unlink p1, 2 unlink inv1, 3 delete p1, 4 revert inv1, 5 unlink inv2 (skipped by the
    # plan), 6 delete p2, 7 revert inv2
    assert batch.steps.get(position=5).state == S.SKIPPED
    set_state(batch, [1], S.FAILED, attempts=3, error="HTTP 500", finished_at="2025-01-01T00:00Z")
    set_state(batch, [2, 3, 4], S.SKIPPED, error="not run: step 1 did not succeed")
    set_state(batch, [6, 7], S.DONE)
    UnlinkBatch.objects.filter(pk=batch.pk).update(state=UnlinkBatch.State.FINISHED)

    with django_capture_on_commit_callbacks(execute=True):
        count = services.retry_failed_steps(batch=batch, user=operator)

    assert count == 4
    assert states(batch) == {
        1: S.PENDING,
        2: S.PENDING,
        3: S.PENDING,
        4: S.PENDING,
        5: S.SKIPPED,
        6: S.DONE,
        7: S.DONE,
    }
    retried = batch.steps.get(position=1)
    assert retried.attempts == 3 and retried.error == "" and retried.finished_at is None
    assert batch.steps.get(position=5).error == "already unlinked"
    batch.refresh_from_db()
    assert batch.state == UnlinkBatch.State.QUEUED and batch.finished_at is None
    assert enqueued == [batch.pk]


def test_a_step_blocked_by_another_failure_stays_skipped(make_user):
    firm = store_firm(invoices=1, payments_each=2)
    operator = make_user("olive", "operator")
    batch = queue(firm, operator)
    # 1 unlink p1, 2 unlink p2, 3 unlink invoice (after both)
    set_state(batch, [1, 2], S.FAILED)
    set_state(batch, [3], S.SKIPPED)
    first = batch.steps.get(position=1)

    assert services.retry_failed_steps(batch=batch, user=operator, step_ids=[first.pk]) == 1
    assert states(batch) == {1: S.PENDING, 2: S.FAILED, 3: S.SKIPPED}

    assert services.retry_failed_steps(batch=batch, user=operator) == 2
    assert states(batch) == {1: S.PENDING, 2: S.PENDING, 3: S.PENDING}
    assert services.retry_failed_steps(batch=batch, user=operator) == 0


def test_retry_ignores_steps_of_other_batches(firm, make_user):
    operator = make_user("olive", "operator")
    one, two = queue(firm, operator), queue(store_firm("Other Firm", invoices=1), operator)
    set_state(two, [1], S.FAILED)
    foreign = two.steps.get(position=1).pk
    assert services.retry_failed_steps(batch=one, user=operator, step_ids=[foreign]) == 0
    assert two.steps.get(position=1).state == S.FAILED


def test_progress_counts_every_state_in_one_query(firm, make_user, django_assert_num_queries):
    batch = queue(firm, make_user("olive", "operator"))
    set_state(batch, [1, 2], S.DONE)
    set_state(batch, [3], S.FAILED)
    set_state(batch, [4], S.RUNNING)
    with django_assert_num_queries(1):
        progress = selectors.progress(batch)
    assert progress.counts == {
        "pending": 2,
        "running": 1,
        "done": 2,
        "failed": 1,
        "skipped": 0,
        "cancelled": 0,
        "not_needed": 0,  # what the plan skipped, apart from what a failure skipped
    }
    assert (progress.total, progress.finished, progress.percent) == (6, 3, 50)
    assert not progress.is_finished

    annotated = selectors.with_step_counts(UnlinkBatch.objects.all()).get()
    with django_assert_num_queries(0):
        assert selectors.progress(annotated) == progress

    set_state(batch, [4, 5, 6], S.CANCELLED)
    assert selectors.progress(batch).is_finished


def test_batches_are_seen_only_by_those_who_see_their_connection(firm, make_user):
    member = make_user("mem", "operator")
    firm.connection.members.add(member)
    outsider = make_user("out", "operator")
    batch = queue(firm, member)

    assert list(selectors.batches_for(member)) == [batch]
    assert list(selectors.batches_for(outsider)) == []
    assert list(selectors.batches_for(make_user("ada", "admin"))) == [batch]
    with pytest.raises(Http404):
        selectors.batch_for(outsider, batch.pk)
    with pytest.raises(Http404):
        selectors.batch_for(member, "nope")


def test_describe_selection():
    describe = selectors.describe_selection
    assert describe({"kind": "invoices", "ids": [1, 2], "filter_query": None}) == (
        "2 invoices ticked in the list"
    )
    assert describe({"kind": "payments", "ids": [7], "filter_query": None}) == (
        "1 payment ticked in the list"
    )
    assert describe({"kind": "payments", "ids": None, "filter_query": "q=INV"}) == (
        "All payments matching q=INV"
    )
    assert describe({"kind": "invoices", "ids": None, "filter_query": ""}) == "All linked invoices"
    assert describe(
        {"source": "command line", "invoice_actionstep_ids": [5], "payment_actionstep_ids": []}
    ) == ("From the command line: Actionstep invoices 5")


def test_a_broker_outage_does_not_undo_or_fail_the_queueing(
    firm, make_user, monkeypatch, django_capture_on_commit_callbacks
):
    def broker_down(batch_id):
        raise ConnectionError("Redis is not answering")

    monkeypatch.setattr(executor, "enqueue_ready_steps", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        batch = queue(firm, make_user("olive", "operator"))
    # stored and pending: the executor's sweep queues it once the broker is back
    assert batch.steps.filter(state=S.PENDING).count() == 6
