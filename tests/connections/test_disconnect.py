"""Disconnecting: a confirmation first; then the connection is archived, never deleted. Its
unfinished batches are cancelled, Unlinker leaves the Xero organisation (DELETE /connections/{id},
then the refresh token revoked), its history stays readable by whoever could read it, and
connecting the same org again brings it all back."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from unlinker.connections.models import Connection, OAuthCredential
from unlinker.connections.services import connect_actionstep
from unlinker.connections.tokens import CredentialTokenSource
from unlinker.integrations.xero import connections as xero_connections
from unlinker.unlinking import services
from unlinker.unlinking.models import StepState, UnlinkBatch
from unlinker.unlinking.planning import PlanOptions
from unlinker.unlinking.selectors import rows_for_actionstep_ids

from ..unlinking.support import queue, synced

pytestmark = pytest.mark.django_db


@pytest.fixture
def firm(upstream):
    return upstream.build(
        [{"total": "100.00", "payments": [{"amount": "40.00"}]}, {"total": "200.00"}]
    )


@pytest.fixture
def scene(upstream, connect, firm, client_for, make_user):
    connection = synced(connect, firm)
    batch = queue(connection, firm["bills"][:1])  # pending: the disconnect cancels it
    admin = client_for("admin")
    viewer = make_user("vera", "viewer")
    connection.members.add(viewer)
    return connection, batch, admin, viewer


def test_disconnect_asks_first_and_says_what_will_happen(scene):
    connection, batch, admin, _ = scene
    url = reverse("connections:disconnect", args=[connection.pk])
    page = admin.get(url).content.decode()
    assert f"Disconnect {connection.name}?" in page
    assert "2 steps not started yet" in page and f">{batch.pk}</a> will be cancelled" in page
    assert "stay readable and exportable" in page
    admin.post(url)  # no confirmation: the page again, nothing done
    connection.refresh_from_db()
    assert connection.disconnected_at is None
    assert OAuthCredential.objects.filter(connection=connection).count() == 2


def test_disconnect_archives_cancels_and_leaves_xero(scene, upstream):
    connection, batch, admin, _ = scene
    refresh_token = OAuthCredential.objects.get(
        connection=connection, provider="xero"
    ).refresh_token
    tokens = CredentialTokenSource.loaded(
        OAuthCredential.objects.get(connection=connection, provider="xero")
    )
    access = tokens.access_token()
    assert [t.tenant_id for t in xero_connections(access)] == [connection.xero_tenant_id]
    since = upstream.last_request_id()

    response = admin.post(
        reverse("connections:disconnect", args=[connection.pk]), {"confirm": "1"}, follow=True
    )
    text = response.content.decode()
    assert (
        "is disconnected and archived: its history is kept. 2 steps not started yet were cancelled."
        in text
    )
    assert "removed from the Xero organisation" in text

    connection.refresh_from_db()
    assert connection.disconnected_at is not None
    assert Connection.objects.filter(pk=connection.pk).exists()  # archived, not deleted
    assert not OAuthCredential.objects.filter(connection=connection).exists()
    batch.refresh_from_db()
    assert batch.state == UnlinkBatch.State.CANCELLED
    assert set(batch.steps.values_list("state", flat=True)) == {StepState.CANCELLED}
    assert "was disconnected by" in batch.steps.first().error

    calls = upstream.requests(since=since, api="xero")
    deletes = [c for c in calls if c["method"] == "DELETE" and "/connections/" in c["path"]]
    revocations = [c for c in calls if c["path"].endswith("/connect/revocation")]
    assert len(deletes) == 1 and deletes[0]["status"] in (200, 204)
    assert len(revocations) == 1 and revocations[0]["status"] == 200
    # Xero no longer lets the app in with that authorisation
    from unlinker.integrations.errors import ApiError

    with pytest.raises(ApiError):
        xero_connections(access)
    assert refresh_token  # (it was there to revoke)


def test_the_history_of_a_disconnected_connection_stays_readable(scene, firm):
    connection, batch, admin, viewer = scene
    admin.post(reverse("connections:disconnect", args=[connection.pk]), {"confirm": "1"})
    member = Client()
    member.force_login(viewer)
    for who in (admin, member):
        assert who.get(reverse("unlinking:batch", args=[batch.pk])).status_code == 200
        csv = who.get(reverse("unlinking:batch", args=[batch.pk]), {"_export": "csv"})
        assert csv.status_code == 200 and b"".join(csv.streaming_content).count(b"\n") >= 3
        history = who.get(reverse("unlinking:history")).content.decode()
        assert reverse("unlinking:batch", args=[batch.pk]) in history and "archived" in history
        lists = who.get(reverse("mirror:invoice_list", args=[connection.pk]))
        assert lists.status_code == 200 and b"Unlink from Xero" not in lists.content
        assert b"read-only" in lists.content
        report = who.get(reverse("reconciliation:connection_report", args=[connection.pk]))
        assert report.status_code == 200
    page = admin.get(reverse("connections:list")).content.decode()
    assert "Archived connections" in page and connection.name in page
    # ...and nothing acts on it any more
    plan = reverse("unlinking:plan", args=[connection.pk])
    assert admin.post(plan, {"kind": "invoices", "_all": "1"}).status_code == 404
    assert admin.post(reverse("unlinking:retry", args=[batch.pk])).status_code == 404
    assert admin.post(reverse("sync:start", args=[connection.pk])).status_code == 404


def test_nothing_can_be_queued_on_a_disconnected_connection(scene, firm):
    connection, _, admin, _ = scene
    rows = rows_for_actionstep_ids(connection, invoice_ids=[firm["bills"][1]["id"]], payment_ids=[])
    admin.post(reverse("connections:disconnect", args=[connection.pk]), {"confirm": "1"})
    with pytest.raises(services.NothingToQueue, match="was disconnected"):
        services.create_batch(
            connection=connection,
            user=None,
            selection={"source": "test"},
            planner=lambda busy: rows.plan(PlanOptions(), busy=busy),
        )


def test_connecting_the_same_org_again_brings_the_history_back(scene, upstream, make_user):
    connection, batch, admin, _ = scene
    admin.post(reverse("connections:disconnect", args=[connection.pk]), {"confirm": "1"})
    token = upstream.issue_tokens("actionstep", orgkey=connection.actionstep_org_key)
    again, created = connect_actionstep(user=make_user("ada", "admin"), token=token)
    assert not created and again.pk == connection.pk
    assert again.disconnected_at is None
    assert UnlinkBatch.objects.filter(connection=again, pk=batch.pk).exists()
    page = admin.get(reverse("connections:list")).content.decode()
    assert not re.search(r"Archived connections", page)
