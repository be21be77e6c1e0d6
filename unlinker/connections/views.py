from django.contrib.auth.decorators import permission_required
from django.shortcuts import render

from unlinker.accounts.roles import MANAGE_CONNECTIONS


@permission_required(MANAGE_CONNECTIONS, raise_exception=True)
def connection_list(request):
    return render(
        request,
        "core/placeholder.html",
        {
            "title": "Connections",
            "lead": "Actionstep organisations and the Xero tenants they are paired with.",
        },
    )
