"""State changes of connections: what the OAuth callbacks, pairing and disconnect do."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from unlinker.integrations.xero import connections as xero_connections

from .clients import xero_tokens_for
from .models import Connection, OAuthCredential, Provider
from .tokens import store_token


class CannotConnect(Exception):
    """A connection change that cannot be made, with a message for the admin."""


@transaction.atomic
def connect_actionstep(*, user, token: dict) -> Connection:
    """After Actionstep's callback: a new connection for the org, or fresh tokens for the live
    connection that already has it (re-authorising keeps its history)."""
    org_key = token.get("orgkey") or ""
    api_endpoint = (token.get("api_endpoint") or "").rstrip("/")
    if not org_key or not api_endpoint:
        raise CannotConnect("Actionstep's answer had no org key or API endpoint.")
    connection = (
        Connection.objects.select_for_update()
        .filter(actionstep_org_key=org_key, disconnected_at__isnull=True)
        .first()
    )
    if connection is None:
        connection = Connection.objects.create(
            name=org_key, actionstep_org_key=org_key, created_by=user
        )
    connection.actionstep_api_endpoint = api_endpoint
    connection.save(update_fields=["actionstep_api_endpoint"])
    connection.members.add(user)
    store_token(connection, Provider.ACTIONSTEP, token)
    return connection


def connect_xero(*, connection: Connection, token: dict) -> None:
    store_token(connection, Provider.XERO, token)


def pair_xero_tenant(*, connection: Connection, tenant_id: str, tenant_name: str) -> None:
    connection.xero_tenant_id = tenant_id
    connection.xero_tenant_name = tenant_name
    if connection.name == connection.actionstep_org_key and tenant_name:
        connection.name = f"{connection.actionstep_org_key} ↔ {tenant_name}"
    try:
        with transaction.atomic():
            connection.save(update_fields=["xero_tenant_id", "xero_tenant_name", "name"])
    except IntegrityError:
        raise CannotConnect(
            f"The Xero organisation {tenant_name} is already paired with another Actionstep org. "
            "Disconnect that pair first: one Actionstep org pairs with one Xero organisation."
        ) from None


@transaction.atomic
def disconnect(*, connection: Connection) -> None:
    """Forget the tokens and hide the connection; its batches and history stay for the record."""
    OAuthCredential.objects.filter(connection=connection).delete()
    connection.disconnected_at = timezone.now()
    connection.save(update_fields=["disconnected_at"])


def connect_sandbox_firm(sandbox, orgkey: str, *, name: str = "", member=None) -> Connection:
    """A paired connection to one of the sandbox's firms, with tokens the sandbox issued, as if
    an admin had clicked through both consent pages: for the demo (`manage.py connect_sandbox`),
    `make bench` and the tests. `sandbox` is a unlinker.sandbox.control.SandboxControl."""
    firm = next((f for f in sandbox.firms() if f["orgkey"] == orgkey), None)
    if firm is None:
        raise CannotConnect(f"The sandbox has no firm {orgkey!r}: run `unlinker sandbox seed`.")
    actionstep = sandbox.issue_tokens(Provider.ACTIONSTEP, orgkey=orgkey)
    xero = sandbox.issue_tokens(Provider.XERO)
    with transaction.atomic():
        connection = Connection.objects.create(
            name=name or firm.get("name") or orgkey,
            actionstep_org_key=orgkey,
            actionstep_api_endpoint=actionstep["api_endpoint"],
            xero_tenant_id=firm["tenant_id"],
            xero_tenant_name=firm.get("name", ""),
        )
        store_token(connection, Provider.ACTIONSTEP, actionstep)
        store_token(connection, Provider.XERO, xero)
        if member is not None:
            connection.members.add(member)
    return connection


def xero_tenants(connection: Connection) -> list:
    """The Xero organisations the connection's new Xero token reaches."""
    return xero_connections(xero_tokens_for(connection))
