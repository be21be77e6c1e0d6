"""Rate limits as the real APIs apply them, counted in this process (gunicorn runs one worker).

Xero, per tenant: calls in flight, a rolling minute and a rolling day, plus an app-wide minute;
a refused call is not counted. Actionstep publishes no figure: an optional calls-per-minute
limit, off by default. `time_scale` shrinks the windows (60: a "minute" lasts a second) so that
benchmarks can meet the limits quickly; `latency` holds every call that long, as a real API
would, so that concurrency limits can be met at all.
"""

import math
import threading
import time
from collections import defaultdict, deque
from dataclasses import asdict, dataclass, fields, replace

MINUTE, DAY = 60.0, 86400.0


@dataclass(frozen=True)
class XeroLimits:
    per_minute: int = 60
    concurrent: int = 5
    per_day: int = 5000
    app_per_minute: int = 10000
    time_scale: float = 1.0
    latency: float = 0.0


@dataclass(frozen=True)
class ActionstepLimits:
    per_minute: int | None = None
    time_scale: float = 1.0
    latency: float = 0.0


@dataclass
class Verdict:
    problem: str | None  # None: go ahead; else minute, day, concurrent or appminute
    retry_after: int | None = None
    remaining: dict[str, int] | None = None


class _Window:
    """Times of the calls of the last `span` seconds."""

    def __init__(self):
        self.calls: deque[float] = deque()

    def count(self, now: float, span: float) -> int:
        while self.calls and self.calls[0] <= now - span:
            self.calls.popleft()
        return len(self.calls)

    def retry_after(self, now: float, span: float) -> int:
        if not self.calls:  # a limit of zero: a whole window
            return max(1, math.ceil(span))
        return max(1, math.ceil(self.calls[0] + span - now))


class _Tenant:
    def __init__(self):
        self.minute, self.day, self.in_flight = _Window(), _Window(), 0


def _updated(current, changes: dict):
    known = {f.name for f in fields(current)}
    unknown = set(changes) - known
    if unknown:
        raise ValueError(f"unknown limits: {', '.join(sorted(unknown))}")
    return replace(current, **changes)


class XeroLimiter:
    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.limits = XeroLimits()
            self._tenants: dict[str, _Tenant] = defaultdict(_Tenant)
            self._app = _Window()

    def configure(self, changes: dict) -> None:
        with self._lock:
            self.limits = _updated(self.limits, changes)

    def acquire(self, tenant_id: str) -> Verdict:
        """Count one call of the tenant, or say which limit refuses it."""
        with self._lock:
            limits, now = self.limits, time.monotonic()
            minute, day = MINUTE / limits.time_scale, DAY / limits.time_scale
            tenant = self._tenants[tenant_id]
            counts = (
                tenant.day.count(now, day),
                tenant.minute.count(now, minute),
                self._app.count(now, minute),
            )
            verdict = Verdict(None)
            if counts[0] >= limits.per_day:
                verdict = Verdict("day", tenant.day.retry_after(now, day))
            elif tenant.in_flight >= limits.concurrent:
                verdict = Verdict("concurrent", 1)
            elif counts[1] >= limits.per_minute:
                verdict = Verdict("minute", tenant.minute.retry_after(now, minute))
            elif counts[2] >= limits.app_per_minute:
                verdict = Verdict("appminute", self._app.retry_after(now, minute))
            else:
                for window in (tenant.day, tenant.minute, self._app):
                    window.calls.append(now)
                tenant.in_flight += 1
                counts = tuple(n + 1 for n in counts)
            verdict.remaining = {
                "X-DayLimit-Remaining": max(0, limits.per_day - counts[0]),
                "X-MinLimit-Remaining": max(0, limits.per_minute - counts[1]),
                "X-AppMinLimit-Remaining": max(0, limits.app_per_minute - counts[2]),
            }
            return verdict

    def release(self, tenant_id: str) -> None:
        with self._lock:
            self._tenants[tenant_id].in_flight -= 1

    def snapshot(self) -> dict:
        with self._lock:
            return asdict(self.limits)


class ActionstepLimiter:
    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.limits = ActionstepLimits()
            self._window = _Window()

    def configure(self, changes: dict) -> None:
        with self._lock:
            self.limits = _updated(self.limits, changes)

    def admit(self) -> bool:
        with self._lock:
            limit = self.limits.per_minute
            if limit is None:
                return True
            now = time.monotonic()
            if self._window.count(now, MINUTE / self.limits.time_scale) >= limit:
                return False
            self._window.calls.append(now)
            return True

    def snapshot(self) -> dict:
        with self._lock:
            return asdict(self.limits)
