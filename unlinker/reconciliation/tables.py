import django_tables2 as tables
from django.utils.html import format_html

from unlinker.core.listviews import ExportColumn
from unlinker.integrations import weblinks
from unlinker.mirror.tables import (
    SELECT_ATTRS,
    XERO_LABELS,
    BadgeColumn,
    InvoiceNumberColumn,
    MoneyColumn,
    XeroColumn,
    _attrs,
)

from .models import CLEANABLE


class CleanableCheckBoxColumn(tables.CheckBoxColumn):
    """Only orphans and duplicates can be cleaned up in Xero: the other rows get no box."""

    def render(self, value, bound_column, record):
        if record.kind not in CLEANABLE:
            return ""
        return super().render(value, bound_column, record)


class DetailColumn(tables.Column):
    """What differs, in full: it wraps rather than being cut."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("attrs", _attrs("detail"))
        super().__init__(*args, **kwargs)

    def render(self, value):
        return format_html("{}", value)


def _by(field: str) -> tuple[str, str]:
    # Many findings share a kind or a status: the id breaks ties, so that paging through a
    # sorted report never shows a row twice or skips one.
    return (field, "id")


def _invoice_in_actionstep(finding, connection) -> str:
    if finding.invoice is None:
        return ""
    return weblinks.actionstep_invoice_url(connection, finding.invoice.actionstep_id)


class FindingTable(tables.Table):
    pk = CleanableCheckBoxColumn(accessor="pk", attrs=SELECT_ATTRS)
    kind = BadgeColumn("Finding", order_by=_by("kind"))
    invoice_number = InvoiceNumberColumn(
        "Invoice", order_by=_by("invoice_number"), href=_invoice_in_actionstep
    )
    xero_status = XeroColumn(
        "In Xero",
        order_by=_by("xero_status"),
        href=lambda finding, connection: weblinks.xero_invoice_url(
            connection, finding.xero_invoice_id
        ),
    )
    actionstep_total = MoneyColumn(
        "Actionstep total", order_by=_by("actionstep_total"), currency="currency"
    )
    xero_total = MoneyColumn("Xero total", order_by=_by("xero_total"), currency="currency")
    detail = DetailColumn("Detail", orderable=False)

    class Meta:
        attrs = {"class": "fits"}
        order_by = ("kind", "invoice_number")
        empty_text = "Nothing differs: Actionstep and Xero agree."


FINDING_EXPORT = (
    ExportColumn("Finding", lambda finding: finding.get_kind_display()),
    ExportColumn("Invoice", "invoice_number"),
    ExportColumn("In Xero", lambda finding: XERO_LABELS.get(finding.xero_status, "")),
    ExportColumn("Currency", "currency"),
    ExportColumn("Actionstep total", "actionstep_total"),
    ExportColumn("Xero total", "xero_total"),
    ExportColumn(
        "Xero invoice",
        lambda finding, connection: weblinks.xero_invoice_url(connection, finding.xero_invoice_id),
        with_connection=True,
    ),
    ExportColumn("Detail", "detail"),
)
