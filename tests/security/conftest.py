import pytest
from django.test import Client

from .scene import build_scene


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # A user per role in every test: the production hasher would spend most of the run hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def scene(make_user):
    return build_scene(make_user)


@pytest.fixture
def signed_in(scene):
    """A new client signed in as the scene's user of `role` (None: no role; "anonymous": not
    signed in)."""

    def sign_in(role: str | None, **client_options) -> Client:
        client = Client(**client_options)
        if role != "anonymous":
            client.force_login(scene.users[role])
        return client

    return sign_in
