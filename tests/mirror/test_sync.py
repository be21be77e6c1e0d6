"""The mirror follows Actionstep: a full sync, an incremental one, changes and disappearances,
against the sandbox over real HTTP."""

import pytest
from django.urls import reverse

from unlinker.connections.clients import actionstep_client_for
from unlinker.integrations import actionstep_resources
from unlinker.mirror import services
from unlinker.mirror.models import LinkedInvoice, LinkedPayment, LinkStatus, SyncRun

pytestmark = pytest.mark.django_db


def sync(connection, full=False) -> SyncRun:
    return services.sync_now(services.new_sync_run(connection, full=full))


@pytest.fixture
def firm(upstream):
    return upstream.build(
        [
            {
                "total": "1100.00",
                "matter": "Smith v Jones",
                "contact": "Alice Smith",
                "payments": [{"amount": "500.00"}, {"amount": "100.00"}],
            },
            {"total": "220.00", "contact": "Bob <b>Brown</b>"},
            {"total": "330.00", "link": "Unlinked"},
        ]
    )


def test_full_sync_mirrors_every_link(upstream, connect, firm):
    connection = connect(firm["firm"])
    run = sync(connection, full=True)
    assert run.state == SyncRun.State.DONE and run.error == ""

    bills = firm["bills"]
    invoices = {i.actionstep_id: i for i in LinkedInvoice.objects.filter(connection=connection)}
    assert set(invoices) == {b["id"] for b in bills}
    first = invoices[bills[0]["id"]]
    assert first.link_status == LinkStatus.LINKED
    assert first.matter_name == "Smith v Jones" and first.contact_name == "Alice Smith"
    assert str(first.total) == "1100.00"
    assert first.xero_invoice_id == bills[0]["xero_invoice_id"].lower()
    assert first.linked_payment_count == 2
    assert invoices[bills[2]["id"]].link_status == LinkStatus.UNLINKED

    payments = LinkedPayment.objects.filter(connection=connection)
    assert payments.count() == 2
    assert {p.invoice_id for p in payments} == {first.pk}
    assert {str(p.amount) for p in payments} == {"500.00", "100.00"}
    assert all(p.invoice_number == first.invoice_number for p in payments)
    assert run.records_upserted == 5


def test_incremental_sync_with_no_change_makes_at_most_two_requests_per_resource(
    upstream, connect, firm
):
    connection = connect(firm["firm"])
    sync(connection, full=True)
    since = upstream.last_request_id()
    run = sync(connection)
    assert not run.full and run.state == SyncRun.State.DONE
    calls = upstream.requests(since=since, api="actionstep")
    for resource in (
        actionstep_resources.XERO_INVOICE_LINKS,
        actionstep_resources.XERO_PAYMENT_LINKS,
        actionstep_resources.BILLS,
        actionstep_resources.BILL_PAYMENTS,
    ):
        made = [c for c in calls if f"/rest/{resource}" in c["path"]]
        assert 1 <= len(made) <= 2, (resource, made)
    assert run.requests_made == len(calls)


def test_incremental_sync_picks_up_upstream_changes(upstream, connect, firm):
    connection = connect(firm["firm"])
    sync(connection, full=True)
    client = actionstep_client_for(connection)
    bill = firm["bills"][0]
    client.unlink_payment(bill["payments"][0]["link_id"])
    client.reverse_payment(bill["payments"][0]["id"], "entered twice")

    sync(connection)

    invoice = LinkedInvoice.objects.get(connection=connection, actionstep_id=bill["id"])
    assert invoice.linked_payment_count == 1
    changed = LinkedPayment.objects.get(actionstep_id=bill["payments"][0]["id"])
    assert changed.link_status == LinkStatus.UNLINKED
    assert changed.actionstep_status == actionstep_resources.PAYMENT_REVERSED
    assert str(invoice.total_paid) == "100.00"  # the reversed payment no longer counts


def test_recounting_linked_payments_rewrites_only_the_invoices_whose_count_changed(
    upstream, connect, firm
):
    connection = connect(firm["firm"])
    sync(connection, full=True)
    assert services.recount_linked_payments(connection.pk) == 0  # every sync recounts
    bill = firm["bills"][0]
    LinkedPayment.objects.filter(actionstep_id=bill["payments"][0]["id"]).update(
        link_status=LinkStatus.UNLINKED
    )
    assert services.recount_linked_payments(connection.pk) == 1
    assert LinkedInvoice.objects.get(actionstep_id=bill["id"]).linked_payment_count == 1


def test_records_gone_upstream_are_marked_not_deleted(upstream, connect, firm):
    connection = connect(firm["firm"])
    ghost = LinkedInvoice.objects.create(
        connection=connection,
        actionstep_id=999999,
        link_id=999999,
        link_status=LinkStatus.LINKED,
        invoice_number="GHOST-1",
        synced_at="2020-01-01T00:00Z",
    )
    run = sync(connection, full=True)
    ghost.refresh_from_db()
    assert ghost.vanished_at is not None
    assert run.records_vanished == 1
    assert (
        LinkedInvoice.objects.filter(connection=connection, vanished_at__isnull=True).count() == 3
    )


def test_sync_keeps_connections_apart(upstream, connect, firm):
    other = upstream.build([{"total": "10.00"}], name="Other Firm")
    mine, theirs = connect(firm["firm"]), connect(other["firm"])
    sync(mine, full=True)
    sync(theirs, full=True)
    assert LinkedInvoice.objects.filter(connection=mine).count() == 3
    assert LinkedInvoice.objects.filter(connection=theirs).count() == 1


def test_xero_status_refresh_reads_ids_in_batches(upstream, connect, firm):
    connection = connect(firm["firm"])
    sync(connection, full=True)
    since = upstream.last_request_id()
    from unlinker.connections.clients import xero_client_for

    reads = services.refresh_xero_status(connection.pk, xero_client_for(connection))
    # the invoices, 50 ids a read; then the organisation (lock dates) and the batch payments
    assert reads == 3
    calls = upstream.requests(since=since, api="xero")
    assert len(calls) == 3 and "IDs=" in calls[0]["query"]
    assert calls[1]["path"].endswith("/Organisation") and calls[2]["path"].endswith("/Payments")
    invoice = LinkedInvoice.objects.get(actionstep_id=firm["bills"][0]["id"])
    assert invoice.xero_status in ("AUTHORISED", "PAID")
    assert invoice.xero_checked_at is not None
    assert all(p.xero_status == "AUTHORISED" for p in LinkedPayment.objects.all())

    # nothing unchecked left, and the organisation was read just now: nothing is read again
    since = upstream.last_request_id()
    client = xero_client_for(connection)
    assert services.refresh_xero_status(connection.pk, client, only_unchecked=True) == 0


def test_xero_refresh_reads_lock_dates_dates_allocations_and_batch_payments(upstream, connect):
    from unlinker.connections.clients import xero_client_for

    built = upstream.build(
        [
            {
                "number": "CR-1",
                "total": "300.00",
                "invoice_date": "2026-05-04",
                "allocations": [{"kind": "CREDITNOTE", "amount": "30.00", "date": "2026-05-10"}],
            },
            {"number": "B-1", "total": "60.00", "payments": [{"amount": "60.00", "batch": "b"}]},
            {"number": "B-2", "total": "40.00", "payments": [{"amount": "40.00", "batch": "b"}]},
        ],
        organisation={"period_lock_date": "2026-03-31", "end_of_year_lock_date": "2025-06-30"},
    )
    connection = connect(built["firm"])
    sync(connection, full=True)
    services.refresh_xero_status(connection.pk, xero_client_for(connection))

    connection.refresh_from_db()
    assert str(connection.xero_period_lock_date) == "2026-03-31"
    assert str(connection.xero_end_of_year_lock_date) == "2025-06-30"
    assert connection.xero_organisation_read_at is not None
    credited = LinkedInvoice.objects.get(invoice_number="CR-1")
    assert str(credited.xero_date) == "2026-05-04" and credited.xero_amount_credited == 30
    (credit,) = credited.xero_credits
    assert (credit["kind"], credit["amount"], credit["date"]) == (
        "CREDITNOTE",
        "30.00",
        "2026-05-10",
    )
    b1 = LinkedPayment.objects.get(invoice_number="B-1")
    assert b1.is_batch_payment and b1.xero_batch_payment_id
    assert b1.xero_batch_invoices == [{"number": "B-2", "amount": "40.00"}]
    assert b1.xero_date is not None


def test_refresh_button_queues_one_sync_and_shows_progress(client_for, connect, upstream, firm):
    connection = connect(firm["firm"])
    client = client_for("operator")
    connection.members.add(client.user)
    url = reverse("sync:start", args=[connection.pk])
    first = client.post(url, headers={"HX-Request": "true"})
    second = client.post(url, headers={"HX-Request": "true"})
    assert first.status_code == second.status_code == 200
    assert SyncRun.objects.filter(connection=connection).count() == 1
    assert b"syncing" in first.content and b"every 1s" in first.content
    assert "HX-Refresh" not in first  # the page waits for the sync before it reloads
    panel = client.get(reverse("sync:panel", args=[connection.pk]), headers={"HX-Request": "true"})
    assert panel.status_code == 200  # still queued: keeps polling

    SyncRun.objects.update(state=SyncRun.State.DONE)
    panel = client.get(reverse("sync:panel", args=[connection.pk]), headers={"HX-Request": "true"})
    assert panel.status_code == 286  # finished: polling stops
    assert panel["HX-Refresh"] == "true"  # and the list shows the synced rows
    assert b"Refresh from Actionstep" in panel.content


def test_a_viewer_may_not_refresh_and_is_not_offered_to(client_for, connect, upstream, firm):
    """A sync spends the firm's Actionstep calls: viewers browse, operators and admins refresh.
    Refused by the view and by the service alike; the panel shows no button to a viewer."""
    from django.core.exceptions import PermissionDenied

    from unlinker.mirror.services import start_sync

    connection = connect(firm["firm"])
    client = client_for("viewer")
    connection.members.add(client.user)
    assert client.post(reverse("sync:start", args=[connection.pk])).status_code == 403
    with pytest.raises(PermissionDenied):
        start_sync(connection=connection, user=client.user)
    assert not SyncRun.objects.exists()
    page = client.get(reverse("mirror:invoice_list", args=[connection.pk])).content.decode()
    assert "Refresh from Actionstep" not in page
    assert "synced from Actionstep on a schedule" in page


def test_refresh_of_another_connection_is_404(client_for, connect, upstream, firm):
    connection = connect(firm["firm"])
    client = client_for("operator")
    assert client.post(reverse("sync:start", args=[connection.pk])).status_code == 404


def test_sync_command(upstream, connect, firm):
    from io import StringIO

    from django.core.management import CommandError, call_command

    connection = connect(firm["firm"])
    out = StringIO()
    call_command("sync", connection=connection.pk, stdout=out)
    assert "Full sync" in out.getvalue() and "5 records" in out.getvalue()
    call_command("sync", connection=connection.pk, stdout=out)
    assert "Incremental sync" in out.getvalue()
    with pytest.raises(CommandError, match="No live connection"):
        call_command("sync", connection=999)


def test_a_sync_refused_upstream_fails_with_the_reason_and_chains_nothing(
    upstream, connect, firm, monkeypatch
):
    from unlinker.mirror import tasks

    connection = connect(firm["firm"])
    upstream.set_faults("actionstep", rules=[{"path_contains": "xeroinvoicelinks", "status": 403}])
    chained = []
    monkeypatch.setattr(tasks.refresh_xero, "delay", lambda *a, **k: chained.append(a))
    run = services.new_sync_run(connection)
    tasks.sync_connection(run.pk)  # recorded on the run, not raised
    run.refresh_from_db()
    assert run.state == SyncRun.State.FAILED and run.finished_at is not None
    assert run.error.startswith("Forbidden: ")
    assert chained == []
    tasks.sync_connection(run.pk)  # delivered again: a failed run stays as it is
    assert SyncRun.objects.get(pk=run.pk).error == run.error


@pytest.mark.parametrize("entry", ["task", "command"])
def test_a_sync_that_crashes_fails_with_the_exception_never_stays_running(
    upstream, connect, firm, monkeypatch, entry
):
    """Any exception, not only an API's refusal: the run ends "failed" with its type and
    message, and the next Refresh is not held back by a run that will never finish."""
    from django.core.management import call_command

    from unlinker.mirror import tasks

    connection = connect(firm["firm"])

    def broken(connection_id, seen_since):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(services, "mark_vanished", broken)
    with pytest.raises(ZeroDivisionError):
        if entry == "task":
            tasks.sync_connection(services.new_sync_run(connection, full=True).pk)
        else:
            call_command("sync", connection=connection.pk, full=True)
    run = SyncRun.objects.get(connection=connection)
    assert run.state == SyncRun.State.FAILED and run.finished_at is not None
    assert run.error == "ZeroDivisionError: a bug"
    assert services.start_sync(connection=connection).pk != run.pk


def test_the_sync_command_reports_a_refusal_and_records_it(upstream, connect, firm):
    from django.core.management import CommandError, call_command

    connection = connect(firm["firm"])
    upstream.set_faults("actionstep", rules=[{"path_contains": "xeroinvoicelinks", "status": 403}])
    with pytest.raises(CommandError, match="The sync failed"):
        call_command("sync", connection=connection.pk)
    run = SyncRun.objects.get(connection=connection)
    assert run.state == SyncRun.State.FAILED and run.finished_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_refresh_with_the_broker_down_is_still_recorded(connect, upstream, firm, monkeypatch):
    from kombu.exceptions import OperationalError

    from unlinker.mirror import tasks

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to the broker. Connection refused.")

    monkeypatch.setattr(tasks.sync_connection, "delay", broker_down)
    connection = connect(firm["firm"])
    run = services.start_sync(connection=connection)  # robust: the commit stands
    assert SyncRun.objects.get(pk=run.pk).state == SyncRun.State.QUEUED
    assert services.start_sync(connection=connection) == run  # one at a time still
