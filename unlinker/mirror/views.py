from django.contrib.auth.decorators import permission_required
from django.shortcuts import render
from django.views.decorators.http import require_POST

from unlinker.accounts.roles import BROWSE, QUEUE_UNLINK


@permission_required(BROWSE, raise_exception=True)
def payments(request):
    return render(
        request,
        "core/placeholder.html",
        {
            "title": "Linked Xero Payments",
            "lead": "Payments in Actionstep that are linked to a payment in Xero.",
        },
    )


@permission_required(BROWSE, raise_exception=True)
def invoices(request):
    return render(
        request,
        "core/placeholder.html",
        {
            "title": "Linked Xero Invoices",
            "lead": "Approved Actionstep invoices that are linked to a sales invoice in Xero.",
        },
    )


@require_POST
@permission_required(QUEUE_UNLINK, raise_exception=True)
def unlink_selection(request):
    selected = request.POST.getlist("pk")
    return render(
        request,
        "core/placeholder.html",
        {
            "title": "Unlink from Xero",
            "lead": f"{len(selected)} record(s) selected. Nothing has been changed.",
        },
    )
