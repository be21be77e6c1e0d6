import django_tables2 as tables

from .models import Finding


class FindingTable(tables.Table):
    pk = tables.CheckBoxColumn(
        accessor="pk", attrs={"th__input": {"data-toggle-all": "pk", "aria-label": "Select all"}}
    )
    kind = tables.Column(verbose_name="Finding")
    invoice_number = tables.Column(verbose_name="Invoice")
    xero_status = tables.TemplateColumn(
        '<span class="badge {{ value }}">{{ value|default:"—" }}</span>', verbose_name="In Xero"
    )
    actionstep_total = tables.Column(
        verbose_name="Actionstep total", attrs={"td": {"class": "num"}}
    )
    xero_total = tables.Column(verbose_name="Xero total", attrs={"td": {"class": "num"}})
    detail = tables.Column(orderable=False)

    class Meta:
        model = Finding
        fields = (
            "pk",
            "kind",
            "invoice_number",
            "xero_status",
            "actionstep_total",
            "xero_total",
            "detail",
        )
        order_by = ("kind", "invoice_number")
        empty_text = "Nothing differs: Actionstep and Xero agree."
