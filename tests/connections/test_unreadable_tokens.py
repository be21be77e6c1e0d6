"""Tokens no key decrypts (UNLINKER_TOKEN_KEY changed): the connection says so everywhere, and
nothing is sent with them, until the previous key is restored or the admin reconnects."""

import pytest
from cryptography.fernet import Fernet
from django.urls import reverse

from unlinker.connections import crypto
from unlinker.connections.clients import actionstep_client_for, xero_client_for
from unlinker.connections.models import OAuthCredential
from unlinker.connections.tokens import TokensUnreadable
from unlinker.integrations.errors import AuthExpired
from unlinker.mirror import services as mirror
from unlinker.mirror.models import SyncRun
from unlinker.reconciliation import services as reconciliation
from unlinker.reconciliation import tasks as reconciliation_tasks
from unlinker.reconciliation.models import ReconciliationRun

pytestmark = pytest.mark.django_db
MESSAGE = "tokens unreadable: restore the previous key or reconnect"


@pytest.fixture
def keys(settings):
    """Switch UNLINKER_TOKEN_KEY for the rest of a test: keys(new, old, ...)."""

    def use(*new_keys):
        settings.UNLINKER_TOKEN_KEYS = list(new_keys)
        crypto._fernet.cache_clear()

    original = settings.UNLINKER_TOKEN_KEYS
    yield use
    use(*original)


@pytest.fixture
def firm(upstream, connect):
    built = upstream.build([{"total": "100.00", "payments": [{"amount": "10.00"}]}])
    return connect(built["firm"])


def test_a_changed_key_leaves_the_tokens_unreadable_but_kept(firm, keys, settings):
    old_key = settings.UNLINKER_TOKEN_KEYS[0]
    keys(Fernet.generate_key().decode())
    credential = OAuthCredential.objects.get(connection=firm, provider="xero")
    assert credential.tokens_unreadable and credential.access_token == ""
    credential.last_error = "touched"
    credential.save()  # a full save writes the ciphertext back, not an empty token
    keys(old_key)  # the previous key restored: the tokens are back
    credential = OAuthCredential.objects.get(pk=credential.pk)
    assert not credential.tokens_unreadable and credential.access_token


def test_rotation_keeps_them_readable(firm, keys, settings):
    keys(Fernet.generate_key().decode(), *settings.UNLINKER_TOKEN_KEYS)
    assert not OAuthCredential.objects.get(connection=firm, provider="xero").tokens_unreadable


def test_nothing_is_sent_with_unreadable_tokens(firm, keys, upstream):
    keys(Fernet.generate_key().decode())
    since = upstream.last_request_id()
    for client_for in (actionstep_client_for, xero_client_for):
        with pytest.raises(TokensUnreadable, match=MESSAGE) as caught:
            client_for(firm)
        assert isinstance(caught.value, AuthExpired)  # an admin's job: not retried
    assert upstream.requests(since=since) == []  # not even a refresh with an empty token


def test_a_sync_and_a_reconciliation_fail_with_the_reason(firm, keys):
    keys(Fernet.generate_key().decode())
    with pytest.raises(TokensUnreadable):
        mirror.sync_now(mirror.new_sync_run(firm))
    run = SyncRun.objects.get(connection=firm)
    assert run.state == SyncRun.State.FAILED
    assert run.error == f"TokensUnreadable: Actionstep {MESSAGE}"

    queued = reconciliation.start_reconciliation(connection=firm)
    reconciliation_tasks.reconcile(queued.pk)  # an AuthExpired: recorded, not raised
    queued.refresh_from_db()
    assert queued.state == ReconciliationRun.State.FAILED
    assert queued.error == f"TokensUnreadable: Xero {MESSAGE}"


def test_connections_shows_the_connection_needs_attention(firm, keys, client_for):
    client = client_for("admin")
    assert MESSAGE not in client.get(reverse("connections:list")).content.decode()
    keys(Fernet.generate_key().decode())
    html = client.get(reverse("connections:list")).content.decode()
    assert html.count(MESSAGE) == 2  # its Actionstep side and its Xero side
    assert "needs attention" in html and "Reconnect Xero" in html


def test_healthz_answers_503_naming_the_connection(firm, keys, client, upstream, connect):
    other = connect(upstream.build([{"total": "5.00"}], name="Other firm")["firm"])
    body = client.get(reverse("healthz")).json()
    assert body["tokens"] == "ok"
    keys(Fernet.generate_key().decode())
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    tokens = response.json()["tokens"]
    assert tokens.startswith(f"unreadable for connection {min(firm.pk, other.pk)}, ")
    assert "restore the previous UNLINKER_TOKEN_KEY" in tokens
    assert firm.name not in tokens  # no login here: ids, not the firms' names


def test_a_step_fails_at_once_with_the_reason_and_sends_nothing(upstream, connect, keys):
    from tests.unlinking.support import queue, run_all, synced
    from unlinker.unlinking.models import StepState, UnlinkStep

    built = upstream.build([{"total": "100.00"}])
    connection = synced(connect, built)
    batch = queue(connection, built["bills"])
    keys(Fernet.generate_key().decode())
    since = upstream.last_request_id()
    run_all(batch)
    step = UnlinkStep.objects.get(batch=batch)
    assert step.state == StepState.FAILED and step.attempts == 1
    assert f"Actionstep {MESSAGE}" in step.error
    assert upstream.requests(since=since) == []
