"""Accessibility, in Chromium, at 1280 px: axe-core (vendored in tests/browser/vendor, never from
a CDN) on every page of the product, as each role sees it, with zero serious or critical
violations and no page wider than the screen; and the main job done with the keyboard alone,
focus visible at every stop.

axe is run through Playwright's evaluate (the DevTools protocol), so the pages keep their own
strict CSP: nothing is loaded into them."""

import re
from pathlib import Path

import pytest

from tests.reconciliation.support import reconcile
from tests.unlinking.support import queue
from unlinker.unlinking.models import StepState, UnlinkStep

from .conftest import PASSWORD
from .pages import LoginPage, expect

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
BLOCKING = {"serious", "critical"}


def violations(page) -> list[str]:
    """axe's serious and critical findings on the page as it is now, one line each."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text())
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ["violations"]});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}));
        }"""
    )
    return [
        f"{page.url}: {v['impact']} {v['id']} ({v['help']}) at {v['nodes']}"
        for v in result
        if v["impact"] in BLOCKING
    ]


def too_wide(page) -> list[str]:
    """A page wider than a 1280 px screen scrolls sideways: every page must fit."""
    width = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('.table-wrap, body')]"
        ".map(e => e.scrollWidth - e.clientWidth))"
    )
    return [f"{page.url}: {width} px wider than the screen"] if width > 1 else []


def log_in(page, username: str) -> None:
    LoginPage(page).open()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


@pytest.fixture
def scene(synced_firm, make_user, fast_passwords):
    """A firm with its lists, a batch with a failed and a cancelled step, a reconciliation run,
    and a login per role (members of the firm)."""
    built, connection = synced_firm(
        [
            {"total": "500.00", "payments": [{"amount": "200.00"}]},
            {"total": "300.00", "link": "Unlinked", "xero_status": "AUTHORISED"},
            {"total": "120.00"},
        ]
    )
    batch = queue(connection, built["bills"][:1])
    UnlinkStep.objects.filter(batch=batch, position=1).update(
        state=StepState.FAILED, error="HTTP 500: the sandbox failed"
    )
    UnlinkStep.objects.filter(batch=batch, position=2).update(state=StepState.CANCELLED)
    reconcile(connection)
    people = {}
    for role in ("viewer", "operator", "admin"):
        person = make_user(f"{role}-ax", role)
        person.set_password(PASSWORD)
        person.save()
        connection.members.add(person)
        people[role] = person
    return connection, batch, people


def pages_of(connection, batch) -> list[str]:
    pk = connection.pk
    return [
        f"/linked/{pk}/invoices/",
        f"/linked/{pk}/payments/",
        f"/linked/{pk}/invoices/?q=zzz-no-match",
        f"/linked/{pk}/invoices/?date_from=not-a-date",
        "/history/",
        f"/history/{batch.pk}/",
        f"/reconciliation/{pk}/",
        "/accounts/password/",
    ]


ADMIN_PAGES = ["/connections/", "/connections/{pk}/team/", "/connections/{pk}/disconnect/"]
OPERATOR_PAGES = ["/history/{batch}/cancel/"]


def test_every_page_has_no_serious_or_critical_violation(page, scene, live_server):
    connection, batch, people = scene
    UnlinkStep.objects.filter(batch=batch, position=2).update(state=StepState.PENDING)
    found = []
    for role, person in people.items():
        page.context.clear_cookies()
        log_in(page, person.username)
        urls = pages_of(connection, batch)
        if role != "viewer":
            urls += [u.format(batch=batch.pk) for u in OPERATOR_PAGES]
        if role == "admin":
            urls += [u.format(pk=connection.pk) for u in ADMIN_PAGES]
        for url in urls:
            page.goto(url)
            found += violations(page)
            found += too_wide(page)
        if role == "viewer":
            continue
        # The plan page and its confirmation, reached as people reach them: by clicking.
        page.goto(f"/linked/{connection.pk}/invoices/")
        page.get_by_role("checkbox", name=re.compile("Select INV")).first.check()
        page.get_by_role("button", name="Unlink from Xero").click()
        expect(page.get_by_role("heading", name=re.compile("Unlink from Xero"))).to_be_visible()
        found += violations(page)
        if role == "admin":
            page.goto(f"/reconciliation/{connection.pk}/")
            found += violations(page)
    page.context.clear_cookies()
    page.goto("/accounts/login/")
    found += violations(page)
    assert found == [], "\n".join(found)


def test_the_job_can_be_done_with_the_keyboard_alone(page, scene):
    """Log in, filter, tick an invoice, open the plan and queue it: Tab, typing, Space and
    Enter only; every focused control shows its focus."""
    connection, _, people = scene
    LoginPage(page).open()
    page.get_by_label("Username").focus()
    page.keyboard.type(people["operator"].username)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/linked/\d+/"))

    def tab_to(locator, limit=80):
        for _ in range(limit):
            page.keyboard.press("Tab")
            if locator.evaluate("el => el === document.activeElement"):
                outline = locator.evaluate(
                    "el => { const s = getComputedStyle(el);"
                    " return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0"
                    " || s.boxShadow !== 'none'; }"
                )
                assert outline, f"no visible focus on {locator}"
                return
        raise AssertionError(f"Tab never reached {locator}")

    search = page.get_by_role("searchbox").first
    if not search.count():
        search = page.get_by_label(re.compile("Search|Number or reference")).first
    tab_to(search)
    page.keyboard.type("INV-000103")
    page.keyboard.press("Enter")
    expect(page.locator("#list-count")).to_contain_text("1 invoice")
    box = page.get_by_role("checkbox", name=re.compile("Select INV-000103"))
    tab_to(box)
    page.keyboard.press("Space")
    expect(box).to_be_checked()
    tab_to(page.get_by_role("button", name="Unlink from Xero"))
    page.keyboard.press("Enter")
    queue_button = page.get_by_role("button", name=re.compile(r"Queue \d+ steps?"))
    expect(queue_button).to_be_visible()
    tab_to(queue_button, limit=200)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/history/\d+/$"))
    expect(page.locator(".messages")).to_contain_text("is queued")
