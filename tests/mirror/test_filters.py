"""Each filter of the two lists, combined filters, and input the filter refuses."""

from datetime import date
from decimal import Decimal

import pytest
from django.utils import timezone

from unlinker.mirror.filters import LinkedInvoiceFilterSet, LinkedPaymentFilterSet
from unlinker.mirror.models import LinkStatus, XeroStatus
from unlinker.mirror.selectors import linked_invoices, linked_payments

from . import factories

pytestmark = pytest.mark.django_db


def invoice_numbers(connection, **params) -> list[str]:
    filterset = LinkedInvoiceFilterSet(params, queryset=linked_invoices(connection))
    assert not filterset.errors, filterset.errors
    return sorted(filterset.qs.values_list("invoice_number", flat=True))


def payment_references(connection, **params) -> list[str]:
    filterset = LinkedPaymentFilterSet(params, queryset=linked_payments(connection))
    assert not filterset.errors, filterset.errors
    return sorted(filterset.qs.values_list("reference", flat=True))


def test_no_filter_lists_every_invoice_of_the_connection_only(firm, other_firm):
    factories.invoices(firm, 3, invoice_number="MINE")
    assert invoice_numbers(firm) == ["MINE"] * 3


def test_vanished_records_are_not_listed(firm):
    factories.invoice(firm, invoice_number="HERE")
    factories.invoice(firm, invoice_number="GONE", vanished_at=timezone.now())
    assert invoice_numbers(firm) == ["HERE"]


def test_invoice_date_range_is_inclusive(firm):
    for day in (date(2025, 1, 10), date(2025, 2, 1), date(2025, 3, 1)):
        factories.invoice(firm, invoice_number=day.isoformat(), invoice_date=day)
    assert invoice_numbers(firm, date_from="2025-02-01") == ["2025-02-01", "2025-03-01"]
    assert invoice_numbers(firm, date_to="2025-02-01") == ["2025-01-10", "2025-02-01"]
    assert invoice_numbers(firm, date_from="2025-02-01", date_to="2025-02-01") == ["2025-02-01"]


def test_number_search_covers_number_xero_number_and_reference(firm):
    factories.invoice(firm, invoice_number="INV-777", xero_invoice_number="X-1", reference="a")
    factories.invoice(firm, invoice_number="B", xero_invoice_number="XERO-ABC", reference="b")
    factories.invoice(firm, invoice_number="C", xero_invoice_number="X-3", reference="Retainer May")
    assert invoice_numbers(firm, q="inv-777") == ["INV-777"]
    assert invoice_numbers(firm, q="xero-abc") == ["B"]
    assert invoice_numbers(firm, q="RETAINER") == ["C"]
    assert invoice_numbers(firm, q="nothing like it") == []


def test_matter_matches_a_name_fragment_or_an_id(firm):
    factories.invoice(firm, invoice_number="BROWN", matter_id=4242, matter_name="Estate of Brown")
    factories.invoice(firm, invoice_number="SMITH", matter_id=7, matter_name="Smith v Jones 4242")
    factories.invoice(firm, invoice_number="OTHER", matter_id=8, matter_name="Conveyancing")
    assert invoice_numbers(firm, matter="estate") == ["BROWN"]
    assert invoice_numbers(firm, matter="4242") == ["BROWN", "SMITH"]
    assert invoice_numbers(firm, matter="7") == ["SMITH"]
    # longer than any id the database holds: a name fragment, not an overflow
    assert invoice_numbers(firm, matter="9" * 40) == []


def test_contact_is_a_case_insensitive_fragment(firm):
    factories.invoice(firm, invoice_number="A", contact_name="Acme Pty Ltd")
    factories.invoice(firm, invoice_number="B", contact_name="Bravo Holdings")
    assert invoice_numbers(firm, contact="acme") == ["A"]
    assert invoice_numbers(firm, contact="HOLD") == ["B"]


def test_total_range_is_inclusive(firm):
    for total in ("50.00", "100.00", "150.00"):
        factories.invoice(firm, invoice_number=total, total=Decimal(total))
    assert invoice_numbers(firm, amount_min="100") == ["100.00", "150.00"]
    assert invoice_numbers(firm, amount_max="100.00") == ["100.00", "50.00"]
    assert invoice_numbers(firm, amount_min="60", amount_max="149.99") == ["100.00"]


def test_link_status(firm):
    factories.invoice(firm, invoice_number="L", link_status=LinkStatus.LINKED)
    factories.invoice(firm, invoice_number="U", link_status=LinkStatus.UNLINKED)
    assert invoice_numbers(firm, link_status="linked") == ["L"]
    assert invoice_numbers(firm, link_status="unlinked") == ["U"]


def test_xero_status_including_not_checked(firm):
    factories.invoice(firm, invoice_number="A", xero_status=XeroStatus.AUTHORISED)
    factories.invoice(firm, invoice_number="V", xero_status=XeroStatus.VOIDED)
    factories.invoice(firm, invoice_number="N", xero_status=XeroStatus.UNKNOWN)
    assert invoice_numbers(firm, xero_status="VOIDED") == ["V"]
    assert invoice_numbers(firm, xero_status="unchecked") == ["N"]


def test_has_linked_payments(firm):
    factories.invoice(firm, invoice_number="PAID", linked_payment_count=2)
    factories.invoice(firm, invoice_number="NONE", linked_payment_count=0)
    assert invoice_numbers(firm, has_payments="yes") == ["PAID"]
    assert invoice_numbers(firm, has_payments="no") == ["NONE"]


def test_combined_filters_must_all_match(firm):
    match = {"contact_name": "Acme", "total": Decimal("120"), "xero_status": XeroStatus.PAID}
    factories.invoice(firm, invoice_number="YES", invoice_date=date(2025, 4, 2), **match)
    factories.invoice(firm, invoice_number="DATE", invoice_date=date(2024, 4, 2), **match)
    factories.invoice(firm, invoice_number="CHEAP", **(match | {"total": Decimal("5")}))
    factories.invoice(firm, invoice_number="DRAFT", **(match | {"xero_status": "DRAFT"}))
    factories.invoice(firm, invoice_number="WHO", **(match | {"contact_name": "Other"}))
    params = {
        "contact": "acme",
        "amount_min": "100",
        "xero_status": "PAID",
        "date_from": "2025-01-01",
        "link_status": "linked",
    }
    assert invoice_numbers(firm, **params) == ["YES"]


def test_payment_filters(firm):
    invoice = factories.invoice(firm, invoice_number="INV-42")
    factories.payment(
        firm,
        invoice=invoice,
        reference="DEP-1",
        amount=Decimal("10"),
        payment_date=date(2025, 1, 5),
    )
    factories.payment(firm, reference="DEP-2", amount=Decimal("99"), payment_date=date(2025, 6, 5))
    assert payment_references(firm, q="inv-42") == ["DEP-1"]
    assert payment_references(firm, q="dep-2") == ["DEP-2"]
    assert payment_references(firm, date_from="2025-03-01") == ["DEP-2"]
    assert payment_references(firm, date_to="2025-03-01") == ["DEP-1"]
    assert payment_references(firm, amount_min="50") == ["DEP-2"]
    assert payment_references(firm, amount_max="50", q="dep") == ["DEP-1"]


def test_has_payments_is_an_invoice_filter_only(firm):
    factories.payment(firm, reference="P")
    assert payment_references(firm, has_payments="yes") == ["P"]  # not a payment filter: ignored


@pytest.mark.parametrize(
    "params, field",
    [
        ({"date_from": "2024-13-45"}, "date_from"),
        ({"date_to": "yesterday"}, "date_to"),
        ({"date_from": "2025-03-01", "date_to": "2025-01-01"}, "date_to"),
        ({"amount_min": "abc"}, "amount_min"),
        ({"amount_min": "12.345"}, "amount_min"),
        ({"amount_max": "1e400"}, "amount_max"),
        ({"amount_max": "NaN"}, "amount_max"),
        ({"amount_min": "200", "amount_max": "100"}, "amount_max"),
        ({"link_status": "maybe"}, "link_status"),
        ({"xero_status": "<script>"}, "xero_status"),
        ({"has_payments": "perhaps"}, "has_payments"),
        ({"q": "x" * 201}, "q"),
        ({"contact": "nul\x00byte"}, "contact"),
    ],
)
def test_invalid_input_is_a_form_error_and_matches_nothing(firm, params, field):
    factories.invoices(firm, 3)
    filterset = LinkedInvoiceFilterSet(params, queryset=linked_invoices(firm))
    assert field in filterset.errors
    assert filterset.qs.count() == 0  # never the rows of the valid fields alone


def test_empty_values_are_no_filter(firm):
    factories.invoices(firm, 2)
    params = dict.fromkeys(LinkedInvoiceFilterSet.base_filters, "")
    filterset = LinkedInvoiceFilterSet(params, queryset=linked_invoices(firm))
    assert not filterset.errors
    assert not filterset.is_filtering
    assert filterset.qs.count() == 2
