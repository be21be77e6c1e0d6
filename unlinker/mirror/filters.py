"""The Filter menus of the two Linked Xero lists. Both take the same query parameters (q,
date_from, date_to, matter, contact, amount_min, amount_max, link_status, xero_status), so a
link to one list reads like a link to the other; invoices add has_payments, payments invoice
(the invoice's number: the invoices list links each invoice to its payments that way).

`q` is the one search box: number, reference, matter and contact at once, read as one text
(models.search_text) that one trigram index serves on PostgreSQL (migration 0004)."""

from datetime import date

import django_filters as filters
from django import forms
from django.db.models import Q
from django.db.models.lookups import IContains

from unlinker.core import display
from unlinker.core.listviews import ListFilterSet

from .forms import LinkedFilterForm
from .models import (
    INVOICE_SEARCH_FIELDS,
    PAYMENT_SEARCH_FIELDS,
    LinkStatus,
    XeroStatus,
    search_text,
)

# A matter "id" longer than a PositiveBigIntegerField holds can only be part of a name: as an
# integer it would overflow the database's.
MAX_BIGINT = 2**63 - 1
TEXT = {"max_length": 200}
# The money fields' own bounds: a value outside them cannot match anything and overflows the
# comparison on some databases.
MONEY = {"max_digits": 14, "decimal_places": 2}
# XeroStatus.UNKNOWN is the empty string, which a choice field reads as "no filter".
NOT_CHECKED = "unchecked"


def _xero_choices(*statuses: XeroStatus) -> list[tuple[str, str]]:
    return [(NOT_CHECKED if s == XeroStatus.UNKNOWN else s.value, s.label) for s in statuses]


# What each list's Xero status column can hold. An invoice's is Xero's own; a payment's is
# worked out from its invoice's copy (reconciliation.services): live (Authorised), deleted, or
# missing with its invoice.
INVOICE_XERO_STATUSES = _xero_choices(*XeroStatus)
PAYMENT_XERO_STATUSES = _xero_choices(
    XeroStatus.UNKNOWN, XeroStatus.AUTHORISED, XeroStatus.DELETED, XeroStatus.MISSING
)


class ShownDateField(forms.DateField):
    """Shows a valid date the way the lists show dates, whichever accepted form it was typed
    in ("3/12/2026" comes back as "3 Dec 2026"), so that what was understood can be seen."""

    def bound_data(self, data, initial):
        try:
            return self.to_python(data) or data
        except forms.ValidationError:
            return data


class ShownDateInput(forms.DateInput):
    def format_value(self, value):
        if isinstance(value, date):
            return display.format_date(value)
        return super().format_value(value)


class DateFilter(filters.DateFilter):
    field_class = ShownDateField


def _date(field_name: str, lookup_expr: str, label: str) -> DateFilter:
    """A date typed as the lists show dates ("3 Dec 2026"), not the browser's date picker,
    whose format follows the browser's language (mm/dd/yyyy in an American Chromium)."""
    return DateFilter(
        field_name=field_name,
        lookup_expr=lookup_expr,
        label=label,
        input_formats=display.DATE_INPUT_FORMATS,
        widget=ShownDateInput(
            attrs={"placeholder": display.DATE_PLACEHOLDER, "autocomplete": "off"},
        ),
    )


def _money(field_name: str, lookup_expr: str, label: str) -> filters.NumberFilter:
    return filters.NumberFilter(
        field_name=field_name, lookup_expr=lookup_expr, label=label, **MONEY
    )


class LinkedRecordFilterSet(ListFilterSet):
    search_fields: tuple[str, ...]

    q = filters.CharFilter(
        label="Search",
        method="filter_search",
        help_text="Number, reference, matter or contact",
        widget=forms.TextInput(attrs={"type": "search"}),
        **TEXT,
    )
    matter = filters.CharFilter(label="Matter (name or id)", method="filter_matter", **TEXT)
    contact = filters.CharFilter(
        label="Contact", field_name="contact_name", lookup_expr="icontains", **TEXT
    )
    link_status = filters.ChoiceFilter(
        label="Link status", choices=LinkStatus.choices, empty_label="Any"
    )

    class Meta:
        form = LinkedFilterForm

    def filter_search(self, queryset, name, value):
        match = Q(IContains(search_text(self.search_fields), value))
        if value.isdecimal() and int(value) <= MAX_BIGINT:
            match |= Q(matter_id=int(value))
        return queryset.filter(match)

    def filter_matter(self, queryset, name, value):
        match = Q(matter_name__icontains=value)
        if value.isdecimal() and int(value) <= MAX_BIGINT:
            match |= Q(matter_id=int(value))
        return queryset.filter(match)

    def filter_xero_status(self, queryset, name, value):
        return queryset.filter(xero_status=XeroStatus.UNKNOWN if value == NOT_CHECKED else value)


def _xero_status(choices) -> filters.ChoiceFilter:
    return filters.ChoiceFilter(
        label="Xero status", choices=choices, empty_label="Any", method="filter_xero_status"
    )


class LinkedInvoiceFilterSet(LinkedRecordFilterSet):
    search_fields = INVOICE_SEARCH_FIELDS
    xero_status = _xero_status(INVOICE_XERO_STATUSES)

    date_from = _date("invoice_date", "gte", "Invoice date from")
    date_to = _date("invoice_date", "lte", "Invoice date to")
    amount_min = _money("total", "gte", "Total from")
    amount_max = _money("total", "lte", "Total to")
    has_payments = filters.ChoiceFilter(
        label="Has linked payments",
        choices=[("yes", "Yes"), ("no", "No")],
        empty_label="Any",
        method="filter_has_payments",
    )

    def filter_has_payments(self, queryset, name, value):
        if value == "yes":
            return queryset.filter(linked_payment_count__gt=0)
        return queryset.filter(linked_payment_count=0)


class LinkedPaymentFilterSet(LinkedRecordFilterSet):
    search_fields = PAYMENT_SEARCH_FIELDS
    xero_status = _xero_status(PAYMENT_XERO_STATUSES)
    invoice = filters.CharFilter(
        label="Invoice number", field_name="invoice_number", lookup_expr="exact", **TEXT
    )

    date_from = _date("payment_date", "gte", "Payment date from")
    date_to = _date("payment_date", "lte", "Payment date to")
    amount_min = _money("amount", "gte", "Amount from")
    amount_max = _money("amount", "lte", "Amount to")
