import secrets

from authlib.integrations.base_client.errors import OAuthError
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from requests import RequestException

from unlinker.accounts.roles import MANAGE_CONNECTIONS
from unlinker.core.middleware import allow_form_action
from unlinker.integrations.errors import ApiError

from . import selectors, services
from .forms import ConnectForm
from .oauth import authorize_origins, oauth_app
from .selectors import connection_for

admin_only = permission_required(MANAGE_CONNECTIONS, raise_exception=True)
# The consent pages this session has sent the browser to, by OAuth `state`: what each was for
# (the provider, the connection being connected or reconnected, the zone chosen). The callback
# acts only on the entry its own `state` names, after Authlib has checked that state.
PENDING = "connections.pending"
PENDING_KEPT = 5  # an abandoned consent page leaves its entry; the oldest go first
TENANT_CHOICES = "connections.xero_tenants"


@admin_only
@require_GET
def connection_list(request):
    context = {
        "title": "Connections",
        "rows": selectors.connection_rows(),
        "archived": selectors.archived_connections(request.user),
        "connect_form": ConnectForm(),
    }
    response = render(request, "connections/list.html", context)
    # Its Connect and Reconnect buttons post to our start views, which redirect the browser
    # to the providers' consent pages: the only page whose forms may go there.
    return allow_form_action(response, authorize_origins())


@admin_only
@require_POST
def actionstep_start(request):
    form = ConnectForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Nothing was connected: {form.errors.as_text()}")
        return redirect("connections:list")
    reconnecting = form.cleaned_data.get("connection")
    if reconnecting is not None:
        reconnecting = connection_for(request.user, reconnecting).pk
    return _to_consent(
        request,
        "actionstep",
        "connections:actionstep_callback",
        connection=reconnecting,
        zone=form.cleaned_data["timezone"],
    )


@admin_only
@require_GET
def actionstep_callback(request):
    pending = _pending(request, "actionstep")
    if pending is None:
        messages.error(request, "Actionstep was not connected: start from the Connections page.")
        return redirect("connections:list")
    reconnecting = pending["connection"]
    if reconnecting is not None:
        reconnecting = connection_for(request.user, reconnecting)
    try:
        token = oauth_app("actionstep").authorize_access_token(request)
        connection, created = services.connect_actionstep(
            user=request.user, token=token, zone=pending["zone"], connection=reconnecting
        )
    except (OAuthError, RequestException, services.CannotConnect) as exc:
        messages.error(request, f"Actionstep was not connected: {_reason(exc)}")
        return redirect("connections:list")
    org = connection.actionstep_org_key
    if created:
        text = f"Actionstep org {org} is connected, and its first sync has started."
    else:
        text = f"Actionstep org {org} is reconnected, and a sync has started."
    if not selectors.has_xero(connection):
        text += " Now connect Xero."
    messages.success(request, text)
    return redirect("connections:list")


@admin_only
@require_POST
def xero_start(request, pk):
    connection = connection_for(request.user, pk)
    return _to_consent(request, "xero", "connections:xero_callback", connection=connection.pk)


@admin_only
@require_GET
def xero_callback(request):
    pending = _pending(request, "xero")
    if pending is None:
        messages.error(request, "Xero was not connected: start from the Connections page.")
        return redirect("connections:list")
    connection = connection_for(request.user, pending["connection"])
    try:
        token = oauth_app("xero").authorize_access_token(request)
        tenants = services.xero_tenants(token["access_token"])
        if tenants and connection.xero_tenant_id:
            services.reconnect_xero(
                connection=connection,
                token=token,
                tenant_ids=[t.tenant_id for t in tenants],
                user=request.user,
            )
            messages.success(request, f"Xero is reconnected for {connection}; a sync has started.")
            return redirect("connections:list")
        if tenants:
            services.connect_xero(connection=connection, token=token)
    except (OAuthError, RequestException, ApiError, services.CannotConnect) as exc:
        messages.error(request, f"Xero was not connected: {_reason(exc)}")
        return redirect("connections:list")
    if not tenants:
        messages.error(request, "This Xero login has access to no organisation.")
        return redirect("connections:list")
    # The choice belongs to this connection: another's tenant page must not offer it.
    request.session[TENANT_CHOICES] = {
        "connection": connection.pk,
        "tenants": {t.tenant_id: t.name for t in tenants},
    }
    if len(tenants) == 1:
        return _pair(request, connection, tenants[0].tenant_id)
    return redirect("connections:xero_tenant", pk=connection.pk)


@admin_only
@require_http_methods(["GET", "POST"])
def xero_tenant(request, pk):
    connection = connection_for(request.user, pk)
    offered = request.session.get(TENANT_CHOICES) or {}
    choices = offered.get("tenants") if offered.get("connection") == connection.pk else None
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
@require_http_methods(["GET", "POST"])
def disconnect(request, pk):
    """GET: what disconnecting will do, to confirm; POST with confirm=1: do it."""
    connection = connection_for(request.user, pk)
    if request.method == "GET" or request.POST.get("confirm") != "1":
        context = {
            "title": f"Disconnect {connection.name}?",
            "connection": connection,
            **selectors.disconnect_preview(connection),
        }
        return render(request, "connections/disconnect.html", context)
    done = services.disconnect(connection=connection, user=request.user)
    cancelled = ""
    if done.cancelled_steps:
        steps = f"{done.cancelled_steps:,} step{'' if done.cancelled_steps == 1 else 's'}"
        cancelled = f" {steps} not started yet {'was' if done.cancelled_steps == 1 else 'were'} "
        cancelled += "cancelled."
    messages.success(
        request,
        f"{connection.name} is disconnected and archived: its history is kept.{cancelled} "
        f"{done.at_xero}",
    )
    return redirect("connections:list")


@admin_only
@require_POST
def set_history_notes(request, pk):
    """Switch the history notes that Unlinker's changes add in Xero on or off (`notes`: "on"
    or "off")."""
    connection = connection_for(request.user, pk)
    wanted = request.POST.get("notes")
    if wanted not in ("on", "off"):
        messages.error(request, "Nothing was changed: say whether to add history notes.")
        return redirect("connections:list")
    services.set_history_notes(connection=connection, enabled=wanted == "on")
    if wanted == "on":
        messages.success(
            request,
            f"Changes in Xero for {connection.name} now add a note to each record's history.",
        )
    else:
        messages.success(
            request, f"Changes in Xero for {connection.name} no longer add history notes."
        )
    return redirect("connections:list")


def _to_consent(request, provider: str, callback_name: str, *, connection=None, zone=""):
    """Send the browser to the provider's consent page, remembering what for under a `state`
    of our own making (Authlib keeps it in the session too, and checks it on the callback)."""
    state = secrets.token_urlsafe(32)
    pending = dict(request.session.get(PENDING) or {})
    pending[state] = {"provider": provider, "connection": connection, "zone": zone}
    request.session[PENDING] = dict(list(pending.items())[-PENDING_KEPT:])
    callback = request.build_absolute_uri(reverse(callback_name))
    return oauth_app(provider).authorize_redirect(request, callback, state=state)


def _pending(request, provider: str) -> dict | None:
    """What the consent page answering now was opened for; used once."""
    pending = dict(request.session.get(PENDING) or {})
    entry = pending.pop(request.GET.get("state", ""), None)
    request.session[PENDING] = pending
    if not entry or entry.get("provider") != provider:
        return None
    return entry


def _pair(request, connection, tenant_id):
    offered = request.session.pop(TENANT_CHOICES, {})
    choices = offered.get("tenants") or {}
    try:
        zone = services.pair_xero_tenant(
            connection=connection,
            tenant_id=tenant_id,
            tenant_name=choices.get(tenant_id, ""),
            user=request.user,
        )
    except services.CannotConnect as exc:
        messages.error(request, str(exc))
        return redirect("connections:list")
    where = (
        f"its time zone is {zone}, the Xero organisation's"
        if zone
        else f"its time zone is {connection.timezone}, as chosen when connecting"
    )
    messages.success(
        request, f"{connection.name} is paired and ready: {where}. A sync has started."
    )
    return redirect("connections:list")


def _reason(exc) -> str:
    if isinstance(exc, OAuthError):
        return exc.description or exc.error or "the authorisation was refused"
    if isinstance(exc, RequestException):
        return "the provider could not be reached"
    return str(exc)
