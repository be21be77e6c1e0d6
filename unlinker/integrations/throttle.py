"""Keeps each tenant's calls under the API's limits, across every worker process.

A call first takes one of the tenant's concurrency slots, then waits until the per-minute window
has room, so that the call leaves right after it is counted. Redis (settings.REDIS_URL) shares
the counts between processes; without it each process keeps its own, which only holds the
limits when a single process talks to the tenant.
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
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter

from .errors import Throttled

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.02  # short enough not to waste a freed slot, long enough not to flood Redis


def time_scale() -> float:
    """How much faster than real time the clients run (benchmarks against the sandbox)."""
    return settings.API_TIME_SCALE


def per_minute(calls: int, scale: float) -> RateLimitItem:
    """`calls` a minute, with the minute compressed by `scale`. `limits` counts windows in whole
    seconds, so a window shorter than a second becomes one second with proportionally more
    calls. One call of each window is held back: a call reaches the API a little after it is
    counted here, and varying latency can otherwise fit one call too many into the API's own
    window."""
    window = max(1, round(60 / scale))
    return RateLimitItemPerSecond(max(1, int(calls * window * scale / 60) - 1), window)


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


@cache
def _memory_storage() -> MemoryStorage:
    return MemoryStorage()


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
        self.rate = per_minute(calls_per_minute, scale)
        self.max_wait = (
            max_wait if max_wait is not None else settings.API_THROTTLE_MAX_WAIT_SECONDS / scale
        )
        client = _redis(settings.REDIS_URL if redis_url is None else redis_url)
        if client is None:
            self._use_local()
        else:
            self._use_redis(client)

    def _use_redis(self, client: redis.Redis) -> None:
        self.limiter = MovingWindowRateLimiter(
            RedisStorage("redis://", connection_pool=client.connection_pool)
        )
        # A lease covers the wait for the minute window plus the call itself.
        lease = self.max_wait + 2 * settings.HTTP_TIMEOUT_SECONDS + 5
        self.semaphore = (
            _RedisSemaphore(client, self.concurrent, lease) if self.concurrent else _Unbounded()
        )
        self.shared = True

    def _use_local(self) -> None:
        self.limiter = MovingWindowRateLimiter(_memory_storage())
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
            while not self.limiter.hit(self.rate, self.name):
                reset_at, _ = self.limiter.get_window_stats(self.rate, self.name)
                # jitter spreads the waiters that wake for the same freed place
                wait = max(reset_at - time.time(), 0) + random.uniform(0, POLL_SECONDS)
                if time.monotonic() + wait > deadline:
                    raise Throttled(
                        f"{self.name}: the per-minute allowance is used up",
                        retry_after=wait,
                        problem="minute",
                    )
                time.sleep(wait)
            return stack.pop_all()


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
