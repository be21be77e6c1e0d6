"""The record of every request a step's attempt sends and of every answer: method, path, status,
idempotency key, duration and a summary of both bodies, secrets redacted.

A write is stored before it goes out and completed when its answer comes, each in its own
statement outside any transaction of the step's: a worker killed between the two leaves the
row as "sent, answer lost", which is what happened. A read is stored once answered.
"""

import json
import re
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.db.models import Q
from django.utils import timezone

from .models import StepAttempt, StepRequest, StepState, UnlinkStep

SUMMARY_CHARS = 1000
# Keys whose values never reach the record, in bodies sent or received.
_SECRET = re.compile(r"token|secret|password|authori[sz]ation|client_assertion", re.IGNORECASE)
REDACTED = "[redacted]"


def _redacted(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: REDACTED if _SECRET.search(str(key)) else _redacted(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value


def summarise(value: Any) -> str:
    """A body as compact JSON, secrets redacted, cut to SUMMARY_CHARS."""
    if value is None or value == b"" or value == "":
        return ""
    if isinstance(value, bytes | bytearray):
        try:
            value = json.loads(value)
        except ValueError:
            text = value.decode("utf-8", "replace")
            return text[:SUMMARY_CHARS]
    text = json.dumps(_redacted(value), separators=(",", ":"), default=str, ensure_ascii=False)
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def _path(url: str, params: dict | None) -> str:
    path = urlsplit(url).path
    if params:
        path += "?" + urlencode(params, doseq=True)
    return path[:500]


class AttemptAudit:
    """The `audit` of a step's clients (integrations.http.CallAudit). Steps that share a call
    (Xero clean-ups, many to one POST) each get the request on their own attempt."""

    def __init__(self, attempts: list[StepAttempt]):
        self.attempts = attempts
        self.sequence = 0

    @contextmanager
    def only(self, attempt: StepAttempt | None):
        """Record what is sent inside on this attempt alone: the history note that one step of
        a group adds to its own record."""
        kept = self.attempts
        self.attempts = [attempt] if attempt is not None else kept
        try:
            yield
        finally:
            self.attempts = kept

    def check_claims(self) -> None:
        """Before a write goes out: every step of this call is still held by this attempt. A
        step the sweep took over (judging this worker dead) is another attempt's now, and
        that attempt re-reads before it writes: this one must not write as well."""
        from .executor import ClaimLost

        held = Q()
        for attempt in self.attempts:
            held |= Q(pk=attempt.step_id, attempts=attempt.number)
        still = UnlinkStep.objects.filter(held, state=StepState.RUNNING).count()
        if still != len(self.attempts):
            raise ClaimLost("the step was taken over by another attempt")

    def sending(self, api, method, url, params, body, headers):
        self.sequence += 1
        fields = {
            "sequence": self.sequence,
            "api": api,
            "method": method,
            "path": _path(url, params),
            "is_write": method != "GET",
            "idempotency_key": str(headers.get("Idempotency-Key", ""))[:128],
            "sent_at": timezone.now(),
            "sent": summarise(body),
        }
        if fields["is_write"]:
            self.check_claims()
            rows = StepRequest.objects.bulk_create(
                [StepRequest(attempt=attempt, **fields) for attempt in self.attempts]
            )
            return _StoredWrite([row.pk for row in rows])
        return _PendingRead(self.attempts, fields)


def _answer(status: int, content: bytes, seconds: float) -> dict:
    return {"status": status, "duration_ms": round(seconds * 1000), "came_back": summarise(content)}


class _StoredWrite:
    def __init__(self, pks: list[int]):
        self.pks = pks

    def answered(self, status, content, seconds):
        StepRequest.objects.filter(pk__in=self.pks).update(**_answer(status, content, seconds))

    def lost(self, error, seconds):
        StepRequest.objects.filter(pk__in=self.pks).update(
            duration_ms=round(seconds * 1000), error=error[:255]
        )


class _PendingRead:
    def __init__(self, attempts, fields):
        self.attempts = attempts
        self.fields = fields

    def _store(self, **answer):
        StepRequest.objects.bulk_create(
            [StepRequest(attempt=a, **self.fields, **answer) for a in self.attempts]
        )

    def answered(self, status, content, seconds):
        self._store(**_answer(status, content, seconds))

    def lost(self, error, seconds):
        self._store(duration_ms=round(seconds * 1000), error=error[:255])


def earlier_write(step, before_attempt: int) -> StepRequest | None:
    """The last write an earlier attempt of `step` sent, if any: when a retry finds the work done,
    this is most likely what did it."""
    return (
        StepRequest.objects.filter(
            attempt__step_id=step.pk, attempt__number__lt=before_attempt, is_write=True
        )
        .select_related("attempt")
        .order_by("-attempt__number", "-sequence")
        .first()
    )


def describe(request: StepRequest) -> str:
    """One line for the batch page and the CSV: what was sent and what came back."""
    sent = f"{request.method} {request.path}"
    if request.status is None:
        why = f" ({request.error})" if request.error else ""
        return f"{sent} → sent, answer lost{why}"
    return f"{sent} → {request.status}"
