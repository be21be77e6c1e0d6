"""State changes of connections: what the OAuth callbacks, pairing, the team and disconnect do."""

import logging

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from unlinker.core.zones import validate_zone
from unlinker.integrations.errors import ApiError
from unlinker.integrations.xero import connections as xero_connections
from unlinker.integrations.xero_timezones import iana_timezone

from .models import Connection, OAuthCredential, Provider
from .tokens import store_token

logger = logging.getLogger(__name__)


class CannotConnect(Exception):
    """A connection change that cannot be made, with a message for the admin."""


@transaction.atomic
def connect_actionstep(
    *, user, token: dict, zone: str = "", connection: Connection | None = None
) -> tuple[Connection, bool]:
    """After Actionstep's callback: a new connection for the org, in time zone `zone` (True), or
    fresh tokens for the live connection that already has it (re-authorising keeps its
    history). `connection` is the one whose Reconnect was pressed: the org allowed must be its
    own. Either way the connection is synced from Actionstep at once."""
    org_key = token.get("orgkey") or ""
    api_endpoint = (token.get("api_endpoint") or "").rstrip("/")
    if not org_key or not api_endpoint:
        raise CannotConnect("Actionstep's answer had no org key or API endpoint.")
    if connection is not None and connection.actionstep_org_key != org_key:
        raise CannotConnect(
            f"Access was allowed to the Actionstep org {org_key}, but {connection.name} is the "
            f"org {connection.actionstep_org_key}: nothing was changed. Log in to Actionstep "
            f"as a user of {connection.actionstep_org_key} and reconnect again."
        )
    found = (
        Connection.objects.select_for_update()
        .filter(actionstep_org_key=org_key, disconnected_at__isnull=True)
        .first()
    )
    created = found is None
    if created:
        found = Connection(name=org_key, actionstep_org_key=org_key, created_by=user)
        if zone:
            found.timezone = _valid_zone(zone)
    found.actionstep_api_endpoint = api_endpoint
    found.save()
    found.members.add(user)
    store_token(found, Provider.ACTIONSTEP, token)
    _sync_now(found, user)
    return found, created


def connect_xero(*, connection: Connection, token: dict) -> None:
    """The Xero token of a connection not yet paired: the organisation is chosen next."""
    store_token(connection, Provider.XERO, token)


@transaction.atomic
def reconnect_xero(*, connection: Connection, token: dict, tenant_ids, user) -> None:
    """Fresh Xero tokens for a paired connection, e.g. after Xero refused its refresh token.
    The new login must reach the organisation the connection is paired with; then the
    connection is synced at once (the steps that failed can be retried)."""
    if connection.xero_tenant_id not in set(tenant_ids):
        raise CannotConnect(
            f"This Xero login does not reach {connection.xero_tenant_name or 'the organisation'} "
            f"that {connection.name} is paired with: nothing was changed. Log in to Xero as a "
            "user of that organisation and reconnect again."
        )
    store_token(connection, Provider.XERO, token)
    _sync_now(connection, user)


def pair_xero_tenant(
    *, connection: Connection, tenant_id: str, tenant_name: str, user=None
) -> str | None:
    """Pair the connection with the Xero organisation, take the organisation's time zone when
    Xero gives it (returned; None keeps the zone chosen when connecting), and sync."""
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
    zone = adopt_xero_timezone(connection)
    _sync_now(connection, user)
    return zone


def adopt_xero_timezone(connection: Connection) -> str | None:
    """Set the connection's zone to its Xero organisation's (GET /Organisation), and return
    it; None when Xero did not say (an older token without accounting.settings.read, a zone
    name we do not know, Xero unreachable), and the zone stays as it was."""
    from unlinker.connections.clients import xero_client_for

    try:
        organisation = xero_client_for(connection).get_organisation()
    except ApiError as exc:
        logger.info("The time zone of %s stays %s: %s", connection, connection.timezone, exc)
        return None
    record_xero_organisation(connection.pk, organisation)
    zone = iana_timezone(organisation.timezone)
    if zone is None:
        logger.info("Xero's time zone %r has no IANA name we know", organisation.timezone)
        return None
    connection.timezone = zone
    connection.save(update_fields=["timezone"])
    return zone


def record_xero_organisation(connection_id: int, organisation) -> None:
    """What the clean-up needs of the Xero organisation, as just read (GET /Organisation): its
    lock dates, and when they were read."""
    Connection.objects.filter(pk=connection_id).update(
        xero_period_lock_date=organisation.period_lock_date,
        xero_end_of_year_lock_date=organisation.end_of_year_lock_date,
        xero_organisation_read_at=timezone.now(),
    )


def set_history_notes(*, connection: Connection, enabled: bool) -> None:
    """Whether the changes Unlinker makes in this connection's Xero organisation add a note to
    each record's history there."""
    connection.xero_history_notes = enabled
    connection.save(update_fields=["xero_history_notes"])


def set_timezone(*, connection: Connection, zone: str) -> None:
    connection.timezone = _valid_zone(zone)
    connection.save(update_fields=["timezone"])


def _valid_zone(zone: str) -> str:
    try:
        validate_zone(zone)
    except ValidationError as exc:
        raise CannotConnect(exc.messages[0]) from None
    return zone


def _sync_now(connection: Connection, user) -> None:
    """Connecting or reconnecting either side syncs the connection from Actionstep (queued
    after commit; when a sync is already under way, that one stands)."""
    from unlinker.mirror.services import start_sync

    start_sync(connection=connection, user=user)


# --- The team: who may see a connection's records ------------------------------------------


def add_member(*, connection: Connection, user) -> bool:
    """True when the user was not a member yet."""
    if connection.members.filter(pk=user.pk).exists():
        return False
    connection.members.add(user)
    return True


def remove_member(*, connection: Connection, user) -> bool:
    """True when the user was a member. Admins still see every connection: see selectors."""
    if not connection.members.filter(pk=user.pk).exists():
        return False
    connection.members.remove(user)
    return True


@transaction.atomic
def disconnect(*, connection: Connection) -> None:
    """Forget the tokens and hide the connection; its batches and history stay for the record."""
    OAuthCredential.objects.filter(connection=connection).delete()
    connection.disconnected_at = timezone.now()
    connection.save(update_fields=["disconnected_at"])


def connect_sandbox_firm(sandbox, orgkey: str, *, name: str = "", members=()) -> Connection:
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
        connection.members.add(*members)
    return connection


def xero_tenants(access_token: str) -> list:
    """The Xero organisations a new Xero access token reaches (GET /connections)."""
    return xero_connections(access_token)
