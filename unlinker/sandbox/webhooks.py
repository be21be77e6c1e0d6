"""Xero's webhooks, sent by the sandbox: when its invoices change (through the Xero API, or
when Actionstep's integration creates one), a signed delivery goes to the configured URL.

A delivery is Xero's JSON: `events` (resourceUrl, resourceId, tenantId, tenantType,
eventCategory INVOICE, eventType CREATE or UPDATE, eventDateUtc), `firstEventSequence`,
`lastEventSequence` and `entropy`; its header `x-xero-signature` is base64(HMAC-SHA256(key,
raw body)). Events are gathered for `delay_seconds` and sent together by one thread, so that
the API's answers never wait for the receiver. The control API configures it, sends the
"intent to receive" checks and deliveries on demand (with a wrong signature too), and keeps
the last deliveries with the receiver's answers.
"""

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from datetime import UTC, datetime

import requests

KEEP = 200  # deliveries remembered for /_sandbox/webhooks/deliveries


def signature(key: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


class Webhooks:
    def __init__(self, api_url: str = ""):
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.url = ""
            self.key = ""
            self.delay_seconds = 0.2
            self.timeout_seconds = 10.0
            self._pending: list[dict] = []
            self._sequence = 0
            self.deliveries: deque[dict] = deque(maxlen=KEEP)

    def configure(self, url: str, key: str, delay_seconds=None, timeout_seconds=None) -> dict:
        with self._lock:
            self.url, self.key = url, key
            if delay_seconds is not None:
                self.delay_seconds = float(delay_seconds)
            if timeout_seconds is not None:
                self.timeout_seconds = float(timeout_seconds)
            return self._snapshot()

    def snapshot(self) -> dict:
        with self._lock:
            return self._snapshot()

    def _snapshot(self) -> dict:
        return {
            "url": self.url,
            "key_set": bool(self.key),
            "delay_seconds": self.delay_seconds,
            "pending": len(self._pending),
            "deliveries": list(self.deliveries),
        }

    # --- events -------------------------------------------------------------------------------

    @staticmethod
    def event(base_url: str, tenant_id: str, invoice_id: str, event_type: str) -> dict:
        return {
            "resourceUrl": f"{base_url}/xero/api/api.xro/2.0/Invoices/{invoice_id}",
            "resourceId": invoice_id,
            "tenantId": tenant_id,
            "tenantType": "ORGANISATION",
            "eventCategory": "INVOICE",
            "eventType": event_type,
            "eventDateUtc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
        }

    def publish(self, events: list[dict]) -> None:
        """Queue events for the next delivery (nothing happens without a URL)."""
        if not events:
            return
        with self._wake:
            if not self.url:
                return
            self._pending.extend(events)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, daemon=True, name="webhooks")
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending:
                    if not self._wake.wait(timeout=60):
                        self._thread = None
                        return
                delay = self.delay_seconds
            time.sleep(delay)  # gather what else changes meanwhile into the same delivery
            with self._lock:
                events, self._pending = self._pending, []
            self.send(events)

    # --- deliveries ---------------------------------------------------------------------------

    def body(self, events: list[dict]) -> bytes:
        with self._lock:
            first = self._sequence + 1
            self._sequence += max(1, len(events))
            last = self._sequence
        payload = {
            "events": events,
            "firstEventSequence": first if events else 0,
            "lastEventSequence": last if events else 0,
            "entropy": secrets.token_hex(10).upper(),
        }
        return json.dumps(payload, separators=(",", ":")).encode()

    def send(self, events: list[dict], *, bad_signature: bool = False, body: bytes | None = None):
        """Deliver now; the delivery as remembered: what was sent and what the receiver said."""
        with self._lock:
            url, key, timeout = self.url, self.key, self.timeout_seconds
        if not url:
            raise ValueError("no webhook URL is configured: POST /_sandbox/webhooks first")
        body = body if body is not None else self.body(events)
        signed = signature(key + "-wrong" if bad_signature else key, body)
        delivery = {
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "events": len(events),
            "bad_signature": bad_signature,
            "body": body.decode(),
            "signature": signed,
        }
        started = time.perf_counter()
        try:
            answer = requests.post(
                url,
                data=body,
                headers={"Content-Type": "application/json", "x-xero-signature": signed},
                timeout=timeout,
            )
            delivery.update(status=answer.status_code, response_body=answer.text[:500])
        except requests.RequestException as exc:
            delivery.update(status=None, error=type(exc).__name__)
        delivery["seconds"] = round(time.perf_counter() - started, 3)
        with self._lock:
            self.deliveries.append(delivery)
        return delivery

    def intent_to_receive(self) -> dict:
        """Xero's check before it enables a webhook: one correctly signed delivery without
        events must be answered 200 and one wrongly signed 401, each within 5 seconds."""
        good = self.send([])
        bad = self.send([], bad_signature=True)
        passed = all(
            d["status"] == expected and d["seconds"] < 5
            for d, expected in ((good, 200), (bad, 401))
        )
        return {"passed": passed, "deliveries": [good, bad]}
