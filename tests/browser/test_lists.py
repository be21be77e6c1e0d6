"""The lists as people work in them, in headless Chromium: Back and Forward, one search box,
selections across pages, counts that say what they count, filters that say what is wrong, tables
that fit the screen, links to where each record lives, times in the connection's zone, and the
CSV as a spreadsheet opens it."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.reconciliation.support import reconcile
from unlinker.connections.models import Connection
from unlinker.core import csvexport

from .pages import (
    BatchPage,
    LinkedListPage,
    ReconciliationPage,
    expect,
    read_csv,
)

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

BROWN = "Estate of the late Robert Alexander Brown-Fitzgerald, deceased (probate and estate)"
BROWNS = 30  # more than one page of 25
NASTY = [
    '=HYPERLINK("http://evil.example","click")',
    " =1+1",
    "\n+SUM(A1)",
    "＝SUM(A1)",  # a full-width equals sign
    "@cmd",
]


def bills() -> list[dict]:
    smith = {"matter": "Smith v Jones", "contact": "Alice Smith"}
    return [
        {**smith, "number": "INV-1001", "total": "1100.00",
         "payments": [{"amount": "500.00", "reference": "EFT 1"},
                      {"amount": "600.00", "reference": "EFT 2"}]},
        {**smith, "number": "INV-1002", "total": "220.00",
         "payments": [{"amount": "120.00", "reference": "Cheque 7"}]},
        {**smith, "number": "INV-1003", "total": "330.00", "link": "Unlinked"},  # an orphan
        {**smith, "number": "INV-1004", "total": "440.00", "status": "Deleted",
         "link": "Unlinked", "xero_status": "VOIDED"},
        *(
            {"matter": BROWN, "number": f"INV-2{n:03d}", "total": f"{1000 + n}.00",
             "contact": "The Trustees of the Brown-Fitzgerald Family Discretionary Trust"}
            for n in range(1, BROWNS + 1)
        ),
        *(
            {"matter": "Re Formulas", "contact": name, "number": f"INV-3{n:03d}", "total": "9.00"}
            for n, name in enumerate(NASTY, start=1)
        ),
    ]  # fmt: skip


@pytest.fixture
def firm(synced_firm):
    built, connection = synced_firm(bills())
    return built, connection


def form_values(page) -> dict[str, str]:
    form = page.get_by_role("search", name="Filter")
    return {
        name: form.locator(f'[name="{name}"]').input_value()
        for name in ("q", "date_from", "link_status", "xero_status", "per_page")
    }


def rows_text(invoices: LinkedListPage) -> list[str]:
    return invoices.rows.all_inner_texts()


def numbers_shown(invoices: LinkedListPage) -> list[str]:
    links = invoices.rows.locator("td.number a").all_inner_texts()
    return [n.split("(opens")[0].strip() for n in links]


def query_of(page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


# --- Back and Forward ---------------------------------------------------------------------


def test_back_and_forward_restore_the_table_and_the_filter_form(page, log_in, firm, screenshots):
    invoices = log_in()
    invoices.filter(Search="Brown-Fitzgerald", **{"Link status": "Linked"})
    expect(invoices.count).to_have_text(f"{BROWNS} invoices match the filter")
    page.get_by_role("columnheader", name="Total").get_by_role("link").click()
    page.wait_for_url(re.compile(r"sort=total"))
    expect(page.locator("th[aria-sort]")).to_have_text("Total")
    sorted_rows = rows_text(invoices)
    filtered = {"q": "Brown-Fitzgerald", "link_status": "linked"}

    invoices.open_section("Linked Payments")
    expect(page.get_by_role("heading", name="Linked Xero Payments")).to_be_visible()
    page.go_back()
    page.wait_for_url(re.compile(r"sort=total"))
    expect(invoices.count).to_have_text(f"{BROWNS} invoices match the filter")
    assert form_values(page) | filtered == form_values(page)  # the form shows the filter
    assert rows_text(invoices) == sorted_rows  # and the table the same rows, sorted
    screenshots.take(page, "20-back-restores-the-filter.png")

    # Back through the list's own states (htmx pushed each): before the sort ...
    page.go_back()
    page.wait_for_url(lambda url: "sort=" not in url)
    expect(page.locator("th[aria-sort]")).to_have_text("Date")
    assert form_values(page) | filtered == form_values(page)
    # ... before the filter ...
    page.go_back()
    page.wait_for_url(lambda url: "q=" not in url)
    expect(invoices.count).to_have_text(f"{4 + BROWNS + len(NASTY)} invoices")
    assert form_values(page)["q"] == "" and form_values(page)["link_status"] == ""
    # ... and Forward again, twice.
    page.go_forward()
    page.wait_for_url(re.compile(r"q=Brown"))
    expect(invoices.count).to_have_text(f"{BROWNS} invoices match the filter")
    assert form_values(page) | filtered == form_values(page)
    page.go_forward()
    page.wait_for_url(re.compile(r"sort=total"))
    expect(page.locator("th[aria-sort]")).to_have_text("Total")  # the page came back
    assert rows_text(invoices) == sorted_rows

    # Filter again, as is: nothing is dropped, the sort is kept.
    invoices.filter()
    expect(invoices.count).to_have_text(f"{BROWNS} invoices match the filter")
    assert query_of(page)["q"] == ["Brown-Fitzgerald"] and query_of(page)["sort"] == ["total"]
    assert rows_text(invoices) == sorted_rows


# --- Search, counts, filters --------------------------------------------------------------


def test_one_search_box_covers_number_reference_matter_and_contact(page, log_in, firm):
    invoices = log_in()
    for term, count in [("INV-1002", 1), ("smith v jones", 4), ("Trustees", BROWNS)]:
        invoices.filter(Search=term)
        expect(invoices.count).to_have_text(
            f"{count} invoice{'s' if count != 1 else ''} match{'es' if count == 1 else ''} "
            "the filter"
        )
    invoices.open_section("Linked Payments")
    payments = LinkedListPage(page)
    payments.filter(Search="Alice")
    expect(payments.count).to_have_text("3 payments match the filter")


def test_counts_filters_dates_and_bad_values(page, log_in, firm, screenshots):
    invoices = log_in()
    invoices.filter(**{"Link status": "Unlinked"})
    # says what it counts: not "linked invoices"
    expect(invoices.count).to_have_text("2 invoices match the filter")
    # an invoice deleted in Actionstep says so
    deleted = invoices.rows.filter(has_text="INV-1004")
    expect(deleted).to_contain_text("Deleted in Actionstep")

    # A date is typed as the table shows it, and shown back that way.
    invoices.page.get_by_role("link", name="Clear", exact=True).click()
    day = invoices.rows.first.locator("td.date").inner_text()  # "3 Nov 2026"
    assert re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} \d{4}", day)
    form = page.get_by_role("search", name="Filter")
    expect(form.get_by_label("Invoice date from")).to_have_attribute(
        "placeholder", "e.g. 3 Dec 2026"
    )
    invoices.filter(**{"Invoice date from": day})
    expect(invoices.count).to_contain_text("match the filter")
    expect(form.get_by_label("Invoice date from")).to_have_value(day)
    day, month, year = day.split()
    numeric = f"{day}/{'JanFebMarAprMayJunJulAugSepOctNovDec'.index(month) // 3 + 1}/{year}"
    invoices.filter(**{"Invoice date from": numeric})  # the way Australians type it
    expect(form.get_by_label("Invoice date from")).to_have_value(f"{day} {month} {year}")

    # A bad value marks its field and says why beside it; nothing is listed.
    invoices.filter(**{"Invoice date from": "31 Feb 2026"})
    field = form.get_by_label("Invoice date from")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(form.locator("#id_date_from_error")).to_have_text("Enter a valid date.")
    expect(page.get_by_role("alert")).to_contain_text("Nothing is listed until the filter is")
    expect(invoices.rows).to_have_count(0)
    screenshots.take(page, "21-bad-filter-value.png")

    # The payments' Xero filter offers the statuses a payment can have.
    invoices.open_section("Linked Payments")
    options = page.get_by_label("Xero status").locator("option").all_inner_texts()
    assert options == ["Any", "Not checked", "Authorised", "Deleted", "Missing in Xero"]


@pytest.mark.parametrize("page_number", ["0", "-1"])
def test_page_zero_or_less_is_the_first_page(page, log_in, firm, page_number):
    log_in()
    page.goto(page.url.split("?")[0] + f"?per_page=25&page={page_number}")
    expect(page.locator(".pagination .range")).to_have_text(f"1–25 of {4 + BROWNS + len(NASTY)}")


# --- Selections ---------------------------------------------------------------------------


def test_a_selection_carries_across_pages_and_says_so(page, log_in, firm, screenshots):
    invoices = log_in()
    invoices.filter(Search="Trustees")
    invoices.show_rows_per_page(25)
    page.wait_for_url(re.compile(r"per_page=25"))
    status = page.locator("#selection-status")
    said = status.locator("[data-selection-text]")
    expect(status).to_be_hidden()
    first, second, third = numbers_shown(invoices)[:3]
    invoices.tick(first)
    invoices.tick(second)
    expect(said).to_have_text("2 invoices selected")

    invoices.go_to_page(2)
    assert query_of(page)["page"] == ["2"]
    on_page_two = numbers_shown(invoices)[0]
    invoices.tick(on_page_two)
    expect(said).to_have_text("3 invoices selected (1 on this page, 2 on other pages)")
    screenshots.take(page, "22-selection-across-pages.png")

    invoices.go_to_page(1)
    expect(page.get_by_role("checkbox", name=f"Select {first}", exact=True)).to_be_checked()
    expect(page.get_by_role("checkbox", name=f"Select {third}", exact=True)).not_to_be_checked()

    plan = invoices.unlink()  # the ids ticked on page 2 go too
    expect(plan.headline).to_have_text("3 steps to run")
    assert sorted(t.split(" (")[0] for t in plan.step_targets()) == sorted(
        f"Invoice {n}" for n in (first, second, on_page_two)
    )


def test_select_all_matching_ticks_the_rows_and_says_what_it_selected(page, log_in, firm):
    invoices = log_in()
    invoices.filter(Search="Trustees")
    invoices.show_rows_per_page(25)
    page.wait_for_url(re.compile(r"per_page=25"))
    invoices.select_all_matching(BROWNS)
    status = page.locator("#selection-status")
    expect(status).to_contain_text(
        f"All {BROWNS} invoices matching this filter selected, on every page"
    )
    expect(page.locator('#results input[name="pk"]:checked')).to_have_count(25)
    invoices.go_to_page(2)
    assert query_of(page)["page"] == ["2"]
    expect(page.locator('#results input[name="pk"]:checked')).to_have_count(BROWNS - 25)
    expect(page.get_by_label(f"Select all {BROWNS} matching")).to_be_checked()

    # Unticking one row leaves the rows still ticked on the page, and says so.
    first = numbers_shown(invoices)[0]
    page.get_by_role("checkbox", name=f"Select {first}", exact=True).uncheck()
    expect(page.get_by_label(f"Select all {BROWNS} matching")).not_to_be_checked()
    expect(status.locator("[data-selection-text]")).to_have_text(
        f"{BROWNS - 25 - 1} invoices selected"
    )
    page.get_by_role("button", name="Clear selection").click()
    expect(status).to_be_hidden()
    expect(page.get_by_role("button", name="Unlink from Xero")).to_be_disabled()


def test_the_disabled_unlink_button_is_readable(page, log_in, firm):
    log_in()
    unlink = page.get_by_role("button", name="Unlink from Xero")
    expect(unlink).to_be_disabled()
    colours = unlink.evaluate(
        "b => [getComputedStyle(b).color, getComputedStyle(b).backgroundColor,"
        " getComputedStyle(b).opacity]"
    )
    assert colours[2] == "1"
    assert contrast(colours[0], colours[1]) >= 4.5, colours


def contrast(foreground: str, background: str) -> float:
    def luminance(css: str) -> float:
        r, g, b = (int(v) / 255 for v in re.findall(r"\d+", css)[:3])
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    light, dark = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


# --- Width, links -------------------------------------------------------------------------

SIZES = [(1280, 800), (1440, 900), (1920, 1080)]


def no_sideways_scroll(page) -> None:
    widths = page.evaluate(
        "() => ({page: document.documentElement.scrollWidth,"
        " view: document.documentElement.clientWidth,"
        " tables: Array.from(document.querySelectorAll('.table-wrap'))"
        ".map(t => [t.scrollWidth, t.clientWidth])})"
    )
    assert widths["page"] <= widths["view"], widths
    assert all(scroll <= client for scroll, client in widths["tables"]), widths


def test_every_list_fits_the_screen_without_scrolling_sideways(page, log_in, firm, screenshots):
    _, connection = firm
    reconcile(connection)
    log_in()
    lists = [
        ("Linked Invoices", "invoices"),
        ("Linked Payments", "payments"),
        ("Reconciliation", "reconciliation"),
    ]
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        for section, name in lists:
            LinkedListPage(page).open_section(section)
            expect(page.locator("table.object-table")).to_be_visible()
            no_sideways_scroll(page)
            # the checkbox and the number stay in view
            for column in ("th.select", "th.number"):
                box = page.locator(f"table.object-table {column}").first.bounding_box()
                assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, (name, column)
            screenshots.take(page, f"30-{name}-{width}.png")
    # long names are cut, with the whole of them on hover
    LinkedListPage(page).open_section("Linked Invoices")
    matter = page.locator("td.text .truncate", has_text="Estate of the late").first
    expect(matter).to_have_attribute("title", re.compile(r"^Estate of the late .*deceased"))


def test_records_link_to_where_they_live(page, log_in, firm):
    built, _ = firm
    invoices = log_in()
    invoices.filter(Search="INV-1001")
    row = invoices.rows.first
    xero_id = built["bills"][0]["xero_invoice_id"]
    xero = row.get_by_role("link", name=re.compile(r"opens Xero"))
    expect(xero).to_have_attribute(
        "href", f"https://go.xero.com/AccountsReceivable/View.aspx?InvoiceID={xero_id.lower()}"
    )
    expect(xero).to_have_attribute("target", "_blank")
    expect(row).not_to_contain_text(xero_id)  # never the bare GUID
    bill = built["bills"][0]["id"]
    expect(row.get_by_role("link", name=re.compile(r"^INV-1001"))).to_have_attribute(
        "href", re.compile(rf"actionstep\.com/.*/{bill}$")
    )
    expect(row.get_by_role("link", name=re.compile(r"^Smith v Jones"))).to_have_attribute(
        "href", re.compile(r"actionstep\.com/.*action_id/\d+$")
    )

    # the invoice opens its linked payments
    row.get_by_role("link", name="2 linked payments of INV-1001").click()
    page.wait_for_url(re.compile(r"/payments/\?invoice=INV-1001&link_status=linked"))
    payments = LinkedListPage(page)
    expect(payments.count).to_have_text("2 payments match the filter")
    form = page.get_by_role("search", name="Filter")
    expect(form.get_by_label("Invoice number")).to_have_value("INV-1001")
    payment = payments.rows.first
    expect(payment.get_by_role("link", name=re.compile(r"opens Xero"))).to_have_attribute(
        "href", re.compile(r"^https://go\.xero\.com/Bank/ViewTransaction\.aspx\?bankTransactionID=")
    )


# --- Times --------------------------------------------------------------------------------


def test_times_show_in_the_connections_zone_with_the_zone_named(page, log_in, firm, worker):
    _, connection = firm
    Connection.objects.filter(pk=connection.pk).update(timezone="Australia/Perth")
    invoices = log_in()
    synced = page.locator("#sync-panel time")
    expect(synced).to_have_text("just now")
    expect(synced).to_have_attribute("title", re.compile(r"^\d{1,2} \w{3} \d{4}, \d\d:\d\d AWST$"))

    invoices.tick("INV-1002")  # and its payment
    batch = invoices.unlink().queue(2)
    batch.wait_until_finished(2)
    asked = page.locator(".facts time").first
    expect(asked).to_have_text(re.compile(r"^\d{1,2} \w{3} \d{4}, \d\d:\d\d AWST$"))
    expect(asked).to_have_attribute("title", "Australia/Perth")
    assert BatchPage(page).step_rows()[0]["Started, finished"].endswith(" AWST")
    rows = BatchPage(page).export_csv()
    started = rows[0].index("Attempt started")
    assert rows[1][started].endswith(" AWST")

    reconcile(connection)
    invoices.open_section("Reconciliation")
    ReconciliationPage(page)
    finished = page.locator(".run-facts time")
    expect(finished).to_have_text("just now")
    expect(finished).to_have_attribute("title", re.compile(r"AWST$"))


# --- CSV ----------------------------------------------------------------------------------


def test_a_downloaded_csv_opens_cleanly_in_a_spreadsheet(page, log_in, firm):
    invoices = log_in()
    invoices.filter(Search="Re Formulas")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    header, *rows = read_csv(download.value)  # asserts the BOM
    contact = header.index("Contact")
    cells = sorted(row[contact] for row in rows)
    assert len(cells) == len(NASTY)
    assert all(cell.startswith("'") for cell in cells), cells  # every one stays text
    assert sorted(cell[1:] for cell in cells) == sorted(NASTY)
    assert {row[header.index("Currency")] for row in rows} == {"AUD"}
    assert all(
        re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} \d{4}", row[header.index("Date")]) for row in rows
    )
    assert all("·" not in cell for row in rows for cell in row)

    invoices.open_section("Linked Payments")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    header, *rows = read_csv(download.value)
    assert {row[header.index("Part of a batch payment")] for row in rows} == {"No"}
    assert csvexport.BOM == "\ufeff"


def test_the_lists_walked_at_three_sizes(page, log_in, firm, screenshots):
    """For a person to look at: each list filtered, with a selection, at 1280, 1440 and 1920."""
    invoices = log_in()
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        invoices.open_section("Linked Invoices")
        invoices = LinkedListPage(page)
        invoices.filter(Search="Smith v Jones")
        invoices.tick("INV-1001")
        screenshots.take(page, f"31-invoices-filtered-{width}.png")
        page.get_by_role("button", name="Clear selection").click()
