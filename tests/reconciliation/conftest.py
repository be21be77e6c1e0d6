import pytest


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Most tests here log a user in: the production hasher would cost a second each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
