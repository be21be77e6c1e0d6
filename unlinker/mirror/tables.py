import django_tables2 as tables
from django.utils.formats import date_format
from django.utils.html import format_html

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


class NumberColumn(tables.Column):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("attrs", {"th": {"class": "num"}, "td": {"class": "num"}})
        super().__init__(*args, **kwargs)


class MoneyColumn(NumberColumn):
    def render(self, value):
        return f"{value:,.2f}"

    def value(self, value):
        return value  # the CSV keeps the plain decimal, which spreadsheets read as a number


class DateColumn(tables.Column):
    """A date in the site's short format. django-tables2's own DateColumn renders a template
    for every cell, which costs more than the rest of the row together."""

    def render(self, value):
        return date_format(value, "SHORT_DATE_FORMAT")

    def value(self, value):
        return value


class BadgeColumn(tables.Column):
    """A choice field shown as a badge. django-tables2 hands `render` the choice's label; the
    stored value becomes the badge's CSS class (see app.css)."""

    def render(self, value, record, bound_column):
        stored = bound_column.accessor.resolve(record) or "unknown"
        return format_html('<span class="badge {}">{}</span>', stored, value)

    def value(self, value):
        return value


class LinkedInvoiceTable(tables.Table):
    pk = tables.CheckBoxColumn(accessor="pk", attrs=SELECT_ATTRS)
    invoice_number = tables.Column("Number", order_by=_by("invoice_number"))
    xero_invoice_number = tables.Column("Xero number", order_by=_by("xero_invoice_number"))
    invoice_date = DateColumn("Date", order_by=_by("invoice_date"))
    matter_name = tables.Column("Matter", order_by=_by("matter_name"))
    contact_name = tables.Column("Contact", order_by=_by("contact_name"))
    total = MoneyColumn("Total", order_by=_by("total"))
    total_paid = MoneyColumn("Paid", order_by=_by("total_paid"))
    linked_payment_count = NumberColumn("Linked payments", order_by=_by("linked_payment_count"))
    link_status = BadgeColumn("Link", order_by=_by("link_status"))
    xero_status = BadgeColumn("Xero status", order_by=_by("xero_status"))

    class Meta:
        empty_text = "No linked invoices in this connection yet: they appear once it is synced."


class LinkedPaymentTable(tables.Table):
    pk = tables.CheckBoxColumn(accessor="pk", attrs=SELECT_ATTRS)
    reference = tables.Column("Reference", order_by=_by("reference"))
    payment_date = DateColumn("Date", order_by=_by("payment_date"))
    invoice_number = tables.Column("Invoice", order_by=_by("invoice_number"))
    matter_name = tables.Column("Matter", order_by=_by("matter_name"))
    contact_name = tables.Column("Contact", order_by=_by("contact_name"))
    amount = MoneyColumn("Amount", order_by=_by("amount"))
    link_status = BadgeColumn("Link", order_by=_by("link_status"))
    xero_status = BadgeColumn("Xero status", order_by=_by("xero_status"))

    class Meta:
        empty_text = "No linked payments in this connection yet: they appear once it is synced."
