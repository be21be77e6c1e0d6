import os

import pytest
import redis
import responses
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from unlinker.celery import app as celery_app
from unlinker.integrations import throttle

pytest_plugins = ["tests.fixtures.sandbox", "tests.fixtures.upstream", "tests.fixtures.mail"]
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


def _redis_answers() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


REDIS_UP = _redis_answers()


def pytest_configure(config):
    if not REDIS_UP and celery_app.conf.broker_url.startswith("redis"):
        # Tasks enqueued by code under test go to an in-memory broker; tests that need the
        # real one are marked `redis` and skipped with the reason.
        celery_app.conf.broker_url = "memory://"


def pytest_collection_modifyitems(config, items):
    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    no_redis = pytest.mark.skip(
        reason=f"needs Redis: nothing answers at {REDIS_URL} (set REDIS_URL)"
    )
    no_postgres = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL to one")
    for item in items:
        if "redis" in item.keywords and not REDIS_UP:
            item.add_marker(no_redis)
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(no_postgres)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """With SQLite the test database is a file, not Django's in-memory one: threads that open
    their own connections (a Celery worker's, the live server's) share an in-memory database
    only through SQLite's shared cache, which answers "database table is locked" at once where
    a file in WAL mode waits for the lock (see settings.py)."""
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        name = tmp_path_factory.mktemp("database") / "test.sqlite3"
        database.setdefault("TEST", {})["NAME"] = str(name)


@pytest.fixture(autouse=True)
def _plain_http(settings):
    # With DEBUG off the settings redirect to HTTPS and mark cookies secure; the test client
    # and the live server speak plain HTTP.
    settings.SECURE_SSL_REDIRECT = False
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False


@pytest.fixture(autouse=True)
def _fresh_throttles():
    """No throttle state carries from one test to the next in this process: the tenants'
    throttles of `throttle_for` (made with the settings of whichever test came first), the
    in-process minute windows, and the Redis client cache (a Redis that did not answer once
    would stay "down")."""
    throttle._throttles.clear()
    throttle._local_windows.clear()
    throttle._redis.cache_clear()


@pytest.fixture
def make_user(db):
    def make(username: str, role: str | None = None, **extra):
        user = get_user_model().objects.create_user(username=username, password="pw", **extra)
        if role:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def client_for(client, make_user):
    """A logged-in test client for a user with the given role (viewer, operator, admin)."""

    def login(role: str | None, username: str | None = None):
        user = make_user(username or f"{role or 'norole'}-user", role)
        client.force_login(user)
        client.user = user
        return client

    return login


@pytest.fixture
def mocked():
    """Recorded answers for outbound HTTP (`responses`): for the clients' own conventions; the
    sandbox stands in for the APIs everywhere else."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps
