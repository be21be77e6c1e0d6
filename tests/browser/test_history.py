"""Task History and a batch's destructive actions, in Chromium: the newest batch first, a filter
by person; Cancel asks first, then the batch reads "Cancelled (N of M not run)" and its steps
can be queued again; a plan that deletes in Actionstep says so beside a red button."""

import re

import pytest

from tests.unlinking.support import queue
from unlinker.unlinking import executor
from unlinker.unlinking.models import StepState, UnlinkBatch

from .pages import expect

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def firm(synced_firm):
    return synced_firm(
        [
            {"total": "500.00", "payments": [{"amount": "200.00"}]},
            {"total": "300.00"},
            {"total": "120.00"},
        ]
    )


def test_history_newest_first_filtered_and_a_cancel_that_asks_first(
    page, log_in, firm, make_user, screenshots
):
    built, connection = firm
    older = queue(connection, built["bills"][1:2])
    older.steps.update(state=StepState.DONE)
    executor.finish_batch_if_settled(older.pk)
    UnlinkBatch.objects.filter(pk=older.pk).update(created_by=make_user("olive", "operator"))
    newer = queue(connection, built["bills"][:1])  # no worker: its two steps wait
    log_in()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Task History").click()
    rows = page.locator("#results table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text(str(newer.pk))
    expect(rows.first).to_contain_text("Queued")
    expect(rows.nth(1)).to_contain_text("Finished")
    page.get_by_label("Queued by").select_option(label="olive")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("olive")
    screenshots.take(page, "history-filtered.png")

    page.goto(f"/history/{newer.pk}/")
    page.get_by_role("link", name="Cancel 2 steps not started…").click()
    expect(page.get_by_role("heading", name=f"Cancel batch {newer.pk}?")).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text("can be queued again")
    page.get_by_role("button", name="Cancel 2 steps").click()
    expect(page.locator(".messages")).to_contain_text("2 steps cancelled")
    expect(page.locator("#batch-state")).to_have_text("Cancelled (2 of 2 not run)")
    page.get_by_role("button", name="Queue 2 cancelled steps again").click()
    expect(page.locator(".messages")).to_contain_text("2 steps queued again")
    expect(page.locator("#batch-state")).not_to_contain_text("Cancelled")
    assert newer.steps.filter(state=StepState.PENDING).count() == 2


def test_a_plan_that_deletes_says_so_beside_a_red_button(page, log_in, firm):
    built, connection = firm
    invoices = log_in()
    invoices.tick("INV-000103")
    plan = invoices.unlink()
    queue_button = page.get_by_role("button", name=re.compile(r"Queue \d+ steps?"))
    expect(queue_button).to_have_class(re.compile(r"\bprimary\b"))
    page.get_by_label(re.compile("Delete it in Actionstep")).check()
    warning = page.locator("#plan-destroys")
    expect(warning).to_contain_text("This cannot be undone: 1 invoice deleted in Actionstep")
    expect(queue_button).to_have_class(re.compile(r"\bdanger\b"))
    expect(queue_button).to_have_attribute("aria-describedby", "plan-destroys")
    assert plan is not None and not UnlinkBatch.objects.exists()  # nothing queued
