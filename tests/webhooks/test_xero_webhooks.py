"""POST /webhooks/xero/: signature, intent to receive, replays, a burst, a hung broker, and the
targeted re-read of the invoices the events name (against the sandbox, which also sends the
deliveries itself when its invoices change)."""

import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest
from django.test import Client
from django.urls import reverse

from tests.reconciliation.support import resync
from unlinker.celery import app as celery_app
from unlinker.mirror.models import LinkedInvoice
from unlinker.reconciliation.models import XeroInvoiceCopy
from unlinker.webhooks import services
from unlinker.webhooks.models import WebhookDelivery
from unlinker.webhooks.tasks import process_pending

KEY = "webhook-key-for-tests"
URL = "/webhooks/xero/"


@pytest.fixture(autouse=True)
def webhook_key(settings):
    settings.XERO_WEBHOOK_KEY = KEY


def sign(body: bytes, key: str = KEY) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def delivery(tenant_id: str, invoice_ids, event_type="UPDATE") -> bytes:
    events = [
        {
            "resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{invoice_id}",
            "resourceId": invoice_id,
            "tenantId": tenant_id,
            "tenantType": "ORGANISATION",
            "eventCategory": "INVOICE",
            "eventType": event_type,
            "eventDateUtc": "2026-12-01T10:00:00.000",
        }
        for invoice_id in invoice_ids
    ]
    payload = {
        "events": events,
        "firstEventSequence": 1,
        "lastEventSequence": len(events),
        "entropy": uuid.uuid4().hex[:20].upper(),
    }
    return json.dumps(payload).encode()


def post(body: bytes, signature: str | None = None, client=None):
    client = client or Client(enforce_csrf_checks=True)  # as Xero: no session, no CSRF token
    return client.post(
        URL,
        body,
        content_type="application/json",
        headers={"x-xero-signature": sign(body) if signature is None else signature},
    )


@pytest.mark.django_db
def test_the_url_is_the_documented_one():
    assert reverse("webhooks:xero") == URL


@pytest.mark.django_db
def test_a_bad_signature_is_401_and_nothing_is_stored():
    body = delivery("t", [str(uuid.uuid4())])
    for signature in (sign(body, "another key"), "", sign(body + b" ")):
        answer = post(body, signature)
        assert answer.status_code == 401 and answer.content == b""
    assert WebhookDelivery.objects.count() == 0


@pytest.mark.django_db
def test_without_a_key_configured_nothing_is_accepted(settings):
    settings.XERO_WEBHOOK_KEY = ""
    body = delivery("t", [str(uuid.uuid4())])
    assert post(body, sign(body, "")).status_code == 401


@pytest.mark.django_db
def test_intent_to_receive_200_for_a_good_signature_401_for_a_bad_one():
    body = json.dumps(
        {"events": [], "firstEventSequence": 0, "lastEventSequence": 0, "entropy": "ABC"}
    ).encode()
    good = post(body)
    assert good.status_code == 200 and good.content == b""
    assert post(body, sign(body, "wrong")).status_code == 401
    assert WebhookDelivery.objects.count() == 0
    assert Client().get(URL).status_code == 405  # POST only


@pytest.mark.django_db
def test_a_replayed_delivery_is_stored_and_queued_once(django_capture_on_commit_callbacks):
    body = delivery("t", [str(uuid.uuid4())])
    with django_capture_on_commit_callbacks() as queued:
        assert post(body).status_code == 200
        assert post(body).status_code == 200
    assert WebhookDelivery.objects.count() == 1 and len(queued) == 1


@pytest.mark.django_db
def test_a_burst_of_1000_events_is_stored_at_once_and_answered_fast():
    body = delivery(str(uuid.uuid4()), [str(uuid.uuid4()) for _ in range(1000)])
    started = time.perf_counter()
    answer = post(body)
    elapsed = time.perf_counter() - started
    assert answer.status_code == 200
    assert elapsed < 2.0, f"{elapsed:.2f} s for 1,000 events"
    (stored,) = WebhookDelivery.objects.all()
    assert stored.event_count == 1000 and stored.processed_at is None


@pytest.mark.django_db
def test_it_answers_within_5_seconds_when_the_broker_does_not(
    monkeypatch, django_capture_on_commit_callbacks
):
    """The message is handed to the broker by a thread of its own, after the commit."""
    published = []

    def hung_broker(*args, **kwargs):
        time.sleep(6)
        published.append(args)

    monkeypatch.setattr(celery_app.Task, "apply_async", hung_broker)
    body = delivery("t", [str(uuid.uuid4())])
    started = time.perf_counter()
    with django_capture_on_commit_callbacks(execute=True):
        assert post(body).status_code == 200
    assert time.perf_counter() - started < 5
    assert WebhookDelivery.objects.count() == 1


# --- with the sandbox: the targeted re-read -----------------------------------------------------


@pytest.fixture
def paired(upstream, connect):
    built = upstream.build(
        [{"number": f"W-{n}", "total": "110.00"} for n in range(60)], name="Webhook Legal"
    )
    connection = connect(built["firm"])
    resync(connection)
    return built, connection


def test_a_delivery_re_reads_the_invoices_it_names_50_to_a_call(upstream, paired):
    built, connection = paired
    ids = [bill["xero_invoice_id"] for bill in built["bills"]]
    tenant = built["firm"]["tenantId"]
    body = delivery(tenant, ids + ids[:5] + [str(uuid.uuid4())])  # repeats and an unknown one
    assert post(body).status_code == 200
    stored = WebhookDelivery.objects.get()

    since = upstream.last_request_id()
    processed = services.process_delivery(stored.pk)
    assert processed.processed_at is not None and processed.invoices_read == 60
    reads = upstream.requests(since=since, api="xero")
    assert [r["path"] for r in reads] == ["/xero/api/api.xro/2.0/Invoices"] * 2
    assert all(len(r["query"].split("%2C")) <= 50 for r in reads)
    assert XeroInvoiceCopy.objects.filter(connection=connection).count() == 60

    # done once: processing it again (a redelivered message, the sweep) reads nothing
    since = upstream.last_request_id()
    assert services.process_delivery(stored.pk) is None
    process_pending()
    assert upstream.requests(since=since, api="xero") == []


def test_the_sandbox_sends_signed_deliveries_when_invoices_change(upstream, paired, live_server):
    built, connection = paired
    upstream.set_webhooks(f"{live_server.url}{URL}", KEY, delay_seconds=0.1)
    check = upstream.webhook_intent()
    assert check["passed"], check
    assert [d["status"] for d in check["deliveries"]] == [200, 401]

    bill = built["bills"][0]
    token = upstream.issue_tokens("xero")["access_token"]
    voided = upstream.session.post(
        f"{upstream.xero_api_url}/Invoices/{bill['xero_invoice_id']}",
        json={"Invoices": [{"InvoiceID": bill["xero_invoice_id"], "Status": "VOIDED"}]},
        headers={
            "Authorization": f"Bearer {token}",
            "Xero-tenant-id": built["firm"]["tenantId"],
            "Accept": "application/json",
        },
        timeout=10,
    )
    assert voided.status_code == 200
    deadline = time.monotonic() + 10
    while not WebhookDelivery.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    stored = WebhookDelivery.objects.get()
    (event,) = json.loads(stored.body)["events"]
    assert event["resourceId"] == bill["xero_invoice_id"] and event["eventType"] == "UPDATE"

    services.process_delivery(stored.pk)
    invoice = LinkedInvoice.objects.get(
        connection=connection, xero_invoice_id=bill["xero_invoice_id"]
    )
    assert invoice.xero_status == "VOIDED"

    bad = upstream.send_webhook(
        built["firm"]["tenantId"], [bill["xero_invoice_id"]], bad_signature=True
    )
    assert bad["status"] == 401
    assert WebhookDelivery.objects.count() == 1


def test_the_sweep_processes_what_the_broker_lost(upstream, paired):
    built, connection = paired
    body = delivery(built["firm"]["tenantId"], [built["bills"][1]["xero_invoice_id"]])
    post(body)
    WebhookDelivery.objects.update(
        received_at=WebhookDelivery.objects.get().received_at - services.PENDING_AFTER * 2
    )
    process_pending()
    assert WebhookDelivery.objects.get().processed_at is not None
    assert XeroInvoiceCopy.objects.filter(connection=connection).count() == 1
