"""Disconnecting, in Chromium: the admin is asked first and told what will happen; afterwards the
connection is archived, its unfinished batch cancelled, Xero told (the sandbox's log shows the
DELETE /connections/{id} and the revocation), and its history still opens: the batch, its CSV,
the lists, read-only."""

import csv
import io
import re
from pathlib import Path

import pytest

from tests.unlinking.support import queue
from unlinker.connections.models import Connection
from unlinker.unlinking.models import UnlinkBatch

from .pages import expect

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def test_disconnect_keeps_the_history_and_revokes_at_xero(
    page, log_in, synced_firm, upstream, screenshots
):
    built, connection = synced_firm(
        [{"total": "500.00", "payments": [{"amount": "200.00"}]}, {"total": "300.00"}]
    )
    batch = queue(connection, built["bills"][:1])  # no worker: its steps wait
    log_in()
    since = upstream.last_request_id()

    page.goto(page.url.split("/linked/")[0] + "/connections/")
    page.get_by_role("link", name=re.compile(f"Disconnect… {re.escape(connection.name)}")).click()
    expect(page.get_by_role("heading", name=f"Disconnect {connection.name}?")).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text("2 steps not started yet")
    expect(page.get_by_role("main")).to_contain_text("stay readable and exportable")
    screenshots.take(page, "disconnect-01-confirm.png")

    page.get_by_role("button", name=f"Disconnect and archive {connection.name}").click()
    page.wait_for_url(re.compile(r"/connections/$"))
    messages = page.locator(".messages")
    expect(messages).to_contain_text("is disconnected and archived: its history is kept")
    expect(messages).to_contain_text("2 steps not started yet were cancelled")
    expect(messages).to_contain_text("removed from the Xero organisation")
    archived = page.get_by_role("table", name="Archived connections")
    expect(archived).to_contain_text(connection.name)
    screenshots.take(page, "disconnect-02-archived.png")

    connection.refresh_from_db()
    assert connection.disconnected_at is not None
    assert UnlinkBatch.objects.get(pk=batch.pk).state == UnlinkBatch.State.CANCELLED
    calls = upstream.requests(since=since, api="xero")
    assert sum(c["method"] == "DELETE" and "/connections/" in c["path"] for c in calls) == 1
    assert sum(c["path"].endswith("/connect/revocation") for c in calls) == 1

    # The history opens from the archived row: the task history, the batch, its CSV.
    archived.get_by_role("link", name=re.compile("Task history")).click()
    page.get_by_role("link", name=str(batch.pk), exact=True).click()
    expect(page.locator("#batch-state")).to_have_text("Cancelled (2 of 2 not run)")
    expect(page.get_by_role("main")).to_contain_text("its history stays here, read-only")
    expect(page.get_by_role("button", name=re.compile("Queue .* again"))).to_have_count(0)
    screenshots.take(page, "disconnect-03-batch.png")
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("as CSV")).click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text("utf-8-sig"))))
    assert len(rows) == 3 and {row[7] for row in rows[1:]} == {"Cancelled"}

    page.goto(page.url.split("/history/")[0] + f"/linked/{connection.pk}/invoices/")
    expect(page.get_by_role("main")).to_contain_text("read-only")
    expect(page.get_by_role("button", name="Unlink from Xero")).to_have_count(0)
    assert Connection.objects.filter(pk=connection.pk).exists()
