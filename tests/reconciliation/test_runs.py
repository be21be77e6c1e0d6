"""Running the report: `manage.py reconcile`, the Celery tasks, one run at a time per connection,
and what a failure leaves behind."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.mirror import factories
from tests.unlinking.support import synced
from unlinker.connections.clients import xero_client_for
from unlinker.reconciliation import services, tasks
from unlinker.reconciliation.models import ReconciliationRun

pytestmark = pytest.mark.django_db
State = ReconciliationRun.State


@pytest.fixture
def firm(upstream, connect):
    built = upstream.build(
        [
            {"total": "220.00", "link": "Unlinked"},
            {"total": "330.00", "xero_status": "VOIDED"},
            {"total": "440.00"},
        ]
    )
    return synced(connect, built), built


def reconcile_command(*args) -> str:
    out = StringIO()
    call_command("reconcile", *args, stdout=out)
    return out.getvalue()


def test_the_command_runs_the_report_and_prints_the_counts_and_changes(upstream, firm):
    connection, built = firm
    out = reconcile_command("--connection", str(connection.pk))
    first = ReconciliationRun.objects.get()
    assert first.state == State.DONE
    assert f"Reconciliation {first.pk} of Test Firm: 2 findings, " in out
    assert "  Orphan in Xero: 1\n" in out
    assert "  Duplicate in Xero: 0\n" in out
    assert "  Broken link: 1\n" in out
    assert "  Amounts or contact differ: 0\n" in out
    assert "The first run of this connection: nothing to compare with yet." in out

    xero_client_for(connection).update_invoice_statuses(
        [(built["bills"][0]["xero_invoice_id"], "VOIDED")], idempotency_key="test-void"
    )
    out = reconcile_command("--connection", connection.name)
    assert "  Orphan in Xero: 0\n" in out
    assert f"Since run {first.pk}: 0 new, 1 resolved." in out


@pytest.mark.parametrize("name", ["Nobody & Co", "999999"])
def test_the_command_refuses_an_unknown_connection(db, name):
    with pytest.raises(CommandError, match="is not a live connection"):
        reconcile_command("--connection", name)
    assert not ReconciliationRun.objects.exists()


def test_the_command_refuses_while_a_run_is_queued(firm):
    connection, _ = firm
    queued = ReconciliationRun.objects.create(connection=connection)
    with pytest.raises(CommandError, match=f"Reconciliation {queued.pk} of Test Firm is already"):
        reconcile_command("--connection", str(connection.pk))


def test_the_command_reports_a_connection_without_xero(db):
    connection = factories.connection("Half Paired")
    with pytest.raises(CommandError, match="not paired with a Xero tenant"):
        reconcile_command("--connection", str(connection.pk))


def test_the_task_runs_a_queued_run_once(upstream, firm):
    connection, _ = firm
    run = services.start_reconciliation(connection=connection)
    tasks.reconcile(run.pk)
    run.refresh_from_db()
    assert run.state == State.DONE and run.counts["orphan"] == 1 and run.reads_made > 0

    since = upstream.last_request_id()
    tasks.reconcile(run.pk)  # delivered again
    assert upstream.requests(since=since, api="xero") == []


def test_a_xero_error_fails_the_run_with_its_message(upstream, firm):
    connection, _ = firm
    upstream.set_faults("xero", rules=[{"path_contains": "/Invoices", "status": 403}])
    run = services.start_reconciliation(connection=connection)
    tasks.reconcile(run.pk)  # recorded on the run, not raised
    run.refresh_from_db()
    assert run.state == State.FAILED and run.finished_at is not None
    assert run.error == "Forbidden: Injected by the sandbox"
    # the next request opens a new run
    assert services.start_reconciliation(connection=connection).pk != run.pk


def test_an_unexpected_error_fails_the_run_and_is_raised(firm, monkeypatch):
    connection, _ = firm

    def broken(run):
        raise RuntimeError("a bug")

    monkeypatch.setattr(services, "find_differences", broken)
    run = services.start_reconciliation(connection=connection)
    with pytest.raises(RuntimeError):
        tasks.reconcile(run.pk)
    run.refresh_from_db()
    assert run.state == State.FAILED
    assert run.error == "RuntimeError: a bug"


def test_a_run_whose_client_cannot_be_built_fails_instead_of_staying_queued(firm, monkeypatch):
    connection, _ = firm

    def broken(connection):
        raise LookupError("no such key")

    monkeypatch.setattr(tasks, "xero_client_for", broken)
    run = services.start_reconciliation(connection=connection)
    with pytest.raises(LookupError):
        tasks.reconcile(run.pk)
    run.refresh_from_db()
    assert run.state == State.FAILED and run.error == "LookupError: no such key"


def test_one_run_at_a_time_and_lost_runs_are_recovered(db, django_capture_on_commit_callbacks):
    connection = factories.connection("Smith & Co")
    with django_capture_on_commit_callbacks() as sent:
        run = services.start_reconciliation(connection=connection)
        assert services.start_reconciliation(connection=connection) == run
    assert len(sent) == 1

    # queued long ago and never started: its task was lost, so it is sent again
    long_ago = timezone.now() - timedelta(hours=1)
    ReconciliationRun.objects.filter(pk=run.pk).update(created_at=long_ago)
    with django_capture_on_commit_callbacks() as sent:
        assert services.start_reconciliation(connection=connection) == run
    assert len(sent) == 1

    # running for longer than a task may live: its worker died
    ReconciliationRun.objects.filter(pk=run.pk).update(state=State.RUNNING, started_at=long_ago)
    with django_capture_on_commit_callbacks() as sent:
        fresh = services.start_reconciliation(connection=connection)
    assert fresh != run and len(sent) == 1
    run.refresh_from_db()
    assert run.state == State.FAILED and "worker stopped" in run.error


def test_beat_queues_a_run_for_every_paired_connection(db, django_capture_on_commit_callbacks):
    paired = [
        factories.connection("Paired A"),
        factories.connection("Paired B"),
    ]
    for n, connection in enumerate(paired):
        connection.xero_tenant_id = f"tenant-{n}"
        connection.save()
    factories.connection("Not paired")
    with django_capture_on_commit_callbacks() as sent:
        tasks.reconcile_all()
    assert sorted(r.connection.name for r in ReconciliationRun.objects.all()) == [
        "Paired A",
        "Paired B",
    ]
    assert len(sent) == 2
