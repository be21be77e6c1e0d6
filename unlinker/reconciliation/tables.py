import django_tables2 as tables

from unlinker.mirror.tables import SELECT_ATTRS, BadgeColumn, MoneyColumn

from .models import CLEANABLE


class CleanableCheckBoxColumn(tables.CheckBoxColumn):
    """Only orphans and duplicates can be cleaned up in Xero: the other rows get no box."""

    def render(self, value, bound_column, record):
        if record.kind not in CLEANABLE:
            return ""
        return super().render(value, bound_column, record)


def _by(field: str) -> tuple[str, str]:
    # Many findings share a kind or a status: the id breaks ties, so that paging through a
    # sorted report never shows a row twice or skips one.
    return (field, "id")


class FindingTable(tables.Table):
    pk = CleanableCheckBoxColumn(accessor="pk", attrs=SELECT_ATTRS)
    kind = BadgeColumn("Finding", order_by=_by("kind"))
    invoice_number = tables.Column("Invoice", order_by=_by("invoice_number"))
    xero_status = BadgeColumn("In Xero", order_by=_by("xero_status"))
    actionstep_total = MoneyColumn("Actionstep total", order_by=_by("actionstep_total"))
    xero_total = MoneyColumn("Xero total", order_by=_by("xero_total"))
    xero_invoice_id = tables.Column("Xero invoice", orderable=False)
    detail = tables.Column("Detail", orderable=False)

    class Meta:
        order_by = ("kind", "invoice_number")
        empty_text = "Nothing differs: Actionstep and Xero agree."
