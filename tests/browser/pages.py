"""Page objects for the browser tests: what a user does on each page, found the way a user finds
it (labels, button and link names, the text shown), so that a test reads as the walk it is.

Every wait is for something the page shows; the waits that cover background work (a sync, a
batch, a reconciliation) allow for a slow machine.
"""

import csv
import io
import re
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# A machine without a browser shows here, where the test modules import the page objects: they
# are skipped with the reason, and the rest of the suite passes.
pytest.importorskip("playwright.sync_api", reason="needs Playwright: pip install -e '.[test]'")
if not CHROMIUM.exists():
    pytest.skip(
        f"needs Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)",
        allow_module_level=True,
    )

from playwright.sync_api import Locator, Page, expect  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
# The stages the README shows, and their names there: `Screenshots(docs=True)` copies them to
# docs/screenshots/.
FOR_THE_README = {
    "03-filtered.png": "linked-invoices.png",
    "04-plan.png": "plan.png",
    "05-batch-running.png": "batch.png",
    "08-reconciliation.png": "reconciliation.png",
    "12-plan-xero-rules.png": "plan-xero-options.png",  # at 1440x900: test_xero_cleanup.py
    "13-plan-xero-steps.png": "plan-xero-steps.png",
}
VIEWPORT = {"width": 1280, "height": 800}
BACKGROUND_WORK_MS = 60_000  # a sync, a batch or a reconciliation run by the test's worker


class Screenshots:
    def __init__(self, docs: bool = False):
        self.docs = docs
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(self, page: Page, name: str, top: Locator | None = None) -> Path:
        """The viewport only, so that every picture is 1280x800 whatever the page's length:
        scrolled to the page's top, or to `top` when the part to show is further down."""
        if top is None:
            page.evaluate("window.scrollTo(0, 0)")
        else:
            top.evaluate("element => element.scrollIntoView({block: 'start'})")
        path = SCREENSHOTS / name
        page.screenshot(path=path)
        if self.docs and name in FOR_THE_README:
            DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_SCREENSHOTS / FOR_THE_README[name])
        return path


class BrowserLog:
    """What a page must not do even when it looks right: log a console error (Chromium reports
    every Content-Security-Policy violation there, and every failed request), throw an uncaught
    script error, or get a server error for any request, htmx's included."""

    def __init__(self, page: Page):
        self.page = page
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("response", self._response)

    def _console(self, message) -> None:
        if message.type == "error":
            # an inline script or style has no URL of its own: name the page it was on
            where = message.location.get("url") or self.page.url
            self.problems.append(f"console error on {where}: {message.text}")

    def _response(self, response) -> None:
        if response.status >= 500:
            self.problems.append(
                f"HTTP {response.status} for {response.request.method} {response.url}"
            )

    def assert_clean(self) -> None:
        assert not self.problems, "The browser saw:\n" + "\n".join(self.problems)


class SamePage:
    """Proves that what follows happens without a page load: a mark left on the current
    document is gone if the browser loaded another one (an htmx swap or a poll keeps it)."""

    def __init__(self, page: Page):
        self.page = page
        page.evaluate("window.__stillTheSameDocument = true")

    def assert_not_reloaded(self) -> None:
        assert self.page.evaluate("window.__stillTheSameDocument === true"), "the page reloaded"


class AppPage:
    def __init__(self, page: Page):
        self.page = page

    def open_section(self, name: str) -> None:
        self.page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()

    @property
    def messages(self) -> Locator:
        return self.page.locator(".messages")


class LoginPage(AppPage):
    def open(self) -> "LoginPage":
        self.page.goto("/")  # every page needs a login: this lands on the form
        expect(self.page.get_by_role("heading", name="Log in to Unlinker")).to_be_visible()
        return self

    def log_in(self, username: str, password: str) -> "LinkedListPage":
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Log in").click()
        # home is Linked Invoices of the user's first connection
        self.page.wait_for_url(re.compile(r"/linked/\d+/invoices/"))
        return LinkedListPage(self.page)


class LinkedListPage(AppPage):
    """Linked Xero Invoices or Payments: the filter, the table, the bulk actions, the sync."""

    @property
    def count(self) -> Locator:
        return self.page.locator("#list-count")

    @property
    def rows(self) -> Locator:
        return self.page.locator("#results table.object-table tbody tr")

    def refresh_from_actionstep(self) -> None:
        panel = self.page.locator("#sync-panel")
        panel.get_by_role("button", name="Refresh from Actionstep").click()
        expect(panel).to_contain_text("Synced from Actionstep", timeout=BACKGROUND_WORK_MS)

    def filter(self, **fields: str) -> None:
        """Fill the Filter form's fields by label and apply it: htmx swaps the results (this
        waits for them, as a person waits to see them)."""
        form = self.page.get_by_role("search", name="Filter")
        for label, value in fields.items():
            field = form.get_by_label(label, exact=True)
            if field.evaluate("element => element.tagName") == "SELECT":
                field.select_option(value)  # by value or by the option's label
            else:
                field.fill(value)
        with self.swapped():
            form.get_by_role("button", name="Filter", exact=True).click()

    def show_rows_per_page(self, size: int) -> None:
        with self.swapped():
            self.page.get_by_label("Rows per page").select_option(str(size))

    def go_to_page(self, number: int) -> None:
        with self.swapped():
            self.page.get_by_role("navigation", name="Pages").get_by_role(
                "link", name=str(number), exact=True
            ).click()

    @contextmanager
    def swapped(self):
        """Until htmx has swapped in the answer to the request made inside."""
        self.page.evaluate(
            "window.__settled = false; document.addEventListener('htmx:afterSettle',"
            " () => { window.__settled = true; }, {once: true})"
        )
        yield
        # (polled from here: wait_for_function evaluates a string, which the CSP forbids)
        deadline = time.monotonic() + 10
        while not self.page.evaluate("window.__settled === true"):
            assert time.monotonic() < deadline, "htmx swapped in no answer"
            self.page.wait_for_timeout(20)

    def tick(self, record: str) -> None:
        self.page.get_by_role("checkbox", name=f"Select {record}", exact=True).check()

    def select_all_matching(self, count: int) -> None:
        self.page.get_by_label(f"Select all {count} matching").check()

    def unlink(self) -> "PlanPage":
        self.page.get_by_role("button", name="Unlink from Xero").click()
        expect(
            self.page.get_by_role("heading", name=re.compile(r"^Unlink from Xero"))
        ).to_be_visible()
        return PlanPage(self.page)


class PlanPage(AppPage):
    @property
    def headline(self) -> Locator:
        return self.page.locator("#plan h2").first  # "N steps to run"

    @property
    def steps(self) -> Locator:
        return self.page.locator("#plan ol.steps > li")

    @property
    def added_steps(self) -> Locator:
        return self.steps.filter(has=self.page.locator(".badge.added"))

    def step_targets(self) -> list[str]:
        """What each step acts on, in the plan's order ("Payment EFT 1 of AUD 500.00 on INV-1")."""
        return [
            text.split(": ", 1)[1].removesuffix(" added") for text in self.steps.all_inner_texts()
        ]

    def queue(self, steps: int) -> "BatchPage":
        label = f"Queue {steps} step{'s' if steps != 1 else ''}"
        self.page.get_by_role("button", name=label, exact=True).click()
        self.page.wait_for_url(re.compile(r"/history/\d+/$"))
        return BatchPage(self.page)


class BatchPage(AppPage):
    @property
    def progress(self) -> Locator:
        return self.page.locator(".batch-progress")

    @property
    def progress_bar(self) -> Locator:
        """One segment per finished state; its label says how many of each."""
        return self.progress.get_by_role("img")

    @property
    def state_counts(self) -> Locator:
        return self.page.get_by_role("list", name="Filter by state")

    def wait_until_finished(self, total: int | None = None) -> None:
        """Every step finished (done, failed, skipped or cancelled), `total` of them if given."""
        steps = str(total) if total is not None else r"(\d+)"
        also = str(total) if total is not None else r"\1"
        expect(self.progress).to_contain_text(
            re.compile(rf"100% · {steps} of {also} steps? finished"), timeout=BACKGROUND_WORK_MS
        )

    def wait_until_under_way(self, total: int) -> None:
        """Some steps finished and some not: the page is showing a batch at work."""
        some = "|".join(str(n) for n in range(1, total))
        expect(self.progress).to_contain_text(
            re.compile(rf"· (?:{some}) of {total} steps finished"), timeout=BACKGROUND_WORK_MS
        )

    def step_rows(self) -> list[dict[str, str]]:
        """The steps table as the user reads it: one dict per row, keyed by column header."""
        table = self.page.locator("#results table.object-table")
        headers = [h.strip() for h in table.locator("thead th").all_inner_texts()]
        rows = []
        for row in table.locator("tbody tr").all():
            cells = [cell.strip() for cell in row.locator("td").all_inner_texts()]
            rows.append(dict(zip(headers, cells, strict=True)))
        return rows

    def retry_failed(self, count: int) -> None:
        label = f"Retry {count} failed step{'s' if count != 1 else ''}"
        self.page.get_by_role("button", name=label, exact=True).click()

    def export_csv(self) -> list[list[str]]:
        with self.page.expect_download() as download:
            self.page.get_by_role("link", name="Export all steps and every attempt as CSV").click()
        return read_csv(download.value)


def read_csv(download) -> list[list[str]]:
    """A downloaded CSV as Excel would read it: it must start with UTF-8's byte-order mark."""
    raw = Path(download.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "no BOM: Excel would not read the file as UTF-8"
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


class ReconciliationPage(AppPage):
    @property
    def findings(self) -> Locator:
        return self.page.get_by_role("main").locator("table tbody tr")

    def run_now(self) -> None:
        """Run it and wait for the page to show the finished run: the progress panel polls,
        then reloads the page with the new findings."""
        self.page.get_by_role("button", name="Run the reconciliation now").click()
        expect(self.page.get_by_text(re.compile(r"^Last run finished"))).to_be_visible(
            timeout=BACKGROUND_WORK_MS
        )

    def finding(self, kind: str, invoice_number: str) -> Locator:
        return self.findings.filter(has_text=kind).filter(has_text=invoice_number)
