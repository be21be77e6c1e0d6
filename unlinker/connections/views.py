from authlib.integrations.base_client.errors import OAuthError
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from requests import RequestException

from unlinker.accounts.roles import MANAGE_CONNECTIONS
from unlinker.integrations.errors import ApiError

from . import services
from .models import Connection, OAuthCredential
from .oauth import oauth_app
from .selectors import connection_for

admin_only = permission_required(MANAGE_CONNECTIONS, raise_exception=True)
PENDING_XERO = "connections.xero_for"
TENANT_CHOICES = "connections.xero_tenants"


@admin_only
@require_GET
def connection_list(request):
    connections = Connection.objects.filter(disconnected_at__isnull=True).order_by("name")
    credentials = {
        (c.connection_id, c.provider): c
        for c in OAuthCredential.objects.filter(connection__in=connections).only(
            "connection_id",
            "provider",
            # decrypted only to tell whether the key still opens them: never shown
            "access_token",
            "refresh_token",
            "expires_at",
            "last_refreshed_at",
            "last_error",
            "last_error_at",
        )
    }
    rows = [
        {
            "connection": c,
            "actionstep": credentials.get((c.pk, "actionstep")),
            "xero": credentials.get((c.pk, "xero")),
        }
        for c in connections
    ]
    return render(request, "connections/list.html", {"title": "Connections", "rows": rows})


@admin_only
@require_POST
def actionstep_start(request):
    callback = request.build_absolute_uri(reverse("connections:actionstep_callback"))
    return oauth_app("actionstep").authorize_redirect(request, callback)


@admin_only
@require_GET
def actionstep_callback(request):
    try:
        token = oauth_app("actionstep").authorize_access_token(request)
        connection = services.connect_actionstep(user=request.user, token=token)
    except (OAuthError, RequestException, services.CannotConnect) as exc:
        messages.error(request, f"Actionstep was not connected: {_reason(exc)}")
        return redirect("connections:list")
    messages.success(
        request, f"Actionstep org {connection.actionstep_org_key} is connected. Now connect Xero."
    )
    return redirect("connections:list")


@admin_only
@require_POST
def xero_start(request, pk):
    connection = connection_for(request.user, pk)
    request.session[PENDING_XERO] = connection.pk
    callback = request.build_absolute_uri(reverse("connections:xero_callback"))
    return oauth_app("xero").authorize_redirect(request, callback)


@admin_only
@require_GET
def xero_callback(request):
    pk = request.session.pop(PENDING_XERO, None)
    if pk is None:
        messages.error(request, "Xero was not connected: start from the Connections page.")
        return redirect("connections:list")
    connection = connection_for(request.user, pk)
    try:
        token = oauth_app("xero").authorize_access_token(request)
        services.connect_xero(connection=connection, token=token)
        tenants = services.xero_tenants(connection)
    except (OAuthError, RequestException, ApiError) as exc:
        messages.error(request, f"Xero was not connected: {_reason(exc)}")
        return redirect("connections:list")
    if not tenants:
        messages.error(request, "This Xero login has access to no organisation.")
        return redirect("connections:list")
    request.session[TENANT_CHOICES] = {t.tenant_id: t.name for t in tenants}
    if len(tenants) == 1:
        return _pair(request, connection, tenants[0].tenant_id)
    return redirect("connections:xero_tenant", pk=connection.pk)


@admin_only
@require_http_methods(["GET", "POST"])
def xero_tenant(request, pk):
    connection = connection_for(request.user, pk)
    choices = request.session.get(TENANT_CHOICES) or {}
    if not choices:
        messages.error(request, "Connect Xero again to choose an organisation.")
        return redirect("connections:list")
    if request.method == "POST":
        tenant_id = request.POST.get("tenant_id", "")
        if tenant_id not in choices:
            messages.error(request, "Choose one of the organisations listed.")
        else:
            return _pair(request, connection, tenant_id)
    return render(
        request,
        "connections/pick_tenant.html",
        {"title": "Choose the Xero organisation", "connection": connection, "choices": choices},
    )


@admin_only
@require_POST
def disconnect(request, pk):
    connection = connection_for(request.user, pk)
    services.disconnect(connection=connection)
    messages.success(request, f"{connection.name} is disconnected; its history is kept.")
    return redirect("connections:list")


def _pair(request, connection, tenant_id):
    choices = request.session.pop(TENANT_CHOICES, {})
    try:
        services.pair_xero_tenant(
            connection=connection, tenant_id=tenant_id, tenant_name=choices.get(tenant_id, "")
        )
    except services.CannotConnect as exc:
        messages.error(request, str(exc))
        return redirect("connections:list")
    messages.success(request, f"{connection.name} is paired and ready.")
    return redirect("connections:list")


def _reason(exc) -> str:
    if isinstance(exc, OAuthError):
        return exc.description or exc.error or "the authorisation was refused"
    if isinstance(exc, RequestException):
        return "the provider could not be reached"
    return str(exc)
