from django.contrib.auth.decorators import permission_required
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from unlinker.accounts.roles import BROWSE, MANAGE_CONNECTIONS, QUEUE_UNLINK
from unlinker.connections.selectors import connection_for, connections_for
from unlinker.core.listviews import BulkAction, ObjectListView
from unlinker.unlinking.views import plan_view

from .selection import KINDS, Selection
from .tables import INVOICE_EXPORT, PAYMENT_EXPORT, LinkedInvoiceTable, LinkedPaymentTable

UNLINK = BulkAction("Unlink from Xero", "mirror:unlink", QUEUE_UNLINK, style="danger")


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
        return KINDS[self.kind].filterset_class

    def get_queryset(self, request, connection):
        return KINDS[self.kind].rows(connection)


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


LISTS = {view.kind: view for view in (LinkedInvoiceList, LinkedPaymentList)}


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


@require_POST
@permission_required(QUEUE_UNLINK, raise_exception=True)
def unlink(request, connection_id):
    connection = connection_for(request.user, connection_id)
    if request.POST.get("kind") not in KINDS:
        return HttpResponseBadRequest("Say which list the selection comes from.")
    selection = Selection.from_request(request, connection, request.POST["kind"])
    return hand_off_to_plan(request, connection, selection)


def hand_off_to_plan(request, connection, selection: Selection):
    """Where a selection becomes an unlink plan: the plan page shows it, nothing is changed
    until it is confirmed there."""
    return plan_view(request, connection, selection)
