from django.contrib.auth.decorators import permission_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from unlinker.accounts.roles import BROWSE, MANAGE_CONNECTIONS, QUEUE_UNLINK
from unlinker.connections.selectors import connections_for
from unlinker.core.listviews import BulkAction, ObjectListView
from unlinker.core.selection import SOURCES

from .tables import INVOICE_EXPORT, PAYMENT_EXPORT, LinkedInvoiceTable, LinkedPaymentTable

# The plan page shows what would happen; nothing changes until it is confirmed there.
UNLINK = BulkAction("Unlink from Xero", "unlinking:plan", QUEUE_UNLINK, style="danger")


class LinkedRecordList(ObjectListView):
    """Rows and filters come from the selection's sources: the page and "Unlink from Xero"
    cannot disagree about what a filter matches."""

    kind: str
    url_name: str
    lead = ""
    template_name = "mirror/linked_list.html"
    actions = (UNLINK,)

    @property
    def filterset_class(self):
        return SOURCES[self.kind].filterset_class

    def get_queryset(self, request, connection):
        return SOURCES[self.kind].rows(connection)


class LinkedInvoiceList(LinkedRecordList):
    kind = "invoices"
    url_name = "mirror:invoice_list"
    title = "Linked Xero Invoices"
    lead = (
        "Approved Actionstep invoices linked to a sales invoice in Xero. The payments applied "
        "to an invoice are unlinked before it."
    )
    table_class = LinkedInvoiceTable
    nouns = ("invoice", "invoices")
    export_name = "linked-xero-invoices"
    export_columns = INVOICE_EXPORT


class LinkedPaymentList(LinkedRecordList):
    kind = "payments"
    url_name = "mirror:payment_list"
    title = "Linked Xero Payments"
    lead = "Payments in Actionstep linked to a payment in Xero."
    table_class = LinkedPaymentTable
    nouns = ("payment", "payments")
    export_name = "linked-xero-payments"
    export_columns = PAYMENT_EXPORT


@permission_required(BROWSE, raise_exception=True)
@require_GET
def invoices(request):
    return _open_first_connection(request, LinkedInvoiceList)


@permission_required(BROWSE, raise_exception=True)
@require_GET
def payments(request):
    return _open_first_connection(request, LinkedPaymentList)


def _open_first_connection(request, list_view):
    connection = connections_for(request.user).first()
    if connection is None:
        context = {
            "title": list_view.title,
            "can_connect": request.user.has_perm(MANAGE_CONNECTIONS),
        }
        return render(request, "mirror/no_connection.html", context)
    url = reverse(list_view.url_name, kwargs={"connection_id": connection.pk})
    query = request.GET.urlencode()  # a shared link without a connection keeps its filter
    return redirect(f"{url}?{query}" if query else url)
