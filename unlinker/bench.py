"""`make bench`: the figures the issues set targets for, measured on this machine.

It sets up its own data in a database of its own (beside the one DATABASE_URL names, dropped at
the end), starts the sandbox and a real Celery worker, and prints one line per figure:

    name: value unit (target: <op> value) ok|MISS

It exits non-zero when any figure misses its target. BENCH_SCALE=0.1 runs it on a tenth of the
data, for a quick look (its figures are then not the ones the targets speak of).
"""

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
SCALE = float(os.environ.get("BENCH_SCALE", "1"))
# BENCH_ONLY=sync,unlink runs only those parts (lists, browser, sync, reconcile, unlink): for a
# quick look. "browser" needs "lists" (their data).
ONLY = {part for part in os.environ.get("BENCH_ONLY", "").split(",") if part}
RESULTS: list[tuple[str, float, str, str, float, bool]] = []


def n(count: int) -> int:
    return max(1, int(count * SCALE))


def figure(name: str, value: float, unit: str, op: str, target: float) -> None:
    ok = value <= target if op == "<=" else value >= target
    RESULTS.append((name, value, unit, op, target, ok))
    shown = f"{value:.3g}" if isinstance(value, float) else str(value)
    print(f"{name}: {shown} {unit} (target: {op} {target:g}) {'ok' if ok else 'MISS'}", flush=True)


def note(text: str) -> None:
    print(f"# {text}", flush=True)


# --- a database of the bench's own --------------------------------------------------------


@contextmanager
def bench_database():
    """A fresh database next to DATABASE_URL's (PostgreSQL), or a temporary SQLite file."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        import psycopg

        parts = urlsplit(url)
        name = parts.path.lstrip("/") + "_bench"
        admin = urlunsplit(parts._replace(scheme="postgresql"))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))
        note(f"database: PostgreSQL {parts.hostname}/{name}")
        try:
            yield
        finally:
            from django.db import connections

            connections.close_all()
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        directory = tempfile.mkdtemp(prefix="unlinker-bench-")
        os.environ["DATABASE_URL"] = f"sqlite:///{directory}/bench.sqlite3"
        note("database: SQLite (set DATABASE_URL to PostgreSQL for the figures the targets name)")
        yield


def setup_django() -> None:
    from unlinker import vardir

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "unlinker.settings")
    os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
    # It measures the sandbox on purpose, with DEBUG off; its workers inherit both settings,
    # and the keys in var/ with them.
    os.environ.setdefault("UNLINKER_SANDBOX", "1")
    vardir.init()
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = ["*"]
    call_command("migrate", verbosity=0)


# --- the sandbox and a worker --------------------------------------------------------------


@contextmanager
def sandbox_server():
    from unlinker.sandbox.control import SandboxControl, SandboxServer

    directory = Path(tempfile.mkdtemp(prefix="unlinker-bench-sandbox-"))
    with SandboxServer(directory / "sandbox.sqlite3") as server:
        yield SandboxControl(server.base_url, timeout=600)


def point_settings_at(sandbox) -> None:
    from django.conf import settings

    settings.ACTIONSTEP_TOKEN_URL = sandbox.actionstep_token_url
    settings.XERO_TOKEN_URL = sandbox.xero_token_url
    settings.XERO_CONNECTIONS_URL = sandbox.xero_connections_url
    settings.XERO_API_URL = sandbox.xero_api_url


@contextmanager
def celery_worker(env_extra: dict, options: tuple[str, ...] = ()):
    """The Procfile's worker (`unlinker worker`, the one definition of it), quieter, with the
    run's own `options` after it."""
    env = {**os.environ, **env_extra}
    log = Path(tempfile.mkdtemp(prefix="unlinker-bench-worker-")) / "worker.log"
    note(f"worker log: {log}")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "unlinker.cli",
            "worker",
            "--loglevel",
            "WARNING",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            *options,
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_until_ready(app, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if app.control.ping(timeout=0.5):
            return
    raise RuntimeError("the worker did not start")


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return 0.0


def full_sync(connection):
    """A sync as the Refresh button runs it: full the first time, incremental after."""
    from unlinker.mirror import services

    return services.sync_now(services.new_sync_run(connection))


def bulk_firm(connection, *, invoices: int, payments: int) -> None:
    """Mirror rows shaped like a firm's: a few thousand matters and contacts, two years of
    dates, mixed statuses, payments spread over the invoices."""
    import random
    from datetime import date, timedelta
    from decimal import Decimal

    from django.utils import timezone

    from unlinker.core.iterables import chunked
    from unlinker.mirror.models import LinkedInvoice, LinkedPayment
    from unlinker.mirror.services import recount_linked_payments

    rng = random.Random(7)
    now = timezone.now()
    statuses = ["AUTHORISED"] * 6 + ["PAID"] * 3 + ["DRAFT", "VOIDED"]

    def invoice_row(i: int) -> LinkedInvoice:
        matter, contact = rng.randrange(3000), rng.randrange(2000)
        return LinkedInvoice(
            connection=connection,
            actionstep_id=i,
            link_id=100_000_000 + i,
            link_status="linked" if rng.random() < 0.9 else "unlinked",
            actionstep_status="Open",
            xero_status=rng.choice(statuses),
            invoice_number=f"INV-{i:06d}",
            reference=f"Ref {rng.randrange(10**6)}",
            matter_id=matter,
            matter_name=f"Matter {matter} - Estate of Client {contact}",
            contact_id=contact,
            contact_name=f"Client {contact}",
            invoice_date=date(2024, 1, 1) + timedelta(days=rng.randrange(730)),
            total=Decimal(rng.randrange(5_000, 2_000_000)) / 100,
            currency="AUD",
            xero_invoice_id=f"{i:08x}-0000-4000-8000-000000000000",
            synced_at=now,
        )

    for chunk in chunked(range(1, invoices + 1), 5000):
        LinkedInvoice.objects.bulk_create([invoice_row(i) for i in chunk])
    first_pk = LinkedInvoice.objects.filter(connection=connection).order_by("pk").first().pk

    def payment_row(i: int) -> LinkedPayment:
        bill = rng.randrange(1, invoices + 1)
        return LinkedPayment(
            connection=connection,
            actionstep_id=i,
            link_id=200_000_000 + i,
            invoice_id=first_pk + bill - 1,
            invoice_actionstep_id=bill,
            link_status="linked" if rng.random() < 0.9 else "unlinked",
            actionstep_status="Active",
            xero_status="AUTHORISED",
            invoice_number=f"INV-{bill:06d}",
            reference=f"EFT {i}",
            matter_name=f"Matter {bill % 3000}",
            contact_name=f"Client {bill % 2000}",
            payment_date=date(2024, 1, 1) + timedelta(days=rng.randrange(730)),
            amount=Decimal(rng.randrange(1_000, 500_000)) / 100,
            xero_payment_id=f"{i:08x}-1111-4000-8000-000000000000",
            synced_at=now,
        )

    for chunk in chunked(range(1, payments + 1), 5000):
        LinkedPayment.objects.bulk_create([payment_row(i) for i in chunk])
    recount_linked_payments(connection.pk)


# --- the figures ----------------------------------------------------------------------------


def bench_list_pages() -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection as db
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from unlinker.connections.models import Connection

    invoices, payments = n(50_000), n(100_000)
    started = time.perf_counter()
    conn = Connection.objects.create(name="Bench list firm", actionstep_org_key="benchlist")
    bulk_firm(conn, invoices=invoices, payments=payments)
    note(
        f"list data: {invoices} invoices, {payments} payments in "
        f"{time.perf_counter() - started:.1f} s"
    )
    with db.cursor() as cursor:
        if db.vendor == "postgresql":
            cursor.execute("ANALYZE")

    user = get_user_model().objects.create_user("bench")
    user.groups.add(Group.objects.get(name="admin"))
    client = Client()
    client.force_login(user)
    invoice_url = reverse("mirror:invoice_list", args=[conn.pk])
    payment_url = reverse("mirror:payment_list", args=[conn.pk])
    pages = [
        (invoice_url, "?sort=-invoice_date"),
        (invoice_url, "?matter=Matter+1&sort=total"),
        (invoice_url, "?link_status=linked&has_payments=yes&sort=-total&page=3"),
        (invoice_url, "?q=INV-00012&sort=number"),
        (invoice_url, "?date_from=2025-01-01&date_to=2025-06-30&amount_min=100&amount_max=5000"),
        (payment_url, "?sort=-payment_date"),
        (payment_url, "?contact=Client+2&sort=amount&page=2"),
        (payment_url, "?xero_status=AUTHORISED&amount_min=50&sort=-amount"),
    ]
    timings, queries = [], set()
    for _round in range(8):
        for url, query in pages:
            with CaptureQueriesContext(db) as captured:
                started = time.perf_counter()
                response = client.get(url + query, headers={"HX-Request": "true"})
                timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url + query, response.status_code)
            queries.add(len(captured))
    timings.sort()
    figure(
        "list page median (filtered, sorted, 50 rows)", statistics.median(timings), "ms", "<=", 150
    )
    figure("list page p95", timings[int(len(timings) * 0.95) - 1], "ms", "<=", 400)
    figure("list page SQL queries (max over pages)", max(queries), "queries", "<=", 12)

    # The list export streams from a server-side cursor, each row written as it is read: its
    # memory does not grow with the list.
    tracemalloc.start()
    started = time.perf_counter()
    response = client.get(payment_url + "?_export=csv&sort=-amount")
    lines = sum(chunk.count(b"\n") for chunk in response.streaming_content)
    elapsed = time.perf_counter() - started
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert lines == payments + 1, lines
    note(f"CSV export of {payments} payments (sorted by amount) in {elapsed:.1f} s")
    figure(f"CSV export of {payments} payments: peak Python memory", peak / 2**20, "MB", "<=", 20)

    if wanted("browser"):
        bench_list_in_browser(user, invoice_url, invoices + payments)


BROWSER_PASSWORD = "bench-browser-password"  # noqa: S105 (a throwaway login of the bench's own)


def bench_list_in_browser(user, invoice_url: str, rows: int) -> None:
    """From navigation to a fully usable filtered invoice list, in Chromium, through the web
    server the Procfile runs (`unlinker web`): the page loaded, htmx ready, the rows shown."""
    from pathlib import Path

    chromium = Path("/usr/bin/chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        note("list in Chromium: needs Playwright (pip install -e '.[test]'): not measured")
        return
    if not chromium.exists():
        note("list in Chromium: needs /usr/bin/chromium (apt-get install chromium): not measured")
        return
    user.set_password(BROWSER_PASSWORD)
    user.save()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "HTTPS": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "DEBUG": "0",
        "UNLINKER_SANDBOX": "1",
    }
    web = subprocess.Popen(
        [sys.executable, "-m", "unlinker.cli", "web", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    query = "?link_status=linked&sort=-invoice_date&amount_min=100"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
        ]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(chromium), args=args)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"{base}/accounts/login/")
            page.get_by_label("Username").fill(user.username)
            page.get_by_label("Password").fill(BROWSER_PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_load_state()
            timings = []
            for round_ in range(12):
                page.goto(f"{base}{invoice_url}{query}&page={round_ % 3 + 1}", wait_until="commit")
                # Usable: the rows are on screen, the page's scripts ran, htmx is listening.
                page.wait_for_selector("#results table tbody tr", state="visible")
                page.wait_for_function("() => document.readyState === 'complete' && !!window.htmx")
                timings.append(page.evaluate("() => performance.now()"))
            browser.close()
    finally:
        web.terminate()
        web.wait(timeout=30)
    usable = statistics.median(timings[2:])  # the first two warm the server's caches
    note(f"list in Chromium: {len(timings) - 2} loads, {rows} rows in the lists")
    figure(
        f"filtered invoice list usable in Chromium at {rows} rows (median)",
        usable,
        "ms",
        "<=",
        500,
    )


def bench_sync(sandbox) -> None:
    from unlinker.connections.services import connect_sandbox_firm

    invoices = n(53_000)  # with their payments (most have one): just over 100,000 link records
    seeded = sandbox.seed(invoices=invoices, payments_per_invoice=[1, 1], name="Bench Sync Firm")
    note(
        f"sandbox seeded: {seeded['invoices']} invoices, {seeded['payments']} payments in "
        f"{seeded['seconds']} s"
    )
    connection = connect_sandbox_firm(sandbox, seeded["firm"]["orgkey"])
    started = time.perf_counter()
    run = full_sync(connection)
    elapsed = time.perf_counter() - started
    records = run.records_upserted
    figure(f"full sync of {records} records", elapsed, "s", "<=", 60 * max(SCALE, 0.01))
    since = sandbox.last_request_id()
    full_sync(connection)
    calls = sandbox.requests(since=since, api="actionstep")
    per_resource: dict[str, int] = {}
    for call in calls:
        resource = call["path"].split("/rest/")[-1].split("/")[0]
        per_resource[resource] = per_resource.get(resource, 0) + 1
    figure(
        "incremental sync, no change: requests per resource (max)",
        max(per_resource.values()),
        "requests",
        "<=",
        2,
    )
    return connection


def bench_reconcile(sandbox, connection) -> None:
    from django.conf import settings

    from unlinker.connections.clients import xero_client_for
    from unlinker.integrations.xero import XERO_INVOICES_PER_CALL
    from unlinker.mirror.models import LinkedInvoice
    from unlinker.reconciliation.models import ReconciliationRun
    from unlinker.reconciliation.services import run_reconciliation

    invoices = LinkedInvoice.objects.filter(connection=connection).count()
    # Xero's 60 calls a minute, a minute lasting a second: the reads are what is measured.
    sandbox.set_limits("xero", time_scale=60)
    settings.API_TIME_SCALE = 60
    run = ReconciliationRun.objects.create(connection=connection)
    started = time.perf_counter()
    run = run_reconciliation(run, xero_client_for(connection))
    note(
        f"reconciliation of {invoices} invoices: {run.reads_made} reads, "
        f"{time.perf_counter() - started:.1f} s, findings {json.dumps(run.counts)}"
    )
    figure(
        "reconciliation Xero reads per 1,000 invoices",
        run.reads_made * 1000 / invoices,
        "reads",
        "<=",
        1000 / XERO_INVOICES_PER_CALL,  # a read per 50 invoices at most
    )


def run_batch(
    sandbox,
    *,
    invoices: int,
    per_minute: int,
    time_scale: float,
    redis_url: str,
    worker_options: tuple[str, ...] = ("--pool", "threads", "--concurrency", "8"),
):
    """Plan and queue the unlinking of `invoices` invoices, each with one payment; let a real
    worker run it against the rate-limited sandbox. Returns the figures of the run."""
    from django.conf import settings

    from unlinker.connections.services import connect_sandbox_firm
    from unlinker.mirror.models import LinkedInvoice, LinkedPayment
    from unlinker.unlinking.models import FINISHED_STATES, StepState, UnlinkBatch, UnlinkStep
    from unlinker.unlinking.planning import PlanOptions, plan_unlink
    from unlinker.unlinking.services import create_batch

    # The seed leaves some invoices (or their payment) unlinked: seed more, choose `invoices`.
    seeded = sandbox.seed(
        invoices=invoices * 5 // 4, payments_per_invoice=[1, 1], name=f"Bench Unlink {invoices}"
    )
    connection = connect_sandbox_firm(sandbox, seeded["firm"]["orgkey"])
    full_sync(connection)
    linked = LinkedInvoice.objects.filter(
        connection=connection, link_status="linked", linked_payment_count__gt=0
    )
    chosen = list(linked[:invoices])
    payments = list(LinkedPayment.objects.filter(invoice__in=chosen))
    plan = plan_unlink(chosen, [], PlanOptions(), invoice_payments=payments)

    sandbox.set_limits("actionstep", per_minute=per_minute, time_scale=time_scale)
    env = {
        "API_TIME_SCALE": str(time_scale),
        "ACTIONSTEP_CALLS_PER_MINUTE": str(per_minute),
        "ACTIONSTEP_TOKEN_URL": settings.ACTIONSTEP_TOKEN_URL,
        "XERO_TOKEN_URL": settings.XERO_TOKEN_URL,
        "XERO_API_URL": settings.XERO_API_URL,
        "CELERY_BROKER_URL": redis_url,
        "REDIS_URL": redis_url,
    }
    from unlinker.celery import app

    app.conf.broker_url = redis_url
    app.control.purge()
    since = sandbox.last_request_id()
    with celery_worker(env, worker_options) as worker:
        wait_until_ready(app)
        started = time.perf_counter()
        batch = create_batch(
            connection=connection, user=None, selection={"source": "bench"}, planner=lambda _: plan
        ).batch
        steps = UnlinkStep.objects.filter(batch=batch)
        # Generous: the figures are read from the API's log, the deadline only ends a stuck run.
        deadline = started + 60 + len(plan.steps) * max(0.1, 6 / (per_minute * time_scale / 60))
        while time.perf_counter() < deadline:
            batch.refresh_from_db()
            if batch.is_settled:
                break
            time.sleep(0.25)
        elapsed = time.perf_counter() - started
        memory = peak_rss_mb(worker.pid)
    calls = [
        c
        for c in sandbox.requests(since=since, api="actionstep", limit=10**7)
        if "/rest/" in c["path"]
    ]
    if len(calls) > 1:  # the API's own clock: from the first call of the batch to the last
        first, last = (datetime.fromisoformat(calls[i]["at"]) for i in (0, -1))
        elapsed = (last - first).total_seconds()
    return {
        "steps": steps.count(),
        "done": steps.filter(state=StepState.DONE).count(),
        "failed": steps.filter(state=StepState.FAILED).count(),
        "settled": steps.filter(state__in=FINISHED_STATES).count(),
        "finished": batch.state == UnlinkBatch.State.FINISHED,  # every step done
        "elapsed": elapsed,
        "calls": len(calls),
        "throttled": sum(1 for c in calls if c["status"] == 429),
        "memory": memory,
    }


def bench_unlink(sandbox, redis_url: str) -> None:
    per_minute, time_scale = 120, 30.0  # 120 a minute, a minute lasting two seconds
    result = run_batch(
        sandbox,
        invoices=n(1000),
        per_minute=per_minute,
        time_scale=time_scale,
        redis_url=redis_url,
        worker_options=(),  # the worker exactly as the Procfile and docker-compose.yml run it
    )
    limit_per_second = per_minute * time_scale / 60
    throughput = result["calls"] / result["elapsed"] / limit_per_second
    note(
        f"unlink batch: {result['steps']} steps, {result['calls']} calls in "
        f"{result['elapsed']:.1f} s against a limit of {limit_per_second:g} calls/s"
    )
    figure("unlink throughput, fraction of the rate limit", throughput, "", ">=", 0.9)
    figure("unlink failed steps", result["failed"], "steps", "<=", 0)
    figure(
        "unlink calls answered 429",
        100 * result["throttled"] / max(result["calls"], 1),
        "%",
        "<=",
        1,
    )
    figure("unlink API calls per step", result["calls"] / result["steps"], "calls", "<=", 2)

    # One process running every step (8 threads): its memory is the figure.
    big = run_batch(
        sandbox, invoices=n(5000), per_minute=6000, time_scale=10.0, redis_url=redis_url
    )
    note(f"memory batch: {big['steps']} steps, {big['calls']} calls in {big['elapsed']:.1f} s")
    figure("memory batch: steps not finished", big["steps"] - big["settled"], "steps", "<=", 0)
    figure(
        f"worker peak memory through a {big['steps']}-step batch", big["memory"], "MB", "<=", 250
    )


def wanted(part: str) -> bool:
    return not ONLY or part in ONLY


def main() -> None:
    sys.path.insert(0, str(ROOT))
    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    with bench_database():
        setup_django()
        from unlinker.launcher import redis_answers

        if wanted("lists") or wanted("browser"):
            bench_list_pages()
        with sandbox_server() as sandbox:
            point_settings_at(sandbox)
            if wanted("sync") or wanted("reconcile"):
                connection = bench_sync(sandbox)
                if wanted("reconcile"):
                    bench_reconcile(sandbox, connection)
            if not wanted("unlink"):
                pass
            elif redis_answers(redis_url):
                bench_unlink(sandbox, redis_url)
            else:
                note(f"unlink figures need Redis for the worker: nothing answers at {redis_url}")
    missed = [r for r in RESULTS if not r[5]]
    print(f"{len(RESULTS) - len(missed)} figures ok, {len(missed)} missed", flush=True)
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
