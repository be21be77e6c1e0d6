import pytest

from unlinker.unlinking import executor

from .factories import store_firm


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Users are made in most tests here: the production hasher would cost a second each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def firm(db):
    """Three linked invoices with one linked payment each."""
    return store_firm()


@pytest.fixture
def member(client_for, firm):
    """A logged-in client for a user of `role` who may see `firm`'s connection."""

    def login(role: str):
        client = client_for(role)
        firm.connection.members.add(client.user)
        return client

    return login


@pytest.fixture
def enqueued(monkeypatch):
    """The batch ids the executor was asked to queue (the executor itself is not run)."""
    calls = []
    monkeypatch.setattr(executor, "enqueue_ready_steps", calls.append)
    return calls
