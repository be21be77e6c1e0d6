"""The product walked as an accounting admin walks it, in headless Chromium: log in, find the
invoices, unlink them with their payments, watch the batch, retry what failed, export the
record, reconcile and clean up in Xero. The live server, a real Celery worker (through Redis)
and the sandbox run behind the browser; each stage leaves a screenshot in
test-artifacts/screenshots/.
"""

import re

import pytest

from tests.unlinking.support import assert_written_at_most_once, upstream_writes
from unlinker.unlinking import exports

from .pages import BatchPage, LinkedListPage, ReconciliationPage, SamePage, expect

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

SMITH = "Smith v Jones"
BROWN = "Estate of Brown"
BROWN_INVOICES = 26  # one more than the smallest page: "select all matching" needs two pages


def firm_bills() -> list[dict]:
    smith = {"matter": SMITH, "contact": "Alice Smith"}
    return [
        {**smith, "number": "INV-1001", "total": "1100.00",
         "payments": [{"amount": "500.00", "reference": "EFT 1"},
                      {"amount": "600.00", "reference": "EFT 2"}]},
        {**smith, "number": "INV-1002", "total": "220.00",
         "payments": [{"amount": "120.00", "reference": "Cheque 7"}]},
        {**smith, "number": "INV-1003", "total": "330.00"},
        *(
            {"matter": BROWN, "contact": "Bob Brown", "number": f"INV-2{n:03d}",
             "total": f"{100 + n}.00"}
            for n in range(1, BROWN_INVOICES + 1)
        ),
    ]  # fmt: skip


def test_unlink_two_invoices_with_their_payments_and_watch_the_batch(
    page, log_in, upstream, connect, worker, screenshots
):
    built = upstream.build(firm_bills(), name="Harbour Legal")
    connect(built["firm"])

    invoices = log_in(screenshot=lambda p: screenshots.take(p, "01-login.png"))
    expect(invoices.page.locator("#sync-panel")).to_contain_text("Not synced yet.")
    invoices.refresh_from_actionstep()  # the worker syncs; the panel polls, then reloads the page
    expect(invoices.count).to_have_text(f"{3 + BROWN_INVOICES} invoices")
    screenshots.take(page, "02-linked-invoices.png")

    same_page = SamePage(page)
    invoices.filter(**{"Matter (name or id)": SMITH})
    page.wait_for_url(re.compile(r"[?&]matter=Smith%20v%20Jones(&|$)"))  # a shareable link
    expect(invoices.count).to_have_text("3 invoices match the filter")
    expect(invoices.rows).to_have_count(3)
    same_page.assert_not_reloaded()  # htmx swapped the results

    unlink = page.get_by_role("button", name="Unlink from Xero")
    expect(unlink).to_be_disabled()  # until something is selected
    invoices.tick("INV-1001")
    invoices.tick("INV-1002")
    expect(unlink).to_be_enabled()
    screenshots.take(page, "03-filtered.png")

    plan = invoices.unlink()
    expect(plan.headline).to_have_text("5 steps to run")
    # the three payments applied to the two invoices were added by the plan, each before its
    # invoice
    expect(plan.added_steps).to_have_count(3)
    planned = plan.step_targets()
    assert len(planned) == 5
    for invoice, payments in {"INV-1001": ["EFT 1", "EFT 2"], "INV-1002": ["Cheque 7"]}.items():
        invoice_step = planned.index(next(t for t in planned if t.startswith(f"Invoice {invoice}")))
        for reference in payments:
            payment_step = planned.index(
                next(t for t in planned if t.startswith(f"Payment {reference} of"))
            )
            assert payment_step < invoice_step, planned
    screenshots.take(page, "04-plan.png", top=page.locator("#plan"))

    # Each Actionstep call takes half a second for a while, so that the page can be seen
    # showing a batch at work; then the rest goes at full speed.
    upstream.set_limits("actionstep", latency=0.5)
    since = upstream.last_request_id()
    batch = plan.queue(5)
    expect(batch.messages).to_contain_text(re.compile(r"Batch \d+ is queued"))
    same_page = SamePage(page)
    batch.wait_until_under_way(5)
    screenshots.take(page, "05-batch-running.png")
    upstream.set_limits("actionstep", latency=0)
    batch.wait_until_finished(5)
    # a full bar, all of it done
    expect(batch.progress_bar).to_have_attribute("aria-label", "5 done, 5 of 5 steps finished")
    same_page.assert_not_reloaded()  # the progress came by htmx polling
    screenshots.take(page, "06-batch-done.png")

    steps = batch.step_rows()
    assert [(s["#"], s["State"]) for s in steps] == [(str(n), "Done") for n in range(1, 6)]
    expect(batch.state_counts).to_contain_text("Done: 5")
    writes = upstream_writes(upstream, since)
    assert_written_at_most_once(writes)
    bills = built["bills"][:2]
    assert sorted(w.record for w in writes) == sorted(
        [str(b["link_id"]) for b in bills]
        + [str(p["link_id"]) for b in bills for p in b["payments"]]
    )

    rows = batch.export_csv()
    assert rows[0] == exports.HEADER
    column = {name: n for n, name in enumerate(exports.HEADER)}
    # A row per request: each payment's link re-read and unlinked (2), each invoice's link and
    # its payments' links re-read, then unlinked (3).
    assert len(rows) == 1 + 3 * 2 + 2 * 3
    assert {row[column["State"]] for row in rows[1:]} == {"Done"}
    targets = list(dict.fromkeys(row[column["Target"]] for row in rows[1:]))
    assert targets == planned  # in the plan's order
    assert {row[column["Requested by"]] for row in rows[1:]} == {"amelia"}
    assert {row[column["Answer"]] for row in rows[1:]} == {"200"}
    assert [row[column["Method"]] for row in rows[1:3]] == ["GET", "PUT"]


def test_select_all_matching_unlinks_every_invoice_of_the_filter(
    page, log_in, synced_firm, worker, screenshots
):
    synced_firm(firm_bills())
    invoices = log_in()
    invoices.filter(**{"Matter (name or id)": "Brown"})
    expect(invoices.count).to_have_text(f"{BROWN_INVOICES} invoices match the filter")
    invoices.show_rows_per_page(25)  # applies at once, by htmx
    page.wait_for_url(re.compile(r"per_page=25"))
    expect(invoices.rows).to_have_count(25)
    invoices.select_all_matching(BROWN_INVOICES)
    screenshots.take(page, "10-select-all.png")

    plan = invoices.unlink()
    expect(plan.headline).to_have_text(f"{BROWN_INVOICES} steps to run")
    expect(plan.added_steps).to_have_count(0)  # these invoices carry no payment
    screenshots.take(page, "11-select-all-plan.png")

    batch = plan.queue(BROWN_INVOICES)
    batch.wait_until_finished(BROWN_INVOICES)
    expect(batch.state_counts).to_contain_text(f"Done: {BROWN_INVOICES}")
    expect(page.get_by_text(re.compile(r"^All invoices matching matter=Brown"))).to_be_visible()

    # the list agrees: Brown's invoices are unlinked, the Smith v Jones ones still linked
    invoices.open_section("Linked Invoices")
    invoices = LinkedListPage(page)
    invoices.filter(**{"Matter (name or id)": "Brown", "Link status": "Unlinked"})
    expect(invoices.count).to_have_text(f"{BROWN_INVOICES} invoices match the filter")
    invoices.filter(**{"Link status": "Linked"})
    expect(invoices.count).to_have_text("0 invoices match the filter")
    invoices.filter(**{"Matter (name or id)": SMITH})
    expect(invoices.count).to_have_text("3 invoices match the filter")


def test_a_step_the_sandbox_fails_is_retried_from_the_batch_page(
    page, log_in, synced_firm, upstream, worker, screenshots
):
    built, _ = synced_firm(
        [{"matter": "Re Chen", "contact": "Wei Chen", "number": "INV-3001", "total": "500.00",
          "payments": [{"amount": "500.00", "reference": "Trust transfer"}]}]
    )  # fmt: skip
    payment_link = built["bills"][0]["payments"][0]["link_id"]
    # A 422 is not retried by the worker: the step fails at once, with the API's message.
    upstream.set_faults(
        "actionstep",
        rules=[
            {"method": "PUT", "path_contains": f"/xeropaymentlinks/{payment_link}", "status": 422}
        ],
    )

    invoices = log_in()
    invoices.tick("INV-3001")
    batch = invoices.unlink().queue(2)
    batch.wait_until_finished(2)
    steps = batch.step_rows()
    assert [s["State"] for s in steps] == ["Failed", "Skipped"]
    assert "Injected by the sandbox" in steps[0]["Result or reason"]
    assert "did not succeed" in steps[1]["Result or reason"]
    screenshots.take(page, "07-retry.png")

    upstream.clear_faults()
    batch.retry_failed(1)
    expect(batch.messages).to_contain_text("2 steps queued again.")
    batch.wait_until_finished(2)
    assert [s["State"] for s in batch.step_rows()] == ["Done", "Done"]
    screenshots.take(page, "09-retry-done.png")
    bill = built["bills"][0]
    assert upstream.actionstep("xeroinvoicelinks", bill["link_id"])["linkStatus"] == "Unlinked"


def test_the_reconciliation_finds_an_orphan_and_voids_it_in_xero(
    page, log_in, synced_firm, upstream, worker, screenshots
):
    built, _ = synced_firm(
        [
            {"matter": "Re Patel", "contact": "Priya Patel", "number": "INV-4001",
             "total": "880.00", "link": "Unlinked"},  # unlinked, still AUTHORISED in Xero
            {"matter": "Re Patel", "contact": "Priya Patel", "number": "INV-4002",
             "total": "440.00"},
        ]
    )  # fmt: skip
    orphan = built["bills"][0]

    log_in().open_section("Reconciliation")
    reconciliation = ReconciliationPage(page)
    reconciliation.run_now()
    finding = reconciliation.finding("Orphan in Xero", "INV-4001")
    expect(finding).to_have_count(1)
    expect(finding).to_contain_text("Authorised")
    expect(reconciliation.findings).to_have_count(1)  # INV-4002 agrees with Xero
    screenshots.take(page, "08-reconciliation.png")

    # The clean-up: tick the orphan, confirm, queue, watch the batch, and Xero has it voided.
    finding.get_by_role("checkbox").check()
    page.get_by_role("button", name="Clean up in Xero").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Clean up in Xero"))).to_be_visible()
    expect(page.get_by_text("Void invoice in Xero: 1")).to_be_visible()
    screenshots.take(page, "12-clean-up-plan.png")
    page.get_by_role("button", name="Queue 1 step", exact=True).click()
    page.wait_for_url(re.compile(r"/history/\d+/$"))
    batch = BatchPage(page)
    batch.wait_until_finished()
    states = {(s["Step"], s["State"]) for s in batch.step_rows()}
    assert ("Void invoice in Xero", "Done") in states
    assert not {state for _, state in states} & {"Failed", "Cancelled"}
    screenshots.take(page, "13-orphan-voided.png")
    assert upstream.xero_invoice(orphan["xero_invoice_id"])["Status"] == "VOIDED"


def test_every_section_opens_without_a_browser_error(page, log_in, synced_firm):
    """The `page` fixture fails the test on any console error (a CSP violation among them),
    script error or server error: each section of the navigation is opened, and a table sorted
    by htmx."""
    synced_firm(firm_bills())
    app = log_in()
    for section, heading in [
        ("Linked Payments", "Linked Xero Payments"),
        ("Task History", "Task history"),
        ("Reconciliation", "Reconciliation"),
        ("Connections", "Connections"),
        ("Linked Invoices", "Linked Xero Invoices"),
    ]:
        app.open_section(section)
        expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
    same_page = SamePage(page)
    page.get_by_role("columnheader", name="Total").get_by_role("link").click()
    page.wait_for_url(re.compile(r"sort=total"))
    expect(page.locator("th[aria-sort]")).to_have_text("Total")
    same_page.assert_not_reloaded()
