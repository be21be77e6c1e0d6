"""The Linked Xero Invoices and Payments pages: access, content, sorting, paging, htmx partials,
CSV export, empty states, and a query count that does not grow with the data."""

import csv
import io
import re
from decimal import Decimal

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from . import factories

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def invoices_url(conn) -> str:
    return reverse("mirror:invoice_list", args=[conn.pk])


def payments_url(conn) -> str:
    return reverse("mirror:payment_list", args=[conn.pk])


def body(response) -> str:
    """The page, or the whole of a streamed CSV."""
    if response.streaming:
        return b"".join(response.streaming_content).decode("utf-8")
    return response.content.decode()


def listed(response) -> list[str]:
    """The ids of the rows on the page, in order (operators see a checkbox per row)."""
    return re.findall(r'name="pk" value="(\d+)"', response.content.decode())


# --- Entry points and access ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name, list_name", [("invoices", "invoice_list"), ("payments", "payment_list")]
)
def test_entry_point_opens_the_first_connection_the_user_may_see(
    member_of, firm, other_firm, name, list_name
):
    client = member_of("viewer")
    response = client.get(reverse(f"mirror:{name}"), {"q": "INV-1"})
    assert response.status_code == 302
    assert response["Location"] == reverse(f"mirror:{list_name}", args=[firm.pk]) + "?q=INV-1"


def test_admins_see_every_connection_and_can_switch(client_for, firm, other_firm):
    client = client_for("admin")
    response = client.get(reverse("mirror:invoices"))
    assert response["Location"] == invoices_url(other_firm)  # "Jones Legal" sorts first
    page = client.get(invoices_url(firm)).content.decode()
    assert 'class="switcher"' in page
    assert f'href="{invoices_url(other_firm)}"' in page
    assert f'href="{invoices_url(firm)}" aria-current="page"' in page


def test_no_switcher_with_a_single_connection(member_of, firm, other_firm):
    page = member_of("viewer").get(invoices_url(firm)).content.decode()
    assert 'class="switcher"' not in page
    assert "Jones Legal" not in page


def test_without_a_connection_an_admin_is_sent_to_connections(client_for):
    response = client_for("admin").get(reverse("mirror:payments"))
    assert response.status_code == 200
    assert b"There is no connection yet" in response.content
    assert f'href="{reverse("connections:list")}"'.encode() in response.content


def test_without_a_connection_others_are_told_to_ask_an_admin(client_for, other_firm):
    response = client_for("operator").get(reverse("mirror:invoices"))
    assert response.status_code == 200
    assert b"Ask an admin" in response.content


@pytest.mark.parametrize("url", [invoices_url, payments_url])
def test_a_connection_the_user_is_not_a_member_of_is_not_found(member_of, firm, other_firm, url):
    client = member_of("viewer")
    assert client.get(url(firm)).status_code == 200
    assert client.get(url(other_firm)).status_code == 404
    assert client.get(f"/linked/{other_firm.pk + 1000}/invoices/").status_code == 404
    assert client.get("/linked/99999999999999999999999/invoices/").status_code == 404


def test_a_disconnected_connection_stays_readable_with_nothing_to_act_on(member_of, firm):
    client = member_of("operator")
    firm.disconnected_at = timezone.now()
    firm.save()
    response = client.get(invoices_url(firm))
    assert response.status_code == 200  # its history is kept
    assert b"Unlink from Xero" not in response.content and b"read-only" in response.content


def test_users_without_browse_are_refused(client_for, firm):
    client = client_for(None)
    firm.members.add(client.user)
    assert client.get(invoices_url(firm)).status_code == 403


def test_rows_of_another_connection_never_show(member_of, firm, other_firm):
    factories.invoices(firm, 2)
    client = member_of("operator")
    for params in ({}, {"contact": "OTHER-FIRM"}, {"matter": "OTHER"}, {"_export": "csv"}):
        for url in (invoices_url(firm), payments_url(firm)):
            assert "OTHER-FIRM-SECRET" not in body(client.get(url, params)), params


# --- Content --------------------------------------------------------------------------------


def test_invoice_rows(member_of, firm):
    factories.invoice(
        firm,
        invoice_number="INV-9",
        xero_invoice_number="XN-9",
        total=Decimal("1234.5"),
        linked_payment_count=3,
        xero_status="VOIDED",
        matter_name="Estate of Brown",
    )
    page = member_of("operator").get(invoices_url(firm)).content.decode()
    money = '<span class="currency">AUD</span> <span class="amount">1,234.50</span>'
    for text in ("INV-9", "Estate of Brown", money):
        assert text in page
    # the count opens the payments list at the invoice's linked payments
    payments = payments_url(firm) + "?invoice=INV-9&amp;link_status=linked"
    assert f'<a href="{payments}" title="3 linked payments of INV-9"' in page
    assert '<span class="badge linked">Linked</span>' in page
    assert '<th class="money-col num orderable">' in page  # right-aligned, headers too
    assert '<span id="list-count" class="count">1 invoice</span>' in page
    # no Xero id, no link to Xero; Xero's number shows where it differs
    assert '<span class="badge VOIDED">XN-9 · Voided</span>' in page


def test_payment_rows_show_their_invoice(member_of, firm):
    invoice = factories.invoice(firm, invoice_number="INV-77")
    factories.payment(firm, invoice=invoice, reference="DEP-1", amount=Decimal("50"))
    page = member_of("viewer").get(payments_url(firm)).content.decode()
    assert "INV-77" in page and "DEP-1" in page
    assert '<span class="currency">AUD</span> <span class="amount">50.00</span>' in page


def test_names_from_upstream_are_escaped(member_of, firm):
    factories.invoice(firm, contact_name="<script>alert(1)</script>", matter_name='"><b>x</b>')
    page = member_of("operator").get(invoices_url(firm)).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>x</b>" not in page


def test_operators_get_checkboxes_and_the_unlink_button(member_of, firm):
    rows = factories.invoices(firm, 3)
    page = member_of("operator").get(invoices_url(firm), {"contact": "Contact"}).content.decode()
    assert sorted(listed_ids := re.findall(r'name="pk" value="(\d+)"', page)) == sorted(
        str(r.pk) for r in rows
    )
    assert len(listed_ids) == 3
    assert 'data-toggle-all="pk"' in page
    unlink = reverse("unlinking:plan", args=[firm.pk])
    assert f'formaction="{unlink}?contact=Contact"' in page
    assert '<input type="hidden" name="kind" value="invoices">' in page


def test_viewers_get_neither_checkboxes_nor_bulk_buttons(member_of, firm):
    factories.invoices(firm, 3)
    page = member_of("viewer").get(invoices_url(firm)).content.decode()
    assert 'name="pk"' not in page
    assert "Unlink from Xero" not in page
    assert "Export CSV" in page


def test_select_all_matching_is_offered_when_the_match_spans_pages(member_of, firm):
    factories.invoices(firm, 30)
    client = member_of("operator")
    assert b'name="_all"' not in client.get(invoices_url(firm)).content
    page = client.get(invoices_url(firm), {"per_page": "25"}).content.decode()
    assert '<input type="checkbox" name="_all" value="1"> Select all 30 matching' in page


def test_no_inline_script_or_style(member_of, firm):
    factories.invoices(firm, 2)
    page = member_of("operator").get(invoices_url(firm)).content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)
    assert " style=" not in page and "<style" not in page


# --- Sorting --------------------------------------------------------------------------------


def test_sorting_by_a_column_both_ways(member_of, firm):
    rows = factories.invoices(firm, 5)
    by_total = [str(r.pk) for r in sorted(rows, key=lambda r: r.total)]
    client = member_of("operator")
    assert listed(client.get(invoices_url(firm), {"sort": "total"})) == by_total
    assert listed(client.get(invoices_url(firm), {"sort": "-total"})) == by_total[::-1]


@pytest.mark.parametrize("sort", ["password", "pk", "-", "", "connection__name", "total;drop"])
def test_unknown_sort_columns_fall_back_to_the_default_order(member_of, firm, sort):
    rows = factories.invoices(firm, 4)
    newest_first = [str(r.pk) for r in sorted(rows, key=lambda r: (r.invoice_date, r.pk))][::-1]
    response = member_of("operator").get(invoices_url(firm), {"sort": sort})
    assert response.status_code == 200
    assert listed(response) == newest_first


def test_paging_a_sort_with_ties_shows_every_row_once(member_of, firm):
    factories.invoices(firm, 60, total=Decimal("10"), contact_name="Same")
    client = member_of("operator")
    first = listed(client.get(invoices_url(firm), {"sort": "total", "page": 1, "per_page": 25}))
    second = listed(client.get(invoices_url(firm), {"sort": "total", "page": 2, "per_page": 25}))
    third = listed(client.get(invoices_url(firm), {"sort": "total", "page": 3, "per_page": 25}))
    assert len(set(first + second + third)) == 60


def test_sort_links_keep_the_filter_and_return_to_page_one(member_of, firm):
    factories.invoices(firm, 3)
    page = (
        member_of("operator")
        .get(invoices_url(firm), {"contact": "Contact", "page": "1", "per_page": "25"})
        .content.decode()
    )
    link = f"{invoices_url(firm)}?contact=Contact&amp;per_page=25&amp;sort=total"
    assert f'<a href="{link}" hx-get="{link}" hx-target="#results" hx-push-url="true">' in page


# --- Paging and page size -------------------------------------------------------------------


def test_pages(member_of, firm):
    factories.invoices(firm, 120)
    client = member_of("operator")
    second = client.get(invoices_url(firm), {"page": "2"})
    assert len(listed(second)) == 50
    assert "51–100 of 120" in second.content.decode()
    assert len(listed(client.get(invoices_url(firm), {"page": "3"}))) == 20
    first, two = listed(client.get(invoices_url(firm))), listed(second)
    assert not set(first) & set(two)


@pytest.mark.parametrize(
    "page, shown",
    [
        ("-1", "1–50"),  # not the last page
        ("0", "1–50"),
        ("2", "51–100"),
        ("999999999999999999999999", "101–120"),
        ("abc", "1–50"),
        ("1.5", "1–50"),
        ("", "1–50"),
    ],
)
def test_bad_page_numbers_show_the_nearest_page(member_of, firm, page, shown):
    factories.invoices(firm, 120)
    response = member_of("operator").get(invoices_url(firm), {"page": page})
    assert response.status_code == 200
    assert f"{shown} of 120" in response.content.decode()


@pytest.mark.parametrize(
    "per_page, rows", [("25", 25), ("100", 100), ("200", 120), (str(10**9), 50), ("x", 50)]
)
def test_page_size(member_of, firm, per_page, rows):
    factories.invoices(firm, 120)
    response = member_of("operator").get(invoices_url(firm), {"per_page": per_page})
    assert len(listed(response)) == rows


def test_page_links_keep_filter_sort_and_page_size(member_of, firm):
    factories.invoices(firm, 60)
    page = (
        member_of("operator")
        .get(invoices_url(firm), {"sort": "total", "per_page": "25", "contact": "Contact"})
        .content.decode()
    )
    link = f"{invoices_url(firm)}?sort=total&amp;per_page=25&amp;contact=Contact&amp;page=2"
    assert f'href="{link}" hx-get="{link}"' in page


# --- htmx -----------------------------------------------------------------------------------


def test_htmx_gets_the_table_partial_with_out_of_band_fragments(member_of, firm):
    factories.invoices(firm, 60)
    client = member_of("operator")
    response = client.get(invoices_url(firm), {"sort": "-total", "page": "2"}, headers=HTMX)
    body = response.content.decode()
    assert "<html" not in body and "<h1>" not in body
    assert '<span id="list-count" class="count" hx-swap-oob="true">60 invoices' in body
    assert '<div id="list-actions" class="list-actions" hx-swap-oob="true"' in body
    unlink = reverse("unlinking:plan", args=[firm.pk])
    assert f'formaction="{unlink}?sort=-total&amp;page=2"' in body
    # a sort or page link brings back the sort the filter form keeps ...
    assert (
        '<span id="list-sort" hx-swap-oob="true"><input type="hidden" name="sort" value="-total">'
        in body
    )
    assert 'id="list-filter"' not in body
    # ... and the form's own submission the whole form, as the table applies it
    body = client.get(
        invoices_url(firm),
        {"sort": "-total", "date_from": "3/1/2025"},
        headers=HTMX | {"HX-Trigger": "list-filter"},
    ).content.decode()
    form = re.search(r'<form id="list-filter".*?</form>', body, re.S)[0]
    assert 'hx-swap-oob="true"' in form
    assert '<input type="hidden" name="sort" value="-total">' in form
    assert 'value="3 Jan 2025"' in form  # the date as understood
    assert len(listed(response)) == 10
    assert "HX-Request" in response["Vary"]


@pytest.mark.parametrize(
    "headers", [HTMX | {"HX-Boosted": "true"}, HTMX | {"HX-History-Restore-Request": "true"}]
)
def test_boosted_and_history_restore_requests_get_the_whole_page(member_of, firm, headers):
    factories.invoices(firm, 2)
    body = member_of("operator").get(invoices_url(firm), headers=headers).content.decode()
    assert "<html" in body and 'role="search"' in body
    assert "hx-swap-oob" not in body


def test_full_page_has_no_out_of_band_fragments(member_of, firm):
    factories.invoices(firm, 2)
    body = member_of("operator").get(invoices_url(firm)).content.decode()
    assert "hx-swap-oob" not in body
    assert '<div id="results" hx-indicator="#results">' in body
    assert 'hx-get="/linked/' in body and 'hx-push-url="true"' in body


# --- Empty states and errors ----------------------------------------------------------------


def test_no_rows_yet_says_to_refresh(member_of, firm):
    page = member_of("operator").get(payments_url(firm)).content.decode()
    assert "No linked payments in this connection yet" in page
    assert "Nothing matches" not in page


def test_nothing_matching_offers_to_clear_the_filter(member_of, firm):
    factories.invoices(firm, 2)
    client = member_of("operator")
    for headers in ({}, HTMX):
        body = client.get(invoices_url(firm), {"contact": "nobody"}, headers=headers)
        body = body.content.decode()
        assert "Nothing matches this filter." in body
        assert f'<a class="button" href="{invoices_url(firm)}">Clear the filter</a>' in body


@pytest.mark.parametrize("headers", [{}, HTMX | {"HX-Trigger": "list-filter"}])
def test_invalid_filter_is_shown_on_the_page_and_lists_nothing(member_of, firm, headers):
    factories.invoices(firm, 3)
    response = member_of("operator").get(
        invoices_url(firm),
        {"date_from": "2024-13-45", "amount_min": "9", "amount_max": "1"},
        headers=headers,
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert '<li><a href="#id_date_from">Invoice date from</a>: Enter a valid date.</li>' in body
    assert "Total to</a>: Must not be less than “Total from”." in body
    # each field in error is marked and says why beside it (htmx brings the form back too)
    field = re.search(r'<input type="text" name="date_from" value="2024-13-45"[^>]*>', body)[0]
    assert 'aria-invalid="true"' in field
    assert 'aria-describedby="id_date_from_error"' in field
    assert '<p class="field-error" id="id_date_from_error">Enter a valid date.</p>' in body
    assert '<div class="field invalid">' in body
    assert listed(response) == []
    assert "Unlink from Xero" not in body


# --- CSV export -----------------------------------------------------------------------------


def exported(response) -> list[list[str]]:
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.streaming  # written as it is read, never built whole
    text = body(response)
    assert text.startswith("\ufeff")  # a BOM: Excel reads UTF-8
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))


def test_export_is_the_whole_filtered_sorted_list(member_of, firm, other_firm):
    factories.invoices(firm, 70, contact_name="Acme")
    factories.invoices(firm, 5, contact_name="Else")
    response = member_of("viewer").get(
        invoices_url(firm), {"_export": "csv", "contact": "acme", "sort": "total", "page": "2"}
    )
    assert response["Content-Disposition"] == 'attachment; filename="linked-xero-invoices.csv"'
    header, *rows = exported(response)
    assert header[:3] == ["Number", "Xero number", "Date"]
    assert len(rows) == 70  # every matching row, not one page
    totals = [Decimal(row[header.index("Total")]) for row in rows]
    assert totals == sorted(totals)
    assert all(row[header.index("Contact")] == "Acme" for row in rows)


def test_export_values_are_plain_and_formulas_stay_text(member_of, firm):
    factories.invoice(
        firm, contact_name='=HYPERLINK("http://evil")', total=Decimal("1234.5"), xero_status=""
    )
    header, row = exported(member_of("viewer").get(invoices_url(firm), {"_export": "csv"}))
    record = dict(zip(header, row, strict=True))
    assert record["Contact"] == '\'=HYPERLINK("http://evil")'
    assert record["Total"] == "1234.50"  # a number a spreadsheet sums; its currency beside it
    assert record["Currency"] == "AUD"
    assert record["Xero status"] == "Not checked"
    assert "pk" not in header and "" not in header


def test_export_of_an_invalid_filter_is_empty(member_of, firm):
    factories.invoices(firm, 3)
    response = member_of("viewer").get(
        payments_url(firm), {"_export": "csv", "date_to": "2024-02-30"}
    )
    assert len(exported(response)) == 1  # the header alone


# --- Queries --------------------------------------------------------------------------------


def mirror_queries(captured, table: str) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if table in q["sql"]]


@pytest.mark.parametrize(
    "make, url, table",
    [
        (factories.invoices, invoices_url, "mirror_linkedinvoice"),
        (factories.payments, payments_url, "mirror_linkedpayment"),
    ],
)
def test_query_count_does_not_grow_with_the_data(member_of, firm, make, url, table):
    client = member_of("operator")
    client.get(url(firm))  # warm the session
    counts = []
    for rows in (10, 990):  # 10 rows, then 1,000
        make(firm, rows)
        with CaptureQueriesContext(db) as captured:
            response = client.get(url(firm), {"sort": "-contact_name", "contact": "Contact"})
        assert response.status_code == 200
        mirror = mirror_queries(captured, table)
        assert len(mirror) == 2, mirror  # one COUNT, one page
        assert "COUNT(" in mirror[0] and " LIMIT " in mirror[1]  # never the whole table
        counts.append(len(captured))
    assert counts[0] == counts[1]
