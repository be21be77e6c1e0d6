"""Xero's webhooks: check a delivery's signature, store it once, and re-read the invoices its
events name with the reconciliation's targeted read (`GET /Invoices?IDs=`, 50 to a call).

Storing comes first and queuing after the commit, in a thread of its own: the endpoint answers
within Xero's 5 seconds even when the broker hangs. A delivery whose message was lost is
picked up by the beat job `webhooks.process_pending`.
"""

import base64
import hashlib
import hmac
import json
import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from unlinker.connections.models import Connection
from unlinker.integrations.errors import ApiError

from .models import WebhookDelivery

log = logging.getLogger(__name__)

# A delivery claimed this long ago lost its worker; one received this long ago and never
# claimed lost its message.
CLAIM_STALE = timedelta(minutes=10)
PENDING_AFTER = timedelta(seconds=30)
PENDING_PER_SWEEP = 200
# One thread hands deliveries to the broker, so that the request never waits for it.
_publisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhook-publish")


class Malformed(ValueError):
    """A correctly signed body that is not Xero's JSON."""


def signature_ok(raw: bytes, signature: str, key: str) -> bool:
    """x-xero-signature is base64(HMAC-SHA256(webhook key, raw body)); compared in constant
    time. Without a key configured nothing is accepted."""
    if not key or not signature:
        return False
    expected = base64.b64encode(hmac.new(key.encode(), raw, hashlib.sha256).digest())
    return hmac.compare_digest(expected, signature.strip().encode())


def _events(raw: bytes) -> list[dict]:
    try:
        payload = json.loads(raw)
    except ValueError:
        raise Malformed("not JSON") from None
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list):
        raise Malformed("no events list")
    return [event for event in events if isinstance(event, dict)]


def receive(raw: bytes) -> WebhookDelivery | None:
    """Store a signed delivery (None for the intent-to-receive check's empty one). A body
    received before is not stored or queued again."""
    events = _events(raw)
    if not events:
        return None
    digest = hashlib.sha256(raw).hexdigest()
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                digest=digest, body=raw.decode("utf-8", "replace"), event_count=len(events)
            )
    except IntegrityError:
        return WebhookDelivery.objects.filter(digest=digest).first()  # a replay: done already
    transaction.on_commit(lambda: _publish(delivery.pk), robust=True)
    return delivery


def _publish(delivery_id: int) -> None:
    _publisher.submit(_send, delivery_id)


def _send(delivery_id: int) -> None:
    from .tasks import process_delivery

    try:
        process_delivery.apply_async((delivery_id,), retry=False)
    except Exception:  # the broker is down: the beat job picks the delivery up
        log.warning("webhook delivery %s not queued; the sweep will process it", delivery_id)


def invoice_ids_by_tenant(delivery: WebhookDelivery) -> dict[str, set[str]]:
    """The invoices the events name, by tenant (other categories are not read)."""
    found: dict[str, set[str]] = defaultdict(set)
    for event in _events(delivery.body.encode()):
        if str(event.get("eventCategory", "")).upper() != "INVOICE":
            continue
        tenant, resource = event.get("tenantId"), event.get("resourceId")
        if tenant and resource:
            found[str(tenant).lower()].add(str(resource).lower())
    return found


def _claim(delivery_id: int) -> bool:
    now = timezone.now()
    claimable = Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - CLAIM_STALE)
    return bool(
        WebhookDelivery.objects.filter(claimable, pk=delivery_id, processed_at__isnull=True).update(
            claimed_at=now, attempts=F("attempts") + 1
        )
    )


def process_delivery(delivery_id: int, client_for=None) -> WebhookDelivery | None:
    """Re-read the delivery's invoices for every connection paired with their tenant. Once
    done it is never done again; a failure is recorded and the sweep tries again."""
    from unlinker.connections.clients import xero_client_for
    from unlinker.reconciliation.services import refresh_invoices

    client_for = client_for or xero_client_for
    if not _claim(delivery_id):
        return None
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    read, errors = 0, []
    for tenant, invoice_ids in invoice_ids_by_tenant(delivery).items():
        connections = Connection.objects.filter(
            xero_tenant_id__iexact=tenant, disconnected_at__isnull=True
        )
        for connection in connections:
            try:
                read += refresh_invoices(connection.pk, client_for(connection), invoice_ids)
            except ApiError as exc:
                errors.append(f"{connection}: {type(exc).__name__}: {exc.message or exc}")
    if errors:
        WebhookDelivery.objects.filter(pk=delivery_id).update(
            claimed_at=None, error="\n".join(errors)[:2000], invoices_read=read
        )
    else:
        WebhookDelivery.objects.filter(pk=delivery_id).update(
            processed_at=timezone.now(), error="", invoices_read=read
        )
    delivery.refresh_from_db()
    return delivery


def pending() -> list[int]:
    """Deliveries not processed that no task is about to take: received a while ago and not
    claimed, or claimed by a worker that went away."""
    now = timezone.now()
    stale = Q(claimed_at__isnull=True, received_at__lt=now - PENDING_AFTER) | Q(
        claimed_at__lt=now - CLAIM_STALE
    )
    return list(
        WebhookDelivery.objects.filter(stale, processed_at__isnull=True).values_list(
            "pk", flat=True
        )[:PENDING_PER_SWEEP]
    )
