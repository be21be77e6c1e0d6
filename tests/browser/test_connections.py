"""Connections and teams walked in headless Chromium, by clicking: connect Actionstep and Xero
through the sandbox's consent pages (under the page's strict CSP, which BrowserLog would catch
refusing the redirect), reconnect both after a refused token, and give a new viewer a login
who then sees what a viewer may see. Each stage leaves screenshots at 1440x900 and 1920x1080
in test-artifacts/screenshots/.
"""

import re

import pytest
from django.contrib.auth import get_user_model

from tests.connections.test_connecting import refuse_the_refresh_token
from unlinker.accounts.roles import role_of
from unlinker.connections.models import Connection
from unlinker.mirror.models import SyncRun

from .conftest import PASSWORD
from .pages import BACKGROUND_WORK_MS, LoginPage, expect

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

SIZES = {"1440": {"width": 1440, "height": 900}, "1920": {"width": 1920, "height": 1080}}


def shoot(page, screenshots, name: str) -> None:
    """The page at both sizes people use it at, then back to the test's own size."""
    size = page.viewport_size
    for label, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        screenshots.take(page, f"connections-{name}-{label}.png")
    page.set_viewport_size(size)


def log_in(page, username: str, password: str) -> None:
    LoginPage(page).open()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def allow_on_consent_page(page, provider: str) -> None:
    """The sandbox's consent page, as the provider's own would be: allow access."""
    expect(page.get_by_role("heading", name=f"{provider} (sandbox)")).to_be_visible()
    page.get_by_role("button", name="Allow access").click()
    page.wait_for_url(re.compile(r"/connections/"))


def test_connect_actionstep_and_xero_by_clicking(
    page, admin_with_password, upstream, worker, screenshots
):
    upstream.seed(invoices=12, name="Harbour Legal")
    log_in(page, admin_with_password.username, PASSWORD)
    expect(page.get_by_text("There is no connection yet")).to_be_visible()
    page.get_by_role("link", name="Go to Connections").click()
    shoot(page, screenshots, "01-empty")

    page.get_by_label("Time zone").select_option("Australia/Perth")
    page.get_by_role("button", name="Connect an Actionstep organisation").click()
    expect(page).to_have_url(re.compile(r"/actionstep/api/oauth/authorize"))
    screenshots.take(page, "connections-02-actionstep-consent.png")
    allow_on_consent_page(page, "Actionstep")
    expect(page.locator(".messages")).to_contain_text(
        "is connected, and its first sync has started. Now connect Xero."
    )
    shoot(page, screenshots, "03-actionstep-connected")

    page.get_by_role("button", name=re.compile(r"^Connect Xero for ")).click()
    expect(page).to_have_url(re.compile(r"/xero/identity/connect/authorize"))
    allow_on_consent_page(page, "Xero")
    messages = page.locator(".messages")
    expect(messages).to_contain_text("is paired and ready")
    # Xero names the organisation's zone (the sandbox's: Brisbane): it wins over the choice
    expect(messages).to_contain_text("Australia/Brisbane, the Xero organisation's")
    expect(messages).not_to_contain_text("Now connect Xero")
    table = page.get_by_role("table", name="Connected firms")
    expect(table).to_contain_text("paired")
    expect(table.get_by_role("button", name=re.compile("Connect Xero"))).to_have_count(0)
    shoot(page, screenshots, "04-paired")

    connection = Connection.objects.get()
    assert connection.is_paired and connection.timezone == "Australia/Brisbane"
    # the first sync ran in the worker: the list shows the firm's invoices
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Linked Invoices").click()
    expect(page.locator("#list-count")).to_have_text("12 invoices", timeout=BACKGROUND_WORK_MS)


def test_reconnect_both_providers_after_refused_tokens(
    page, log_in, connect, upstream, worker, screenshots
):
    connection = connect(upstream.seed(invoices=5, name="Harbour Legal")["firm"])
    refuse_the_refresh_token(connection, "xero")
    refuse_the_refresh_token(connection, "actionstep")
    log_in().open_section("Connections")
    table = page.get_by_role("table", name="Connected firms")
    expect(table.locator(".badge.bad")).to_have_count(2)  # "needs reconnecting", both sides
    shoot(page, screenshots, "05-needs-reconnecting")

    table.get_by_role("button", name=f"Reconnect Xero for {connection.name}").click()
    allow_on_consent_page(page, "Xero")
    expect(page.locator(".messages")).to_have_text(
        f"Xero is reconnected for {connection.name}; a sync has started."
    )
    table.get_by_role("button", name=f"Reconnect Actionstep for {connection.name}").click()
    allow_on_consent_page(page, "Actionstep")
    expect(page.locator(".messages")).to_have_text(
        f"Actionstep org {connection.actionstep_org_key} is reconnected, and a sync has started."
    )
    expect(table.locator(".badge.bad")).to_have_count(0)
    expect(table.get_by_role("button", name=re.compile("Reconnect"))).to_have_count(0)
    shoot(page, screenshots, "06-reconnected")

    # the sync after reconnecting ran with the new tokens
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Linked Invoices").click()
    expect(page.locator("#sync-panel")).to_contain_text(
        "Synced from Actionstep", timeout=BACKGROUND_WORK_MS
    )
    assert SyncRun.objects.filter(connection=connection, state=SyncRun.State.DONE).exists()


def test_an_admin_adds_a_viewer_who_sees_what_a_viewer_may(page, log_in, synced_firm, screenshots):
    _, connection = synced_firm([{"number": "INV-1", "total": "110.00"}], name="Harbour Legal")
    log_in().open_section("Connections")
    page.get_by_role("link", name=f"Manage the team of {connection.name}").click()
    expect(page.get_by_role("heading", name=f"Team of {connection.name}")).to_be_visible()
    shoot(page, screenshots, "07-team")

    # the Create a login form, by keyboard alone
    new = page.get_by_role("region", name="Create a login")
    new.get_by_label("Username").focus()
    page.keyboard.type("vera")
    page.keyboard.press("Tab")
    page.keyboard.type("Vera")
    page.keyboard.press("Tab")
    page.keyboard.type("Vu")
    focused = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert focused != "none"  # focus is visible
    new.get_by_label("Role").select_option("viewer")
    new.get_by_label("Give them a temporary password").check()
    new.get_by_role("button", name="Create the login").focus()
    page.keyboard.press("Enter")
    notice = page.locator(".notice.temporary")
    expect(notice).to_contain_text("login vera")
    password = notice.locator("code.secret").inner_text()
    shoot(page, screenshots, "08-temporary-password")
    members = page.get_by_role("table", name=f"Members of {connection.name}")
    expect(members.get_by_role("row", name=re.compile("Vera Vu"))).to_contain_text("vera")

    page.get_by_role("button", name="Log out").click()
    LoginPage(page).open()
    page.get_by_label("Username").fill("vera")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Choose your password")).to_be_visible()
    shoot(page, screenshots, "09-choose-password")
    page.get_by_label("Old password").fill(password)
    page.get_by_label("New password", exact=True).fill("harbour lights at dusk")
    page.get_by_label("New password confirmation").fill("harbour lights at dusk")
    page.get_by_role("button", name="Save my password").click()
    page.wait_for_url(re.compile(r"/linked/\d+/invoices/"))

    # what a viewer sees: the list, no Refresh, no Unlink, no checkboxes, no Connections
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Connections")).to_have_count(0)
    expect(page.locator("#list-count")).to_have_text("1 invoice")
    expect(page.get_by_role("button", name="Refresh from Actionstep")).to_have_count(0)
    expect(page.get_by_role("button", name="Unlink from Xero")).to_have_count(0)
    expect(page.get_by_role("checkbox")).to_have_count(0)
    nav.get_by_role("link", name="Task History").click()
    empty = page.get_by_text("Operators and admins start them from the linked lists")
    expect(empty).to_be_visible()
    expect(page.get_by_text("select invoices or payments")).to_have_count(0)
    shoot(page, screenshots, "10-viewer-history")
    nav.get_by_role("link", name="Reconciliation").click()
    expect(page.get_by_role("button", name="Run the reconciliation now")).to_have_count(0)
    vera = get_user_model().objects.get(username="vera")
    assert role_of(vera) == "viewer" and vera.check_password("harbour lights at dusk")


def test_a_set_password_link_by_email_then_a_role_change_and_a_removal(
    page, log_in, synced_firm, mailbox, screenshots
):
    _, connection = synced_firm([{"number": "INV-1", "total": "110.00"}], name="Harbour Legal")
    log_in().open_section("Connections")
    page.get_by_role("link", name=f"Manage the team of {connection.name}").click()
    new = page.get_by_role("region", name="Create a login")
    new.get_by_label("Username").fill("sam")
    new.get_by_label("Email", exact=True).fill("sam@harbour.example")
    new.get_by_label("Role").select_option("operator")
    new.get_by_role("button", name="Create the login").click()
    expect(page.locator(".messages")).to_contain_text("A link to choose a password went to")

    (message,) = mailbox.wait_for(1)
    (link,) = re.findall(r"https?://\S+/accounts/set-password/\S+/", message.get_content())
    other = page.context.browser.new_context(viewport=page.viewport_size)
    sam = other.new_page()
    sam.goto(link)
    expect(sam.get_by_role("heading", name="Choose your password")).to_be_visible()
    sam.get_by_label("New password", exact=True).fill("sails over the bay")
    sam.get_by_label("New password confirmation").fill("sails over the bay")
    sam.get_by_role("button", name="Save my password").click()
    expect(sam.get_by_role("heading", name="Your password is saved")).to_be_visible()
    sam.get_by_role("link", name="Log in").click()
    sam.get_by_label("Username").fill("sam")
    sam.get_by_label("Password").fill("sails over the bay")
    sam.get_by_role("button", name="Log in").click()
    sam.wait_for_url(re.compile(r"/linked/\d+/invoices/"))
    expect(sam.get_by_role("button", name="Refresh from Actionstep")).to_be_visible()  # operator
    other.close()

    page.reload()
    page.get_by_label("Role of sam").select_option("viewer")
    page.get_by_role("button", name="Change role of sam").click()
    expect(page.locator(".messages")).to_have_text("sam is now viewer.")
    page.get_by_role("link", name="Remove sam").click()
    expect(page.get_by_role("heading", name=re.compile("Remove sam from"))).to_be_visible()
    shoot(page, screenshots, "11-remove")
    page.get_by_role("button", name="Remove from the team").click()
    expect(page.locator(".messages")).to_contain_text("sam is no longer in the team")
    assert not connection.members.filter(username="sam").exists()
