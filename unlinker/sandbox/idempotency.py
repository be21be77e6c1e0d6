"""Xero's Idempotency-Key: a retried write with the same key and the same request gets the
stored answer without acting again; the same key on a different request is refused.

Answers are kept `ttl` seconds (Xero keeps them only minutes: a key protects a quick retry, not
a re-run hours later). Server errors and rate-limit refusals are not stored: the retry acts.
"""

import hashlib
import threading
import time
from dataclasses import dataclass

from .web import Response

DEFAULT_TTL = 300.0


@dataclass
class _Entry:
    fingerprint: str
    stored_at: float
    response: Response | None = None  # None while the first request is still running


def fingerprint(req) -> str:
    digest = hashlib.sha256()
    for part in (req.method, req.path, req.query_string):
        digest.update(part.encode() + b"\n")
    digest.update(req.body)
    return digest.hexdigest()


class Idempotency:
    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.ttl = DEFAULT_TTL
            self._entries: dict[tuple[str, str], _Entry] = {}

    def begin(self, scope: str, key: str, req) -> tuple[str, Response | None]:
        """ "new" (go ahead, then call `finish`), "replay" with the stored answer, "mismatch"
        (the key was used for another request) or "in_flight" (its first use still runs)."""
        now, print_ = time.monotonic(), fingerprint(req)
        with self._lock:
            expired = [k for k, e in self._entries.items() if e.stored_at < now - self.ttl]
            for stale in expired:
                del self._entries[stale]
            entry = self._entries.get((scope, key))
            if entry is None:
                self._entries[(scope, key)] = _Entry(print_, now)
                return "new", None
            if entry.fingerprint != print_:
                return "mismatch", None
            if entry.response is None:
                return "in_flight", None
            return "replay", entry.response

    def finish(self, scope: str, key: str, response: Response) -> None:
        with self._lock:
            if response.status >= 500 or response.status == 429:
                self._entries.pop((scope, key), None)
            elif (scope, key) in self._entries:
                self._entries[(scope, key)].response = response
