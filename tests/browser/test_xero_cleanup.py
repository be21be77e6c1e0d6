"""The clean-up in Xero walked in headless Chromium at 1440x900: the plan page shows what Xero's
lock dates block, what is allocated to each invoice it would void, the invoices a batch payment
shares, and the calls to Xero; "remove allocations first" and "free the number" change the plan
as they are ticked; the batch then does exactly what the plan said, with a history note on each
record changed. Screenshots in test-artifacts/screenshots/ (and docs/, see pages.py)."""

import re
from datetime import date, timedelta

import pytest

from unlinker.connections.clients import xero_client_for
from unlinker.core.display import format_date
from unlinker.mirror import services as mirror

from .pages import PlanPage, expect

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

WIDE = {"width": 1440, "height": 900}
MATTER = "Re Okafor"
TODAY = date.today()
OLD = (TODAY - timedelta(days=75)).isoformat()
LOCK = TODAY - timedelta(days=45)
RECENT = (TODAY - timedelta(days=10)).isoformat()


def bills() -> list[dict]:
    okafor = {"matter": MATTER, "contact": "Ngozi Okafor"}
    return [
        {**okafor, "number": "INV-5001", "total": "770.00", "invoice_date": OLD},
        {**okafor, "number": "INV-5002", "total": "1320.00", "invoice_date": RECENT,
         "allocations": [{"kind": "CREDITNOTE", "amount": "220.00", "date": RECENT},
                         {"kind": "PREPAYMENT", "amount": "300.00", "date": RECENT}]},
        {**okafor, "number": "INV-5003", "total": "440.00", "invoice_date": RECENT,
         "payments": [{"amount": "440.00", "reference": "Batch 12", "batch": "b12",
                       "date": RECENT}]},
        {"matter": "Re Lindqvist", "contact": "Eva Lindqvist", "number": "INV-5004",
         "total": "210.00", "invoice_date": RECENT,
         "payments": [{"amount": "210.00", "reference": "Batch 12", "batch": "b12",
                       "date": RECENT}]},
        {**okafor, "number": "INV-5005", "total": "550.00", "invoice_date": RECENT},
    ]  # fmt: skip


@pytest.fixture
def wide_page(browser, live_server):
    from .pages import BrowserLog

    context = browser.new_context(base_url=live_server.url, viewport=WIDE)
    page = context.new_page()
    log = BrowserLog(page)
    yield page
    context.close()
    log.assert_clean()


def test_the_plan_shows_lock_dates_allocations_and_batch_payments_and_runs_as_shown(
    wide_page, admin_with_password, upstream, connect, worker, screenshots
):
    from .conftest import PASSWORD
    from .pages import LoginPage

    page = wide_page
    built = upstream.build(
        bills(), name="Okafor Legal", organisation={"period_lock_date": LOCK.isoformat()}
    )
    connection = connect(built["firm"])
    connection.members.add(admin_with_password)
    mirror.sync_now(mirror.new_sync_run(connection, full=True))
    mirror.refresh_xero_status(connection.pk, xero_client_for(connection))  # as after a sync
    by_number = {bill["number"]: bill for bill in built["bills"]}

    invoices = LoginPage(page).open().log_in(admin_with_password.username, PASSWORD)
    invoices.filter(**{"Matter (name or id)": MATTER})
    expect(invoices.count).to_have_text("4 invoices match the filter")
    for number in ("INV-5001", "INV-5002", "INV-5003", "INV-5005"):
        invoices.tick(number)
    plan = invoices.unlink()
    shown = format_date(LOCK)
    expect(page.locator("#xero-locks")).to_contain_text(f"Xero's lock dates: period {shown}")

    # the clean-up chosen: each refusal of Xero is on the plan before anything is sent
    page.get_by_role("checkbox", name=re.compile(r"Clean up in Xero")).check()
    locked = plan.steps.filter(has_text="Void invoice in Xero: Invoice INV-5001")
    expect(locked.locator(".badge.locked")).to_have_text("locked")
    expect(locked).to_contain_text(
        f"blocked by Xero's period lock date {shown}: the firm's adviser must move it first"
    )
    expect(page.locator("#plan-locked")).to_contain_text(
        "1 change in Xero is dated on or before a lock date"
    )
    credited = plan.steps.filter(has_text="Void invoice in Xero: Invoice INV-5002")
    expect(credited).to_contain_text("Allocated to it in Xero: credit note")
    expect(credited).to_contain_text("choose \u201cremove allocations first\u201d")
    shared = plan.steps.filter(has_text="Delete payment in Xero: Payment Batch 12")
    expect(shared).to_contain_text("also pays INV-5004 (210.00)")
    expect(page.locator("#plan-xero-calls")).to_contain_text("history notes")

    page.get_by_role("checkbox", name=re.compile(r"Remove allocations first")).check()
    removals = plan.steps.filter(has_text="Remove allocation in Xero")
    expect(removals).to_have_count(2)
    page.get_by_role("checkbox", name=re.compile(r"Free the number")).check()
    expect(plan.steps.filter(has_text="Void invoice in Xero: Invoice INV-5005")).to_contain_text(
        "Renamed INV-5005-VOID in the call that voids it: INV-5005 is free"
    )
    expect(page.locator("#plan-destroys")).to_contain_text("2 allocations removed in Xero")
    screenshots.take(
        page, "12-plan-xero-rules.png", top=page.locator(".plan-options h2", has_text="In Xero")
    )
    screenshots.take(
        page, "13-plan-xero-steps.png", top=page.locator("#plan h2", has_text="The steps, in order")
    )

    headline = PlanPage(page).headline.inner_text()
    steps = int(re.match(r"([\d,]+) steps? to run", headline)[1])
    shown_steps = page.locator("#plan ol.steps > li").evaluate_all(
        "items => items.map(item => [item.value, item.innerText.split(':')[0]])"
    )
    batch = plan.queue(steps)
    batch.wait_until_finished()
    rows = batch.step_rows()
    assert [(int(r["#"]), r["Step"]) for r in rows] == [tuple(s) for s in shown_steps]
    screenshots.take(page, "14-xero-cleanup-done.png")

    # Xero as the plan said: the locked invoice and the batch payment's untouched, the
    # credited one voided after its allocations, the plain one renamed as it was voided
    assert upstream.xero_invoice(by_number["INV-5001"]["xero_invoice_id"])["Status"] == "AUTHORISED"
    assert upstream.xero_invoice(by_number["INV-5003"]["xero_invoice_id"])["Status"] == "PAID"
    credited_copy = upstream.xero_invoice(by_number["INV-5002"]["xero_invoice_id"])
    assert (credited_copy["Status"], credited_copy["InvoiceNumber"]) == ("VOIDED", "INV-5002-VOID")
    plain = upstream.xero_invoice(by_number["INV-5005"]["xero_invoice_id"])
    assert (plain["Status"], plain["InvoiceNumber"]) == ("VOIDED", "INV-5005-VOID")
    notes = [r["Details"] for r in upstream.xero_history(by_number["INV-5005"]["xero_invoice_id"])]
    assert any(
        re.fullmatch(
            r"Renamed from INV-5005 to INV-5005-VOID and voided by Unlinker batch \d+ for "
            r"Amelia: unlinked from Actionstep; INV-5005 is free for the invoice approved again",
            note,
        )
        for note in notes
    ), notes
