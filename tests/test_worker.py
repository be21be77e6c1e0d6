"""A real Celery worker runs a task end to end: through Redis, and through the filesystem
transport that `make run` falls back to when there is no Redis."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.workers import private_worker
from unlinker.celery import app as celery_app
from unlinker.core.models import WorkerHeartbeat
from unlinker.core.tasks import heartbeat

ROOT = Path(__file__).resolve().parent.parent


def wait_for(predicate, timeout=20.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_worker_runs_a_task_through_redis():
    assert celery_app.conf.broker_url.startswith("redis://")
    with private_worker("worker-test"):
        heartbeat.delay("redis-test-worker")
        assert wait_for(lambda: WorkerHeartbeat.objects.filter(worker="redis-test-worker").exists())


@pytest.mark.slow
def test_worker_process_runs_a_task_through_the_filesystem_broker(tmp_path):
    """As `make run` without Redis: `unlinker init`, then the Procfile's worker; kombu keeps all
    its folders, its control folder too, under var/broker (not in the working directory)."""
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(
        {
            "UNLINKER_VAR_DIR": str(tmp_path),
            "CELERY_BROKER_URL": "filesystem://",
            "DJANGO_SETTINGS_MODULE": "unlinker.settings",
        }
    )
    python = [sys.executable]
    workdir = tmp_path / "workdir"  # where the processes start: nothing may be written there
    workdir.mkdir()
    subprocess.run([*python, "-m", "unlinker.cli", "init"], cwd=workdir, env=env, check=True)
    subprocess.run(
        [*python, str(ROOT / "manage.py"), "migrate", "-v0"], cwd=workdir, env=env, check=True
    )
    worker = subprocess.Popen(
        [*python, "-m", "unlinker.cli", "worker", "--pool", "solo", "--loglevel", "WARNING"],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        subprocess.run(
            [
                *python,
                "-c",
                "import django; django.setup();"
                "from unlinker.core.tasks import heartbeat; heartbeat.delay('fs-worker')",
            ],
            cwd=workdir,
            env=env,
            check=True,
            timeout=60,
        )

        def seen():
            with sqlite3.connect(tmp_path / "unlinker.sqlite3") as db:
                rows = db.execute(
                    "select count(*) from core_workerheartbeat where worker = 'fs-worker'"
                ).fetchone()
            return rows[0] == 1

        assert wait_for(seen, timeout=60, interval=0.5), worker.stderr and "worker did not run it"
        assert list((tmp_path / "broker" / "control").glob("*.exchange"))
        assert list(workdir.iterdir()) == []
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_worker_keeps_its_database_connection_between_tasks():
    """One PostgreSQL backend serves task after task (Celery's Django fix-up would otherwise
    open a new one for each), and a connection that broke is replaced before the next task."""
    from celery.signals import task_postrun
    from django.db import connection

    backends = []

    def record(**_kwargs):
        backends.append(connection.connection.info.backend_pid if connection.connection else None)
        if len(backends) == 3:
            connection.close()  # the worker's thread ends here: the test database can be dropped

    task_postrun.connect(record, weak=False)
    try:
        with private_worker("worker-test"):
            for n in range(3):
                heartbeat.delay(f"reuse-{n}")
                assert wait_for(lambda n=n: len(backends) == n + 1)
    finally:
        task_postrun.disconnect(record)
    assert None not in backends and len(set(backends)) == 1
