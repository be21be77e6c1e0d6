"""The per-tenant throttle: under the per-minute and concurrency limits, shared through Redis,
with a time scale so that a "minute" lasts a second here."""

import threading
import time
import uuid

import pytest
import redis

from tests.conftest import REDIS_URL
from unlinker.integrations import throttle as throttle_module
from unlinker.integrations.errors import Throttled
from unlinker.integrations.throttle import Throttle, _RedisSemaphore, _RedisWindow, throttle_for

SCALE = 60  # a minute lasts one second


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request):
    """The Redis URL of a throttle: none for the in-process fallback, else a reachable Redis
    (tests marked `redis` are skipped, with the reason, when none answers)."""
    return "" if request.param == "local" else REDIS_URL


def throttle(backend, per_min, concurrent=None, **kw):
    name = f"test:{uuid.uuid4().hex}"
    kw.setdefault("scale", SCALE)
    return Throttle(name, per_min, concurrent, redis_url=backend, **kw)


def run_calls(gate, calls, threads, hold=0.0):
    """`calls` calls through `gate` from `threads` threads; the start and end of each."""
    spans, lock, todo = [], threading.Lock(), list(range(calls))

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                todo.pop()
            with gate.slot():
                started = time.monotonic()
                time.sleep(hold)
                ended = time.monotonic()
            with lock:
                spans.append((started, ended))

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return sorted(spans)


def test_the_time_scale_compresses_the_minute():
    assert Throttle(f"test:{uuid.uuid4().hex}", 60, scale=1, redis_url="").minute == 60
    assert Throttle(f"test:{uuid.uuid4().hex}", 60, scale=60, redis_url="").minute == 1
    assert Throttle(f"test:{uuid.uuid4().hex}", 60, scale=7, redis_url="").minute == 60 / 7


def test_the_time_scale_comes_from_settings(settings):
    settings.API_TIME_SCALE = 60
    gate = Throttle(f"test:{uuid.uuid4().hex}", 60, redis_url="")
    assert gate.minute == 1
    assert gate.max_wait == settings.API_THROTTLE_MAX_WAIT_SECONDS / 60


def test_a_burst_stays_under_the_per_minute_limit(backend):
    gate = throttle(backend, per_min=10, max_wait=5)
    spans = run_calls(gate, calls=25, threads=6)
    starts = [start for start, _ in spans]
    # No (scaled) minute holds more than 10 calls. A thread can be descheduled for some
    # milliseconds between its permission and its timestamp: windows are 5% shorter here.
    assert max(sum(1 for s in starts if first <= s < first + 0.95) for first in starts) <= 10
    # and the throttle waited rather than refusing: 25 calls at 10 a "minute" span 2 of them
    assert starts[-1] - starts[0] >= 1.9


def test_a_call_holds_its_place_until_a_minute_after_its_answer(backend):
    """The API counts a call when it arrives, which can be later than when it was sent: the
    place is given back a (scaled) minute after the answer, not after the sending."""
    gate = throttle(backend, per_min=2, max_wait=5)
    spans = run_calls(gate, calls=3, threads=3, hold=0.3)
    (first_start, _), _second, (third_start, _) = spans
    # The third waits for the first place given back: a minute after the earlier of the two
    # answers (the two calls ran side by side; either may have ended first).
    first_answer = min(end for _, end in spans[:2])
    assert third_start >= first_answer + 1.0
    assert third_start - first_start >= 1.3


def test_while_every_place_is_in_flight_the_next_call_waits(backend):
    gate = throttle(backend, per_min=1, max_wait=5)
    spans = run_calls(gate, calls=2, threads=2, hold=0.2)
    (_, first_end), (second_start, _) = spans
    assert second_start >= first_end + 1.0


def test_a_burst_stays_under_the_concurrency_limit(backend):
    gate = throttle(backend, per_min=6000, concurrent=2)
    spans = run_calls(gate, calls=12, threads=6, hold=0.05)
    most = max(sum(1 for s, e in spans if s <= moment < e) for moment, _ in spans)
    assert most == 2


def test_no_slot_within_the_maximum_wait_raises_throttled(backend, monkeypatch):
    gate = throttle(backend, per_min=1, max_wait=0.2)
    with gate.slot():
        pass
    slept = []
    monkeypatch.setattr(throttle_module.time, "sleep", slept.append)
    with pytest.raises(Throttled) as caught, gate.slot():
        pass
    # The place frees a (scaled) minute after the first answer, later than the call may wait:
    # it is refused at once, without sleeping for a wait it cannot afford.
    assert slept == []
    assert caught.value.problem == "minute" and caught.value.retry_after > gate.max_wait


def test_no_concurrency_slot_within_the_maximum_wait(backend):
    gate = throttle(backend, per_min=6000, concurrent=1, max_wait=0.1)
    with gate.slot(), pytest.raises(Throttled) as caught, gate.slot():
        pass
    assert caught.value.problem == "concurrent"
    with gate.slot():  # the slot came back
        pass


@pytest.mark.redis
def test_processes_share_the_budget_through_redis():
    name = f"test:{uuid.uuid4().hex}"
    first, second = (Throttle(name, 4, 1, redis_url=REDIS_URL, scale=SCALE) for _ in range(2))
    assert first.shared and second.shared
    started = time.monotonic()
    for gate in (first, second, first, second, first):
        with gate.slot():
            pass
    assert time.monotonic() - started >= 0.9  # the fifth call waited for the window
    with first.slot(), pytest.raises(Throttled):
        second.max_wait = 0.05
        with second.slot():  # the one concurrency slot is taken by the other "process"
            pass


@pytest.mark.redis
def test_a_killed_process_does_not_keep_its_concurrency_slot():
    client = redis.Redis.from_url(REDIS_URL)
    semaphore = _RedisSemaphore(client, size=1, lease_seconds=0.3)
    name = f"test:{uuid.uuid4().hex}"
    held = semaphore.hold(name, deadline=time.monotonic() + 1)
    held.__enter__()  # and never left, as by a process that was killed
    with pytest.raises(Throttled), semaphore.hold(name, deadline=time.monotonic() + 0.1):
        pass
    with semaphore.hold(name, deadline=time.monotonic() + 1):  # once the lease ran out
        pass


@pytest.mark.redis
def test_a_killed_process_does_not_keep_its_place_in_the_minute():
    client = redis.Redis.from_url(REDIS_URL)
    # A "minute" of an hour: if the place comes back within the test, only the lease freed it.
    window = _RedisWindow(client, calls=1, seconds=3600.0, lease=0.3)
    name = f"test:{uuid.uuid4().hex}"
    held = window.hold(name, deadline=time.monotonic() + 1)
    held.__enter__()  # and never left, as by a process that was killed
    with pytest.raises(Throttled), window.hold(name, deadline=time.monotonic() + 0.1):
        pass
    with window.hold(name, deadline=time.monotonic() + 10):  # once the lease ran out
        pass


def test_without_redis_the_throttle_counts_in_process():
    gate = Throttle(f"test:{uuid.uuid4().hex}", 60, 5, redis_url="redis://127.0.0.1:1/0")
    assert not gate.shared
    with gate.slot():
        pass


@pytest.mark.parametrize("calls_per_minute", [7, 11])
def test_each_test_gets_throttles_made_with_its_own_settings(settings, calls_per_minute):
    """Run twice with other limits: the second run's throttle is not the first one's (the
    autouse fixture in tests/conftest.py forgets them between tests)."""
    settings.XERO_CALLS_PER_MINUTE = calls_per_minute
    assert throttle_for("xero", "tenant-of-this-test").calls_per_minute == calls_per_minute
