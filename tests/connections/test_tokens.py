"""Token sources: stored tokens, refresh before expiry and on 401, the per-credential lock."""

import sys
import threading
import time
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
import requests
from django.core.management import call_command
from django.db import connection as db_connection
from django.db import connections as db_connections
from django.utils import timezone
from responses import matchers

from tests.integrations.conftest import XERO_API
from unlinker.connections.models import Connection, OAuthCredential, Provider
from unlinker.connections.tokens import CredentialTokenSource
from unlinker.integrations.errors import AuthExpired, ServerError, Unreachable
from unlinker.integrations.xero import XeroClient

TOKEN_URL = "https://identity.test/connect/token"
AS_TOKEN_URL = "https://as-identity.test/api/oauth/token"


@pytest.fixture(autouse=True)
def token_urls(settings):
    settings.XERO_TOKEN_URL = TOKEN_URL
    settings.XERO_CLIENT_ID = "xero-app"
    settings.XERO_CLIENT_SECRET = "xero-secret"
    settings.ACTIONSTEP_TOKEN_URL = AS_TOKEN_URL
    settings.ACTIONSTEP_CLIENT_ID = "as-app"
    settings.ACTIONSTEP_CLIENT_SECRET = "as-secret"


def make_credential(provider=Provider.XERO, expires_in=timedelta(minutes=30)):
    pair = Connection.objects.create(name="Smith & Co", actionstep_org_key=f"org-{provider}")
    return OAuthCredential.objects.create(
        connection=pair,
        provider=provider,
        access_token="access-1",
        refresh_token="refresh-1",
        expires_at=timezone.now() + expires_in,
    )


def new_pair(number):
    return {
        "access_token": f"access-{number}",
        "refresh_token": f"refresh-{number}",
        "token_type": "Bearer",
        "expires_in": 1800,
    }


@pytest.mark.django_db
def test_the_stored_token_is_read_once(django_assert_num_queries):
    source = CredentialTokenSource(make_credential().pk)
    with django_assert_num_queries(1):
        assert source.access_token() == "access-1"
        assert source.access_token() == "access-1"


@pytest.mark.django_db
def test_refresh_shortly_before_expiry(mocked):
    credential = make_credential(expires_in=timedelta(seconds=30))
    mocked.post(
        TOKEN_URL,
        json=new_pair(2),
        match=[
            matchers.urlencoded_params_matcher(
                {"grant_type": "refresh_token", "refresh_token": "refresh-1"}, allow_blank=True
            ),
            # Xero documents HTTP Basic client authentication
            matchers.header_matcher({"Authorization": "Basic eGVyby1hcHA6eGVyby1zZWNyZXQ="}),
        ],
    )
    assert CredentialTokenSource(credential.pk).access_token() == "access-2"
    credential.refresh_from_db()
    assert (credential.access_token, credential.refresh_token) == ("access-2", "refresh-2")
    assert credential.expires_at > timezone.now() + timedelta(minutes=29)
    assert credential.last_refreshed_at is not None and credential.last_error == ""


@pytest.mark.django_db
def test_actionstep_refresh_posts_the_client_credentials(mocked):
    credential = make_credential(Provider.ACTIONSTEP, expires_in=timedelta(seconds=-5))
    mocked.post(AS_TOKEN_URL, json={**new_pair(2), "api_endpoint": "https://as.test/api"})
    assert CredentialTokenSource(credential.pk).access_token() == "access-2"
    form = parse_qs(mocked.calls[0].request.body)
    assert form["client_id"] == ["as-app"] and form["client_secret"] == ["as-secret"]


@pytest.mark.django_db
def test_401_refreshes_the_stored_credential_and_retries(mocked):
    credential = make_credential()
    mocked.post(TOKEN_URL, json=new_pair(2))
    mocked.get(
        f"{XERO_API}/Invoices",
        status=401,
        match=[matchers.header_matcher({"Authorization": "Bearer access-1"})],
    )
    mocked.get(
        f"{XERO_API}/Invoices",
        json={"Invoices": []},
        match=[matchers.header_matcher({"Authorization": "Bearer access-2"})],
    )
    client = XeroClient("t", CredentialTokenSource(credential.pk), api_url=XERO_API)
    assert client.get_invoices() == []
    credential.refresh_from_db()
    assert credential.refresh_token == "refresh-2"


@pytest.mark.django_db
def test_a_token_already_refreshed_by_another_process_is_used_as_it_is(mocked):
    credential = make_credential()
    source = CredentialTokenSource(credential.pk)
    assert source.access_token() == "access-1"
    # another worker refreshed meanwhile
    credential.access_token, credential.refresh_token = "access-2", "refresh-2"
    credential.save()
    assert source.refresh("access-1") == "access-2"
    assert len(mocked.calls) == 0


@pytest.mark.django_db
def test_invalid_grant_records_the_error_and_expires_the_connection(mocked):
    credential = make_credential(expires_in=timedelta(0))
    mocked.post(TOKEN_URL, status=400, json={"error": "invalid_grant"})
    with pytest.raises(AuthExpired) as caught:
        CredentialTokenSource(credential.pk).access_token()
    assert "invalid_grant" in caught.value.message
    credential.refresh_from_db()
    assert "invalid_grant" in credential.last_error and credential.last_error_at is not None
    assert credential.refresh_token == "refresh-1"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("answer", "error"),
    [
        ({"status": 503, "body": "Service Unavailable"}, ServerError),
        ({"body": requests.ConnectionError("refused")}, Unreachable),
        ({"status": 200, "body": "<html>"}, Unreachable),
    ],
)
def test_a_failing_token_endpoint_is_retryable(mocked, answer, error):
    credential = make_credential(expires_in=timedelta(0))
    mocked.post(TOKEN_URL, **answer)
    with pytest.raises(error) as caught:
        CredentialTokenSource(credential.pk).access_token()
    assert caught.value.retryable
    credential.refresh_from_db()
    assert credential.last_error == "" and credential.refresh_token == "refresh-1"


@pytest.fixture
def database_on_disk(tmp_path):
    """The test database on a migrated file for the duration of a test. SQLite's in-memory
    test database (shared cache) answers a concurrent writer with "table is locked" at once,
    where SQLite on disk, like PostgreSQL, makes it wait for the lock."""
    in_memory = db_connections["default"]
    if in_memory.vendor != "sqlite" or not in_memory.is_in_memory_db():
        yield
        return
    db_connections.settings["default"] = {
        **in_memory.settings_dict,
        "NAME": str(tmp_path / "db.sqlite3"),
    }
    db_connections["default"] = db_connections.create_connection("default")
    call_command("migrate", verbosity=0)
    yield
    db_connections["default"].close()
    db_connections.settings["default"] = in_memory.settings_dict
    db_connections["default"] = in_memory


class LockWatch:
    """Knows when a thread is waiting for the credential's lock held by another: the test's
    token endpoint (reached by whoever holds the lock) answers only then, so the two refreshes
    really contend, instead of the second one arriving after the first has finished."""

    def __init__(self):
        self.askers: set[int] = set()  # threads that sent the statement taking the lock

    def wrapper(self, execute, sql, params, many, context):
        """A database execute wrapper for each thread: notes the statement that takes the lock
        (SELECT ... FOR UPDATE on PostgreSQL; BEGIN IMMEDIATE on SQLite, which locks the file)."""
        if "FOR UPDATE" in sql or sql.startswith("BEGIN IMMEDIATE"):
            self.askers.add(threading.get_ident())
        return execute(sql, params, many, context)

    def wait_until_blocked(self, holder: int, timeout=10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            others = self.askers - {holder}
            if others and self._blocked(others.pop()):
                return
            time.sleep(0.01)
        raise AssertionError("the second refresh never waited for the lock")

    @staticmethod
    def _blocked(other: int) -> bool:
        if db_connection.vendor == "postgresql":
            # Asked on the holder's own connection: another backend of this database waits.
            with db_connections["default"].cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE NOT l.granted AND a.datname = current_database() "
                    "AND a.pid <> pg_backend_pid()"
                )
                return cursor.fetchone()[0] > 0
        # SQLite: the other thread is inside the driver's call, which waits on the file lock.
        frame = sys._current_frames().get(other)
        return (
            frame is not None
            and frame.f_code.co_name == "execute"
            and "sqlite3" in (frame.f_code.co_filename)
        )


@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_send_one_request_and_share_the_new_token(mocked, database_on_disk):
    credential = make_credential()
    rotations, watch = [], LockWatch()

    def token_endpoint(request):
        # Reached by the thread that holds the lock: answer once the other one waits for it.
        watch.wait_until_blocked(holder=threading.get_ident())
        rotations.append(parse_qs(request.body)["refresh_token"][0])
        if rotations[-1] != "refresh-1":
            return 400, {}, '{"error": "invalid_grant"}'
        return (
            200,
            {"Content-Type": "application/json"},
            ('{"access_token": "access-2", "refresh_token": "refresh-2", "expires_in": 1800}'),
        )

    mocked.add_callback("POST", TOKEN_URL, callback=token_endpoint)
    results, errors = [], []
    start = threading.Barrier(2)

    def worker():
        try:
            source = CredentialTokenSource(credential.pk)  # one per process
            stale = source.access_token()
            start.wait()
            with db_connections["default"].execute_wrapper(watch.wrapper):
                results.append(source.refresh(stale))
        except Exception as exc:  # collected for the assertion below
            errors.append(exc)
        finally:
            db_connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == ["access-2", "access-2"]
    assert rotations == ["refresh-1"]  # the one that waited used the pair the first stored
    credential.refresh_from_db()
    assert credential.refresh_token == "refresh-2"


@pytest.mark.django_db
def test_tokens_are_ciphertext_in_the_database():
    credential = make_credential()
    with db_connection.cursor() as cursor:
        cursor.execute(
            "SELECT access_token, refresh_token FROM connections_oauthcredential WHERE id = %s",
            [credential.pk],
        )
        stored = cursor.fetchone()
    assert "access-1" not in stored[0] and "refresh-1" not in stored[1]
    assert stored[0].startswith("gAAAA")  # a Fernet token
    assert OAuthCredential.objects.get(pk=credential.pk).access_token == "access-1"
    assert "access-1" not in repr(credential) and "access-1" not in repr(
        CredentialTokenSource(credential.pk)
    )
