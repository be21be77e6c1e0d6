from django.urls import reverse

from unlinker.accounts.roles import BROWSE, MANAGE_CONNECTIONS

# (url name, label, permission, the url names under it that mark it as the current page)
NAVIGATION = [
    ("mirror:payments", "Linked Payments", BROWSE, {"mirror:payments", "mirror:payment_list"}),
    ("mirror:invoices", "Linked Invoices", BROWSE, {"mirror:invoices", "mirror:invoice_list"}),
    ("unlinking:history", "Task History", BROWSE, {"unlinking:*"}),
    ("reconciliation:report", "Reconciliation", BROWSE, {"reconciliation:*"}),
    ("connections:list", "Connections", MANAGE_CONNECTIONS, {"connections:*"}),
]


def _current(request) -> set[str]:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return set()
    return {match.view_name, f"{match.namespace}:*"}


def navigation(request):
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    current = _current(request)
    return {
        "navigation": [
            {"url": reverse(name), "label": label, "active": bool(current & names)}
            for name, label, perm, names in NAVIGATION
            if request.user.has_perm(perm)
        ]
    }
