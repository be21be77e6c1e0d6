"""Keeps each tenant's calls under the API's limits, across every worker process.

A call first takes one of the tenant's concurrency slots, then a place in the tenant's rolling
minute. The API counts a call when it arrives; we can only count it when we send it, and on a
busy machine the time between the two varies. So a call holds its place from when it is sent
until a minute after its answer came back: by then the API's own minute has surely let it go,
whatever the delays, and no call is ever refused for being one too many.

Redis (settings.REDIS_URL) shares the counts between processes; without it each process keeps
its own, which only holds the limits when a single process talks to the tenant.

Why not the `limits` package: its windows stamp a call when it is counted and cannot move the
stamp to the answer, which is what keeps a busy worker under an API's count (see README).
"""

import logging
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext, suppress
from functools import cache

import redis
from django.conf import settings

from .errors import Throttled

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.02  # short enough not to waste a freed slot, long enough not to flood Redis
IN_FLIGHT = -1.0  # "every place is held by a call still in flight": no time to wait for yet


def time_scale() -> float:
    """How much faster than real time the clients run (benchmarks against the sandbox)."""
    return settings.API_TIME_SCALE


def minute_seconds(scale: float) -> float:
    return 60 / scale


@cache
def _redis(url: str) -> redis.Redis | None:
    if not url:
        return None
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        logger.warning("Redis does not answer at %s: API throttles count per process", url)
        return None
    return client


def _call_lease_seconds(max_wait: float) -> float:
    """How long a slot is held at most: a process killed during a call frees it then."""
    return max_wait + 2 * settings.HTTP_TIMEOUT_SECONDS + 5


# --- the rolling minute ---------------------------------------------------------------------


class _Window:
    """`calls` places per `seconds`; a place is taken when a call is sent and given back
    `seconds` after the call ended."""

    def __init__(self, calls: int, seconds: float, lease: float):
        self.calls, self.seconds, self.lease = calls, seconds, lease

    def _enter(self, name: str, member: str) -> float | None:
        """Take a place (None), or say how long until one frees (IN_FLIGHT: not known yet)."""
        raise NotImplementedError

    def _leave(self, name: str, member: str) -> None:
        raise NotImplementedError

    @contextmanager
    def hold(self, name: str, deadline: float) -> Iterator[None]:
        member = uuid.uuid4().hex
        while (wait := self._enter(name, member)) is not None:
            if wait == IN_FLIGHT:
                wait = POLL_SECONDS
            # jitter spreads the waiters that wake for the same freed place
            wait += random.uniform(0, POLL_SECONDS)
            if time.monotonic() + wait > deadline:
                raise Throttled(
                    f"{name}: the per-minute allowance is used up",
                    retry_after=wait,
                    problem="minute",
                )
            time.sleep(wait)
        try:
            yield
        finally:
            self._leave(name, member)


class _RedisWindow(_Window):
    """Two sorted sets per tenant, scored by when a place frees (Redis's own clock, in ms):
    calls in flight (freed by their lease if the process dies) and calls answered."""

    _ENTER = """
    local t = redis.call('TIME')
    local now = t[1] * 1000 + math.floor(t[2] / 1000)
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
    redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
    if redis.call('ZCARD', KEYS[1]) + redis.call('ZCARD', KEYS[2]) < tonumber(ARGV[1]) then
        redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
        return -2
    end
    local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    if #first == 0 then
        return -1
    end
    return tonumber(first[2]) - now
    """
    _LEAVE = """
    local t = redis.call('TIME')
    local now = t[1] * 1000 + math.floor(t[2] / 1000)
    redis.call('ZREM', KEYS[1], ARGV[2])
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), ARGV[2])
    redis.call('PEXPIRE', KEYS[2], ARGV[1])
    """

    def __init__(self, client: redis.Redis, calls: int, seconds: float, lease: float):
        super().__init__(calls, seconds, lease)
        self._enter_script = client.register_script(self._ENTER)
        self._leave_script = client.register_script(self._LEAVE)

    def _keys(self, name: str) -> list[str]:
        # Processes configured with other limits (a benchmark's time scale) count apart.
        key = f"unlinker:throttle:{name}:{self.calls}/{int(self.seconds * 1000)}ms"
        return [f"{key}:sent", f"{key}:answered"]

    def _enter(self, name: str, member: str) -> float | None:
        found = self._enter_script(
            keys=self._keys(name), args=[self.calls, int(self.lease * 1000), member]
        )
        if found == -2:
            return None
        return IN_FLIGHT if found == -1 else max(0, found) / 1000

    def _leave(self, name: str, member: str) -> None:
        with suppress(redis.RedisError):  # the lease frees the place in time
            self._leave_script(keys=self._keys(name), args=[int(self.seconds * 1000), member])


class _LocalWindow(_Window):
    def __init__(self, calls: int, seconds: float, lease: float):
        super().__init__(calls, seconds, lease)
        self._lock = threading.Lock()
        self._sent: dict[str, float] = {}
        self._answered: dict[str, float] = {}

    def _enter(self, name: str, member: str) -> float | None:
        with self._lock:
            now = time.monotonic()
            for held in (self._sent, self._answered):
                for key in [key for key, frees_at in held.items() if frees_at <= now]:
                    del held[key]
            if len(self._sent) + len(self._answered) < self.calls:
                self._sent[member] = now + self.lease
                return None
            if not self._answered:
                return IN_FLIGHT
            return min(self._answered.values()) - now

    def _leave(self, name: str, member: str) -> None:
        with self._lock:
            self._sent.pop(member, None)
            self._answered[member] = time.monotonic() + self.seconds


# --- calls in flight at once ----------------------------------------------------------------


class _LocalSemaphore:
    def __init__(self, size: int):
        self._semaphore = threading.BoundedSemaphore(size)

    @contextmanager
    def hold(self, name: str, deadline: float) -> Iterator[None]:
        if not self._semaphore.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise Throttled(f"{name}: no concurrent call slot", problem="concurrent")
        try:
            yield
        finally:
            self._semaphore.release()


class _RedisSemaphore:
    """Slots are leases in a sorted set scored by their expiry (Redis's own clock), so a process
    killed during a call frees its slot when the lease runs out."""

    _ACQUIRE = """
    local now = redis.call('TIME')
    local now_ms = now[1] * 1000 + math.floor(now[2] / 1000)
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
    if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
        return 0
    end
    redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]), ARGV[3])
    redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
    return 1
    """

    def __init__(self, client: redis.Redis, size: int, lease_seconds: float):
        self._client = client
        self._size = size
        self._lease_ms = int(lease_seconds * 1000)
        self._acquire = client.register_script(self._ACQUIRE)

    @contextmanager
    def hold(self, name: str, deadline: float) -> Iterator[None]:
        key = f"unlinker:throttle:{name}:leases"
        lease = uuid.uuid4().hex
        while not self._acquire(keys=[key], args=[self._size, self._lease_ms, lease]):
            if time.monotonic() >= deadline:
                raise Throttled(f"{name}: no concurrent call slot", problem="concurrent")
            time.sleep(POLL_SECONDS)
        try:
            yield
        finally:
            with suppress(redis.RedisError):  # the lease expires on its own
                self._client.zrem(key, lease)


class _Unbounded:
    def hold(self, name: str, deadline: float):
        return nullcontext()


class Throttle:
    """The call budget of one tenant of one API (`name`, e.g. "xero:<tenant id>")."""

    def __init__(
        self,
        name: str,
        calls_per_minute: int,
        concurrent: int | None = None,
        *,
        redis_url: str | None = None,
        scale: float | None = None,
        max_wait: float | None = None,
    ):
        scale = scale or time_scale()
        self.name = name
        self.concurrent = concurrent
        self.calls_per_minute = max(1, calls_per_minute)
        self.minute = minute_seconds(scale)
        self.max_wait = (
            max_wait if max_wait is not None else settings.API_THROTTLE_MAX_WAIT_SECONDS / scale
        )
        self.lease = _call_lease_seconds(self.max_wait)
        client = _redis(settings.REDIS_URL if redis_url is None else redis_url)
        if client is None:
            self._use_local()
        else:
            self._use_redis(client)

    def _use_redis(self, client: redis.Redis) -> None:
        self.window = _RedisWindow(client, self.calls_per_minute, self.minute, self.lease)
        self.semaphore = (
            _RedisSemaphore(client, self.concurrent, self.lease)
            if self.concurrent
            else _Unbounded()
        )
        self.shared = True

    def _use_local(self) -> None:
        self.window = _local_window(self.name, self.calls_per_minute, self.minute, self.lease)
        self.semaphore = _LocalSemaphore(self.concurrent) if self.concurrent else _Unbounded()
        self.shared = False

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a permission for one call; raises Throttled after max_wait without one."""
        deadline = time.monotonic() + self.max_wait
        try:
            permission = self._acquire(deadline)
        except redis.RedisError:
            logger.warning("Redis stopped answering: %s is throttled per process now", self.name)
            self._use_local()
            permission = self._acquire(deadline)
        with permission:
            yield

    def _acquire(self, deadline: float) -> ExitStack:
        with ExitStack() as stack:
            stack.enter_context(self.semaphore.hold(self.name, deadline))
            stack.enter_context(self.window.hold(self.name, deadline))
            return stack.pop_all()


_local_windows: dict[str, _LocalWindow] = {}
_local_windows_lock = threading.Lock()


def _local_window(name: str, calls: int, seconds: float, lease: float) -> _LocalWindow:
    """One in-process window per tenant, whichever Throttle object of this process counts."""
    with _local_windows_lock:
        window = _local_windows.get(name)
        if window is None or (window.calls, window.seconds) != (calls, seconds):
            window = _local_windows[name] = _LocalWindow(calls, seconds, lease)
        return window


_throttles: dict[str, Throttle] = {}
_throttles_lock = threading.Lock()


def throttle_for(api: str, tenant: str) -> Throttle:
    """The process-wide throttle of one tenant: every client of that tenant must share it, so
    that the local fallback counts all of this process's calls."""
    name = f"{api}:{tenant}"
    with _throttles_lock:
        if name not in _throttles:
            if api == "xero":
                limits = (settings.XERO_CALLS_PER_MINUTE, settings.XERO_CONCURRENT_CALLS)
            else:
                limits = (settings.ACTIONSTEP_CALLS_PER_MINUTE, None)
            _throttles[name] = Throttle(name, *limits)
        return _throttles[name]
