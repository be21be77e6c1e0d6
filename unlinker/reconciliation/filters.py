"""The report's filter: the kind of finding, the invoice number, the Xero status."""

import django_filters as filters

from unlinker.core.listviews import ListFilterSet
from unlinker.mirror.models import XeroStatus

from .models import Finding

XERO_STATUS_CHOICES = [
    (value, label) for value, label in XeroStatus.choices if value != XeroStatus.UNKNOWN
]


class FindingFilterSet(ListFilterSet):
    kind = filters.ChoiceFilter(label="Finding", choices=Finding.Kind.choices, empty_label="Any")
    q = filters.CharFilter(
        label="Invoice number", field_name="invoice_number", lookup_expr="icontains", max_length=200
    )
    xero_status = filters.ChoiceFilter(
        label="In Xero", choices=XERO_STATUS_CHOICES, empty_label="Any"
    )
