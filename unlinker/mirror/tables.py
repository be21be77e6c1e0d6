"""The tables of the two Linked Xero lists, and the column types the other lists reuse.

They fit a 1280 px screen: long names are cut to one line with the whole text on hover
(`TextColumn`), each column has a width class (app.css), and what a record is in Xero is one
status badge that opens it there, never its GUID. Dates, times and money show as everywhere else
(unlinker.core.display)."""

import django_tables2 as tables
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from unlinker.core import display
from unlinker.core.listviews import ExportColumn
from unlinker.integrations import actionstep_resources as res
from unlinker.integrations import weblinks

from .models import LinkStatus, XeroStatus

SELECT_ATTRS = {
    "th": {"class": "select"},
    "td": {"class": "select"},
    "th__input": {"data-toggle-all": "pk", "aria-label": "Select every row on this page"},
    "td__input": {"aria-label": lambda record: f"Select {record}"},
}


def _by(field: str) -> tuple[str, str]:
    # Many rows share a date, a matter or an amount: the id breaks ties so that paging through
    # a sorted list never shows a row twice or skips one.
    return (field, "id")


def _attrs(css: str) -> dict:
    return {"th": {"class": css}, "td": {"class": css}}


def external_link(url: str, text, where: str, css: str = ""):
    """A link to a record's page in Xero or Actionstep, in a new tab, saying so."""
    return format_html(
        '<a class="external {}" href="{}" target="_blank" rel="noopener noreferrer" '
        'title="{} (opens {})">{}<span class="visually-hidden"> (opens {})</span></a>',
        css,
        url,
        text,
        where,
        text,
        where,
    )


class TextColumn(tables.Column):
    """Text that may be long (names from Actionstep): one line, cut with an ellipsis, the
    whole text on hover. `href(record, connection)` makes it a link to where it lives."""

    def __init__(self, *args, href=None, where="", **kwargs):
        self.href, self.where = href, where
        kwargs.setdefault("attrs", _attrs("text"))
        super().__init__(*args, **kwargs)

    def render(self, value, record, table):
        url = self.href(record, getattr(table, "connection", None)) if self.href else ""
        if url:
            return external_link(url, value, self.where, css="truncate")
        return format_html('<span class="truncate" title="{}">{}</span>', value, value)


class InvoiceNumberColumn(TextColumn):
    """An invoice's number, which stays in view, opening the invoice in Actionstep."""

    def __init__(self, header: str, *, href, **kwargs):
        kwargs.setdefault("attrs", _attrs("number"))
        super().__init__(header, href=href, where="Actionstep", **kwargs)


class NumberColumn(tables.Column):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("attrs", _attrs("num"))
        super().__init__(*args, **kwargs)


class MoneyColumn(NumberColumn):
    """An amount with its currency ("AUD 1,234.50"); `currency` names the record's attribute
    that holds it."""

    def __init__(self, *args, currency: str = "currency_code", **kwargs):
        self.currency = currency
        kwargs.setdefault("attrs", _attrs("num money-col"))
        super().__init__(*args, **kwargs)

    def render(self, value, record):
        return display.money_html(value, getattr(record, self.currency, "") or "")


class DateColumn(tables.Column):
    """A date as every page shows it. django-tables2's own DateColumn renders a template for
    every cell, which costs more than the rest of the row together."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("attrs", _attrs("date"))
        super().__init__(*args, **kwargs)

    def render(self, value):
        return display.format_date(value)


class DateTimeColumn(tables.Column):
    """A date and time with its zone named: the record's connection's zone when `zone_from`
    names the attribute holding the connection, else the page's (the current timezone)."""

    def __init__(self, *args, zone_from: str = "", **kwargs):
        self.zone_from = zone_from
        kwargs.setdefault("attrs", _attrs("datetime"))
        super().__init__(*args, **kwargs)

    def render(self, value, record):
        zone = display.zone_of(getattr(record, self.zone_from)) if self.zone_from else None
        return display.format_datetime(value, zone)


class BadgeColumn(tables.Column):
    """A choice field shown as a badge. django-tables2 hands `render` the choice's label; the
    stored value becomes the badge's CSS class (see app.css)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("attrs", _attrs("badge-col"))
        super().__init__(*args, **kwargs)

    def render(self, value, record, bound_column):
        stored = bound_column.accessor.resolve(record) or "unknown"
        return format_html('<span class="badge {}">{}</span>', stored, value)


# What Actionstep did to a record beyond unlinking it, said next to its link status: a deleted
# invoice is not merely "Unlinked".
ACTIONSTEP_FATES = {
    res.BILL_DELETED: "Deleted in Actionstep",
    res.PAYMENT_REVERSED: "Reversed in Actionstep",
}


class LinkColumn(BadgeColumn):
    def render(self, value, record, bound_column):
        badge = super().render(value, record, bound_column)
        fate = ACTIONSTEP_FATES.get(record.actionstep_status)
        if fate:
            return format_html('{} <span class="badge gone">{}</span>', badge, fate)
        return badge


XERO_LABELS = {status.value: status.label for status in XeroStatus if status.value}


class XeroColumn(BadgeColumn):
    """The record's status in Xero, as a badge that opens it in Xero; `number` shows Xero's
    number where it differs from Actionstep's."""

    def __init__(self, *args, href, number: str = "", **kwargs):
        self.href, self.number = href, number
        super().__init__(*args, **kwargs)

    def render(self, value, record, bound_column, table):
        stored = bound_column.accessor.resolve(record) or "unknown"
        xero_number = getattr(record, self.number, "") if self.number else ""
        # (a finding's status is Xero's word, not a choice of the model: its label is ours)
        text = XERO_LABELS.get(stored, value)
        if xero_number and xero_number != record.invoice_number:
            text = format_html("{} · {}", xero_number, value)
        url = ""
        if stored != XeroStatus.MISSING:  # Xero has no page for what it does not have
            url = self.href(record, getattr(table, "connection", None))
        if not url:
            return format_html('<span class="badge {}">{}</span>', stored, text)
        return external_link(url, text, "Xero", css=f"badge {stored}")


def _invoice_in_actionstep(record, connection) -> str:
    bill = getattr(record, "invoice_actionstep_id", None) or record.actionstep_id
    return weblinks.actionstep_invoice_url(connection, bill)


def _matter_in_actionstep(record, connection) -> str:
    return weblinks.actionstep_matter_url(connection, record.matter_id)


class PaymentsOfInvoiceColumn(NumberColumn):
    """How many of the invoice's payments are still linked, opening the payments list at them
    (at all of its payments when none is)."""

    def render(self, value, record, table):
        if not record.invoice_number:
            return value
        connection = getattr(table, "connection", None)
        if connection is None:
            return value
        query = {"invoice": record.invoice_number}
        if value:
            query["link_status"] = LinkStatus.LINKED
        if not hasattr(table, "_payments_url"):  # once a page, not once a row
            table._payments_url = reverse("mirror:payment_list", args=[connection.pk])
        url = f"{table._payments_url}?{urlencode(query)}"
        # The accessible name starts with the number shown (WCAG's label in name).
        label = (
            f"{display.plural(value, 'linked payment')} of {record.invoice_number}"
            if value
            else f"0 linked payments: every payment of {record.invoice_number}"
        )
        return format_html(
            '<a href="{}" title="{}" aria-label="{}">{}</a>', url, label, label, value
        )


class LinkedInvoiceTable(tables.Table):
    pk = tables.CheckBoxColumn(accessor="pk", attrs=SELECT_ATTRS)
    invoice_number = InvoiceNumberColumn(
        "Number", order_by=_by("invoice_number"), href=_invoice_in_actionstep
    )
    invoice_date = DateColumn("Date", order_by=_by("invoice_date"))
    matter_name = TextColumn(
        "Matter", order_by=_by("matter_name"), href=_matter_in_actionstep, where="Actionstep"
    )
    contact_name = TextColumn("Contact", order_by=_by("contact_name"))
    total = MoneyColumn("Total", order_by=_by("total"))
    total_paid = MoneyColumn("Paid", order_by=_by("total_paid"))
    linked_payment_count = PaymentsOfInvoiceColumn(
        "Linked payments", order_by=_by("linked_payment_count"), attrs=_attrs("num count")
    )
    link_status = LinkColumn("Link", order_by=_by("link_status"))
    xero_status = XeroColumn(
        "Xero",
        order_by=_by("xero_status"),
        href=lambda record, connection: weblinks.xero_invoice_url(
            connection, record.xero_invoice_id
        ),
        number="xero_invoice_number",
    )

    class Meta:
        attrs = {"class": "fits"}
        empty_text = "No linked invoices in this connection yet: they appear once it is synced."


class LinkedPaymentTable(tables.Table):
    pk = tables.CheckBoxColumn(accessor="pk", attrs=SELECT_ATTRS)
    reference = TextColumn("Reference", order_by=_by("reference"), attrs=_attrs("number"))
    payment_date = DateColumn("Date", order_by=_by("payment_date"))
    invoice_number = InvoiceNumberColumn(
        "Invoice", order_by=_by("invoice_number"), href=_invoice_in_actionstep
    )
    matter_name = TextColumn(
        "Matter", order_by=_by("matter_name"), href=_matter_in_actionstep, where="Actionstep"
    )
    contact_name = TextColumn("Contact", order_by=_by("contact_name"))
    amount = MoneyColumn("Amount", order_by=_by("amount"))
    link_status = LinkColumn("Link", order_by=_by("link_status"))
    xero_status = XeroColumn(
        "Xero",
        order_by=_by("xero_status"),
        href=lambda record, connection: weblinks.xero_payment_url(
            connection, record.xero_payment_id
        ),
    )

    class Meta:
        attrs = {"class": "fits"}
        empty_text = "No linked payments in this connection yet: they appear once it is synced."


def _choice(field: str):
    return lambda row: getattr(row, f"get_{field}_display")()


def _link(row) -> str:
    fate = ACTIONSTEP_FATES.get(row.actionstep_status)
    label = row.get_link_status_display()
    return f"{label}, {fate.lower()}" if fate else label


INVOICE_EXPORT = (
    ExportColumn("Number", "invoice_number"),
    ExportColumn("Xero number", "xero_invoice_number"),
    ExportColumn("Date", "invoice_date"),
    ExportColumn("Reference", "reference"),
    ExportColumn("Matter", "matter_name"),
    ExportColumn("Contact", "contact_name"),
    ExportColumn("Currency", "currency_code"),
    ExportColumn("Total", "total"),
    ExportColumn("Paid", "total_paid"),
    ExportColumn("Linked payments", "linked_payment_count"),
    ExportColumn("Link", _link),
    ExportColumn("Xero status", _choice("xero_status")),
    ExportColumn("Xero total", "xero_total"),
)

PAYMENT_EXPORT = (
    ExportColumn("Reference", "reference"),
    ExportColumn("Date", "payment_date"),
    ExportColumn("Invoice", "invoice_number"),
    ExportColumn("Matter", "matter_name"),
    ExportColumn("Contact", "contact_name"),
    ExportColumn("Currency", "currency_code"),
    ExportColumn("Amount", "amount"),
    ExportColumn("Link", _link),
    ExportColumn("Xero status", _choice("xero_status")),
    ExportColumn("Part of a batch payment", "is_batch_payment"),
)
