"""`python -m unlinker.sandbox perf`: how long seeding takes, and how fast the sandbox serves the
pages a full mirror sync reads (links with their bills, matters and contacts side-loaded)."""

import random
import statistics
import tempfile
import time
from pathlib import Path

from .control import SandboxControl, SandboxServer
from .seed import seed
from .store import Store

INCLUDE = {
    "xeroinvoicelinks": "bill,bill.action,bill.theirParticipant",
    "xeropaymentlinks": "billpayment,bill,bill.action,bill.theirParticipant",
}


def run(invoices: int, samples: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        db_path = Path(directory) / "sandbox.sqlite3"
        started = time.perf_counter()
        result = seed(Store(db_path), invoices)
        print(
            f"seed: {result['invoices']} invoices, {result['payments']} payments "
            f"in {time.perf_counter() - started:.1f} s"
        )
        with SandboxServer(db_path) as server:
            sandbox = SandboxControl(server.base_url)
            token = sandbox.issue_tokens("actionstep")
            session = sandbox.session
            session.headers.update(
                Authorization=f"Bearer {token['access_token']}",
                Accept="application/vnd.api+json",
            )
            rest = f"{token['api_endpoint']}/rest"
            _page_times(session, rest, samples, sandbox)
            _full_sync(session, rest, sandbox)


def _page_times(session, rest: str, samples: int, sandbox) -> None:
    url = f"{rest}/xeroinvoicelinks"
    params = {"pageSize": 200, "sort": "modifiedTimestamp", "include": INCLUDE["xeroinvoicelinks"]}
    first = session.get(url, params=params, timeout=60).json()
    pages = first["meta"]["paging"]["xeroinvoicelinks"]["pageCount"]
    since = sandbox.last_request_id()
    rng, wall = random.Random(1), []  # noqa: S311 (which pages to sample)
    for _ in range(samples):
        started = time.perf_counter()
        answer = session.get(url, params={**params, "page": rng.randint(1, pages)}, timeout=60)
        answer.raise_for_status()
        wall.append((time.perf_counter() - started) * 1000)
    served = [entry["duration_ms"] for entry in sandbox.requests(since=since)]
    print(
        f"a page of 200 xeroinvoicelinks with {params['include']} ({pages} pages), "
        f"{samples} random pages: median {statistics.median(wall):.1f} ms over HTTP "
        f"(p95 {statistics.quantiles(wall, n=20)[-1]:.1f} ms), "
        f"median {statistics.median(served):.1f} ms inside the sandbox"
    )


def _full_sync(session, rest: str, sandbox) -> None:
    """Every link record with its side-loads, page after page, as a full mirror sync reads."""
    since = sandbox.last_request_id()
    started, records, pages = time.perf_counter(), 0, 0
    for resource, include in INCLUDE.items():
        url = f"{rest}/{resource}"
        params = {"pageSize": 200, "sort": "modifiedTimestamp", "include": include}
        while url:
            body = session.get(url, params=params, timeout=60).json()
            params, pages = None, pages + 1  # nextPage carries the query
            records += len(body[resource])
            url = body["meta"]["paging"][resource]["nextPage"]
    served = sum(entry["duration_ms"] for entry in sandbox.requests(since=since)) / 1000
    print(
        f"full read of both link lists: {records} records in {pages} pages, "
        f"{time.perf_counter() - started:.1f} s ({served:.1f} s of it inside the sandbox)"
    )
