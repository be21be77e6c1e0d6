"""Fault drills: a batch run by real worker processes through a real Redis while things break.

After each drill every step is done, failed or skipped with a reason, nothing was done twice
(the sandbox's request log proves it) and no invoice was unlinked before its payments.
Each drill is bounded in time and stops by itself.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis
from django.db import connection as db

from tests.unlinking.support import (
    assert_payments_before_invoices,
    assert_written_at_most_once,
    queue,
    synced,
    upstream_writes,
)
from unlinker.unlinking import executor, exports
from unlinker.unlinking.executor import MAX_ATTEMPTS
from unlinker.unlinking.models import StepAttempt, StepKind, StepState, UnlinkBatch, UnlinkStep

ROOT = Path(__file__).resolve().parents[2]
DRILL_SECONDS = 120

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        shutil.which("redis-server") is None, reason="needs the redis-server program"
    ),
]


@pytest.fixture(autouse=True)
def _needs_postgres():
    if db.vendor != "postgresql":
        pytest.skip("worker processes share the test database only on PostgreSQL (DATABASE_URL)")


class PrivateRedis:
    """A Redis of the drill's own, so that stopping it harms nothing else."""

    def __init__(self, directory: Path):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("the drill's Redis did not start")

    def stop(self):
        if self.process:
            self.process.kill()
            self.process.wait()
            self.process = None


class Workers:
    """Celery worker processes with the environment a deployment would give them."""

    def __init__(self, env: dict, log_dir: Path):
        self.env, self.log_dir, self.process, self.started = env, log_dir, None, 0

    def start(self):
        self.started += 1
        log = (self.log_dir / f"worker-{self.started}.log").open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "unlinker.cli",
                "worker",  # the Procfile's worker, with the drill's options
                "--pool",
                "threads",
                "--concurrency",
                "4",
                "--loglevel",
                "INFO",
                "--without-mingle",
                "--without-gossip",
                "--hostname",
                f"drill{self.started}@%h",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def drill(upstream, settings, tmp_path, connect):
    """A firm of 24 invoices with a payment each, synced; a private Redis; worker processes
    pointed at the test database and the sandbox. Yields helpers; cleans up everything."""
    built = upstream.build(
        [{"total": "500.00", "payments": [{"amount": "500.00"}]} for _ in range(24)]
    )
    connection = synced(connect, built)
    broker = PrivateRedis(tmp_path).start()
    settings.STEP_STALE_SECONDS = 3
    from unlinker.celery import app

    original_broker = app.conf.broker_url
    app.conf.broker_url = broker.url
    reset_producer_pool(app)

    database = db.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
        f"{database['PORT'] or 5432}/{database['NAME']}",
        "REDIS_URL": broker.url,
        "CELERY_BROKER_URL": broker.url,
        "XERO_API_URL": settings.XERO_API_URL,
        "XERO_TOKEN_URL": settings.XERO_TOKEN_URL,
        "ACTIONSTEP_TOKEN_URL": settings.ACTIONSTEP_TOKEN_URL,
        "API_TIME_SCALE": "20",
        "HTTP_TIMEOUT_SECONDS": "2",
        "STEP_STALE_SECONDS": "3",
        "PYTHONUNBUFFERED": "1",
    }
    workers = Workers(env, tmp_path)

    yield SimpleNamespace(
        built=built,
        connection=connection,
        broker=broker,
        workers=workers,
        upstream=upstream,
        since=upstream.last_request_id(),
    )
    workers.stop()
    broker.stop()
    app.conf.broker_url = original_broker
    reset_producer_pool(app)


def reset_producer_pool(app):
    """Make this process enqueue through the broker now configured. Celery keeps its pools once
    built; it builds new ones (for the current broker URL) when they are unset."""
    app._pool = None
    app.amqp._producer_pool = None


def done_steps(batch) -> int:
    return UnlinkStep.objects.filter(batch=batch, state=StepState.DONE).count()


def wait(batch, until, seconds=DRILL_SECONDS):
    """Run the sweep now and then, as beat does, until `until(batch)` holds. On a timeout, the
    steps' states go to the test's output to show where it stuck."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if until(batch):
            return True
        executor.sweep()
        time.sleep(0.5)
    states = UnlinkStep.objects.filter(batch=batch).values_list("pk", "state", "attempts", "error")
    print("steps at the timeout:", list(states))
    return False


def finished(batch) -> bool:
    return UnlinkBatch.objects.filter(pk=batch.pk, state=UnlinkBatch.State.FINISHED).exists()


def settled(batch) -> bool:
    """Every step finished, whichever way: finished, finished with problems, cancelled."""
    return UnlinkBatch.objects.filter(pk=batch.pk, state__in=UnlinkBatch.SETTLED_STATES).exists()


def assert_clean_finish(d, batch, allow_failed=False):
    steps = list(UnlinkStep.objects.filter(batch=batch))
    states = {s.state for s in steps}
    if allow_failed:
        assert states <= {StepState.DONE, StepState.FAILED, StepState.SKIPPED}, states
        assert all(s.error for s in steps if s.state != StepState.DONE)
    else:
        assert states == {StepState.DONE}, [(s.pk, s.state, s.error) for s in steps]
    writes = upstream_writes(d.upstream, d.since)
    assert_written_at_most_once(writes)
    assert_payments_before_invoices(writes, d.built)


def test_worker_killed_twice_mid_batch(drill):
    drill.upstream.set_limits("actionstep", latency=0.05)  # each call takes a moment
    batch = queue(drill.connection, drill.built["bills"])
    drill.workers.start()
    for kill_after in (8, 24):
        assert wait(batch, lambda b, n=kill_after: done_steps(b) >= n, 60)
        drill.workers.kill()  # SIGKILL: no chance to finish or acknowledge anything
        drill.workers.start()
    assert wait(batch, finished), "the batch did not finish after the restarts"
    assert_clean_finish(drill, batch)


def test_redis_restarted_mid_batch(drill):
    drill.upstream.set_limits("actionstep", latency=0.05)
    batch = queue(drill.connection, drill.built["bills"])
    drill.workers.start()
    assert wait(batch, lambda b: done_steps(b) >= 10, 60)
    drill.broker.stop()  # every queued message is lost with it (nothing is saved)
    time.sleep(1)
    drill.broker.start()
    assert wait(batch, finished), "the batch did not finish after Redis came back"
    assert_clean_finish(drill, batch)


def test_a_fifth_of_the_calls_fail(drill):
    drill.upstream.set_faults(
        "actionstep",
        rates={"429": 0.07, "500": 0.07, "timeout": 0.06},
        timeout_seconds=3,
        seed=7,
    )
    batch = queue(drill.connection, drill.built["bills"])
    drill.workers.start()
    assert wait(batch, settled), "the batch did not finish under faults"
    drill.upstream.clear_faults()
    assert_clean_finish(drill, batch, allow_failed=True)
    assert done_steps(batch) > 0


def test_database_connection_dropped_once(drill):
    drill.upstream.set_limits("actionstep", latency=0.05)
    batch = queue(drill.connection, drill.built["bills"])
    drill.workers.start()
    assert wait(batch, lambda b: done_steps(b) >= 10, 60)
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    assert wait(batch, finished), "the batch did not finish after the database dropped"
    assert_clean_finish(drill, batch)


def test_a_step_that_crashes_every_time_ends_failed_with_its_reason(drill):
    """A poison step: whatever an attempt raises counts, and after MAX_ATTEMPTS the step fails
    with the reason, its dependents are skipped, and the sweep never runs it again."""
    bills = drill.built["bills"][:2]
    batch = queue(drill.connection, bills)
    poison = UnlinkStep.objects.get(batch=batch, position=1)  # the first payment's unlink
    assert poison.kind == StepKind.UNLINK_PAYMENT
    # The mirror row behind it is gone: the action fails with an AttributeError, every time.
    UnlinkStep.objects.filter(pk=poison.pk).update(payment=None)
    drill.workers.start()
    assert wait(batch, settled), "the batch never ended"
    poison.refresh_from_db()
    assert poison.state == StepState.FAILED
    assert poison.attempts == MAX_ATTEMPTS
    assert f"attempt {MAX_ATTEMPTS} of {MAX_ATTEMPTS}: AttributeError" in poison.error
    attempts = StepAttempt.objects.filter(step=poison).order_by("number")
    assert [a.number for a in attempts] == list(range(1, MAX_ATTEMPTS + 1))
    assert all("AttributeError" in a.detail for a in attempts)
    invoice = UnlinkStep.objects.get(batch=batch, position=2)
    assert invoice.state == StepState.SKIPPED and "did not succeed" in invoice.error
    others = UnlinkStep.objects.filter(batch=batch, position__gt=2)
    assert {s.state for s in others} == {StepState.DONE}
    batch.refresh_from_db()
    assert batch.state == UnlinkBatch.State.PROBLEMS
    for _ in range(3):
        executor.sweep()
    time.sleep(1)
    poison.refresh_from_db()
    assert poison.attempts == MAX_ATTEMPTS and poison.state == StepState.FAILED


def test_a_worker_killed_between_its_write_and_its_record(drill):
    """The write went out and acted; the worker died before the answer came. The audit shows
    the write as sent with its answer lost, and the retry that finds the work done says so."""
    bill = drill.built["bills"][0]
    link = bill["payments"][0]["link_id"]
    drill.upstream.set_faults(
        "actionstep",
        rules=[
            {
                "method": "PUT",
                "path_contains": f"/xeropaymentlinks/{link}",
                "status": "timeout",
                "after": True,
                "times": 1,
            }
        ],
        timeout_seconds=60,
    )
    batch = queue(drill.connection, [bill])
    drill.workers.env["HTTP_TIMEOUT_SECONDS"] = "50"  # it waits for the answer: we kill it then
    drill.workers.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        put = drill.upstream.requests(
            since=drill.since, method="PUT", path_contains=f"/xeropaymentlinks/{link}"
        )
        if put:
            break
        time.sleep(0.05)
    assert put and put[0]["acted"], "the write never reached the sandbox"
    drill.workers.kill()
    drill.workers.env["HTTP_TIMEOUT_SECONDS"] = "2"
    drill.workers.start()
    assert wait(batch, settled), "the batch never ended after the worker died"

    step = UnlinkStep.objects.get(batch=batch, position=1)
    assert step.state == StepState.DONE
    assert step.result.startswith("already done (by attempt 1's write, whose answer was lost)")
    first, *later = StepAttempt.objects.filter(step=step).order_by("number")
    assert first.outcome == StepAttempt.Outcome.INTERRUPTED
    sent = list(first.requests.order_by("sequence"))
    assert [(r.method, r.status) for r in sent] == [("GET", 200), ("PUT", None)]
    assert sent[1].answer_lost
    assert later and [r.method for r in later[-1].requests.all()] == ["GET"]  # nothing re-sent
    rows = [
        row for row in exports._rows(batch, UnlinkStep.objects.filter(batch=batch)) if row[1] == 1
    ]
    answers = [row[exports.HEADER.index("Answer")] for row in rows]
    assert "sent, answer lost" in answers
    writes = upstream_writes(drill.upstream, drill.since)
    assert_written_at_most_once(writes)
