"""The report's filter: the kind of finding, the search box (the invoice's number, reference,
matter and contact), the Xero status."""

import django_filters as filters
from django import forms
from django.db.models import Q

from unlinker.core.listviews import ListFilterSet
from unlinker.mirror.models import XeroStatus

from .models import Finding

XERO_STATUS_CHOICES = [
    (value, label) for value, label in XeroStatus.choices if value != XeroStatus.UNKNOWN
]


class FindingFilterSet(ListFilterSet):
    kind = filters.ChoiceFilter(label="Finding", choices=Finding.Kind.choices, empty_label="Any")
    q = filters.CharFilter(
        label="Search",
        method="filter_search",
        help_text="Number, reference, matter or contact",
        widget=forms.TextInput(attrs={"type": "search"}),
        max_length=200,
    )
    xero_status = filters.ChoiceFilter(
        label="In Xero", choices=XERO_STATUS_CHOICES, empty_label="Any"
    )

    def filter_search(self, queryset, name, value):
        # A run's findings are few (hundreds): the joins to the invoice cost little.
        return queryset.filter(
            Q(invoice_number__icontains=value)
            | Q(invoice__reference__icontains=value)
            | Q(invoice__matter_name__icontains=value)
            | Q(invoice__contact_name__icontains=value)
        )
