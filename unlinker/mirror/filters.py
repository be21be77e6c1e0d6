"""The Filter menus of the two Linked Xero lists. Both take the same query parameters (date_from,
date_to, q, matter, contact, amount_min, amount_max, link_status, xero_status), so a link to
one list reads like a link to the other; invoices add has_payments."""

import django_filters as filters
from django import forms
from django.db.models import Q

from unlinker.core.listviews import ListFilterSet

from .forms import LinkedFilterForm
from .models import LinkStatus, XeroStatus

# A matter "id" longer than a PositiveBigIntegerField holds can only be part of a name: as an
# integer it would overflow the database's.
MAX_BIGINT = 2**63 - 1
TEXT = {"max_length": 200}
# The money fields' own bounds: a value outside them cannot match anything and overflows the
# comparison on some databases.
MONEY = {"max_digits": 14, "decimal_places": 2}
# XeroStatus.UNKNOWN is the empty string, which a choice field reads as "no filter".
NOT_CHECKED = "unchecked"
XERO_STATUS_CHOICES = [
    (NOT_CHECKED if value == XeroStatus.UNKNOWN else value, label)
    for value, label in XeroStatus.choices
]


def _date(field_name: str, lookup_expr: str, label: str) -> filters.DateFilter:
    return filters.DateFilter(
        field_name=field_name,
        lookup_expr=lookup_expr,
        label=label,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )


def _money(field_name: str, lookup_expr: str, label: str) -> filters.NumberFilter:
    return filters.NumberFilter(
        field_name=field_name, lookup_expr=lookup_expr, label=label, **MONEY
    )


class LinkedRecordFilterSet(ListFilterSet):
    search_fields: tuple[str, ...]

    q = filters.CharFilter(label="Number or reference", method="filter_search", **TEXT)
    matter = filters.CharFilter(label="Matter (name or id)", method="filter_matter", **TEXT)
    contact = filters.CharFilter(
        label="Contact", field_name="contact_name", lookup_expr="icontains", **TEXT
    )
    link_status = filters.ChoiceFilter(
        label="Link status", choices=LinkStatus.choices, empty_label="Any"
    )
    xero_status = filters.ChoiceFilter(
        label="Xero status",
        choices=XERO_STATUS_CHOICES,
        empty_label="Any",
        method="filter_xero_status",
    )

    class Meta:
        form = LinkedFilterForm

    def filter_search(self, queryset, name, value):
        match = Q()
        for field in self.search_fields:
            match |= Q(**{f"{field}__icontains": value})
        return queryset.filter(match)

    def filter_matter(self, queryset, name, value):
        match = Q(matter_name__icontains=value)
        if value.isdecimal() and int(value) <= MAX_BIGINT:
            match |= Q(matter_id=int(value))
        return queryset.filter(match)

    def filter_xero_status(self, queryset, name, value):
        return queryset.filter(xero_status=XeroStatus.UNKNOWN if value == NOT_CHECKED else value)


class LinkedInvoiceFilterSet(LinkedRecordFilterSet):
    search_fields = ("invoice_number", "xero_invoice_number", "reference")

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
    search_fields = ("reference", "invoice_number", "xero_payment_id")

    date_from = _date("payment_date", "gte", "Payment date from")
    date_to = _date("payment_date", "lte", "Payment date to")
    amount_min = _money("amount", "gte", "Amount from")
    amount_max = _money("amount", "lte", "Amount to")
