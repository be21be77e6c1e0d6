from django.urls import reverse

from unlinker.accounts.roles import BROWSE, MANAGE_CONNECTIONS

NAVIGATION = [
    ("mirror:payments", "Linked Payments", BROWSE),
    ("mirror:invoices", "Linked Invoices", BROWSE),
    ("unlinking:history", "Task History", BROWSE),
    ("reconciliation:report", "Reconciliation", BROWSE),
    ("connections:list", "Connections", MANAGE_CONNECTIONS),
]


def navigation(request):
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    items = []
    for name, label, perm in NAVIGATION:
        if not request.user.has_perm(perm):
            continue
        url = reverse(name)
        items.append({"url": url, "label": label, "active": request.path.startswith(url)})
    return {"navigation": items}
