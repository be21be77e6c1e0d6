from django.contrib.auth.decorators import permission_required
from django.shortcuts import render

from unlinker.accounts.roles import BROWSE


@permission_required(BROWSE, raise_exception=True)
def report(request):
    return render(
        request,
        "core/placeholder.html",
        {
            "title": "Reconciliation",
            "lead": "What differs between Actionstep and Xero: orphans, duplicates, broken links.",
        },
    )
