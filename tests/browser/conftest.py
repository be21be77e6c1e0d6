"""Fixtures for the browser tests: headless Debian Chromium driven by Playwright, against
pytest-django's live server, with a real Celery worker thread consuming from Redis and the
sandbox as Actionstep and Xero.

The tests skip, with the reason, when /usr/bin/chromium or Playwright is missing (see pages.py;
`.ci/run` installs Chromium) or when Redis does not answer (the `redis` marker).
UNLINKER_DOCS_SCREENSHOTS=1 also refreshes the README's screenshots in docs/screenshots/.
"""

import os

import pytest
from celery.signals import task_postrun
from django.db import connections
from django.test import override_settings

from tests.fixtures.workers import private_worker
from unlinker.mirror import services as mirror

PASSWORD = "a long enough passphrase"


@pytest.fixture(scope="package")
def browser():
    # Imported here, not above: importing the page objects skips the tests on a machine
    # without Playwright or Chromium, where this conftest must still load.
    from playwright.sync_api import sync_playwright

    from .pages import CHROMIUM, CHROMIUM_ARGS

    # Playwright's sync API keeps an asyncio loop running in this thread between its calls, so
    # Django would take every ORM call of the tests for one made from async code.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()


@pytest.fixture(scope="package")
def live_server(request):
    """pytest-django's live server, started for plain HTTP. Its SecurityMiddleware reads
    SECURE_SSL_REDIRECT once, when the server starts, which is before the autouse `_plain_http`
    of a test can turn it off: the browser would be sent to https:// and find no TLS there."""
    from pytest_django.live_server_helper import LiveServer

    address = (
        request.config.getvalue("liveserver")
        or os.environ.get("DJANGO_LIVE_TEST_SERVER_ADDRESS")
        or "localhost"
    )
    with override_settings(SECURE_SSL_REDIRECT=False):
        server = LiveServer(address)
    yield server
    server.stop()


@pytest.fixture
def page(browser, live_server):
    from .pages import VIEWPORT, BrowserLog

    context = browser.new_context(
        base_url=live_server.url, viewport=VIEWPORT, accept_downloads=True
    )
    page = context.new_page()
    log = BrowserLog(page)
    yield page
    context.close()
    log.assert_clean()


@pytest.fixture(scope="session")
def screenshots():
    from .pages import Screenshots

    return Screenshots(docs=os.environ.get("UNLINKER_DOCS_SCREENSHOTS") == "1")


@pytest.fixture
def worker(transactional_db):
    """A Celery worker thread of the project's app, consuming a queue of its own in Redis:
    another test run sharing the Redis database neither takes these tasks nor feeds this
    worker its own."""

    def close_connections(**_):
        # Runs in the worker thread: its connections must not outlive the test, or PostgreSQL
        # refuses to flush the tables and to drop the test database.
        connections.close_all()

    task_postrun.connect(close_connections, weak=False)
    try:
        with private_worker("browser-tests") as running:
            yield running
    finally:
        task_postrun.disconnect(close_connections)


@pytest.fixture
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def admin_with_password(make_user, fast_passwords):
    """Someone with the admin role, who logs in through the form."""
    user = make_user("amelia", "admin", first_name="Amelia")
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def log_in(page, admin_with_password):
    """Log the admin in through the login form; returns the page the form leads to."""
    from .pages import LoginPage

    def go(screenshot=None):
        login = LoginPage(page).open()
        if screenshot:
            screenshot(page)
        return login.log_in(admin_with_password.username, PASSWORD)

    return go


@pytest.fixture
def synced_firm(upstream, connect):
    """Build a firm in the sandbox, connect it and mirror it (a full sync, as the Refresh button
    runs it): returns the sandbox's answer (ids per bill) and the connection."""

    def build(bills: list[dict], name: str = "Harbour Legal"):
        built = upstream.build(bills, name=name)
        connection = connect(built["firm"])
        mirror.sync_now(mirror.new_sync_run(connection, full=True))
        return built, connection

    return build
