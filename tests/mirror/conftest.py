import pytest

from . import factories


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Every test logs a user in; the production hasher would spend most of the run hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def firm(db):
    return factories.connection("Smith & Co")


@pytest.fixture
def other_firm(db):
    """Another firm's connection, with rows no user of `firm` may ever see or select."""
    other = factories.connection("Jones Legal")
    factories.invoices(other, 3, contact_name="OTHER-FIRM-SECRET", matter_name="OTHER-MATTER")
    factories.payments(other, 3, contact_name="OTHER-FIRM-SECRET", matter_name="OTHER-MATTER")
    return other


@pytest.fixture
def member_of(client_for, firm):
    """A logged-in client whose user has `role` and belongs to `firm`."""

    def login(role: str):
        client = client_for(role)
        firm.members.add(client.user)
        return client

    return login
