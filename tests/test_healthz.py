import pytest
from django.urls import reverse

from unlinker.celery import app as celery_app


@pytest.fixture
def broker_url():
    """Point the app's broker somewhere for one test, then put it back."""
    original = celery_app.conf.broker_url

    # health checks open a fresh connection from the configuration each time, no pool
    def point(url: str):
        celery_app.conf.broker_url = url

    yield point
    point(original)


@pytest.mark.redis
@pytest.mark.django_db
def test_healthz_ok_with_database_and_redis(client, broker_url):
    from tests.conftest import REDIS_URL

    broker_url(REDIS_URL)
    response = client.get(reverse("healthz"))  # anonymous on purpose: probes do not log in
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["broker"] == "ok"
    assert body["worker_last_seen"] is None


@pytest.mark.django_db
def test_healthz_names_the_broker_when_it_is_down(client, broker_url):
    broker_url("redis://127.0.0.1:1/0")  # nothing listens on port 1
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"] == "ok"
    assert body["broker"].startswith("error:")


@pytest.mark.django_db
def test_healthz_names_the_database_when_it_is_down(client, monkeypatch):
    from django.db import OperationalError

    from unlinker.core import health

    def refused():
        raise OperationalError("connection refused")

    monkeypatch.setattr(health.connection, "cursor", refused)
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["database"] == "error: OperationalError"
    assert "worker_last_seen" not in response.json()
