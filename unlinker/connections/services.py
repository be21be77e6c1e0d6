"""State changes of connections: what the OAuth callbacks, pairing, the team and disconnect do."""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from unlinker.core.zones import validate_zone
from unlinker.integrations.errors import ApiError
from unlinker.integrations.xero import connections as xero_connections
from unlinker.integrations.xero import delete_connection as xero_delete_connection
from unlinker.integrations.xero import revoke_refresh_token
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
    ) or _archived_to_restore(org_key)
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


def _archived_to_restore(org_key: str) -> Connection | None:
    """The org's most recently disconnected connection, back in use: its history comes back
    with it. (Not when its Xero organisation has been paired anew meanwhile.)"""
    archived = (
        Connection.objects.select_for_update()
        .filter(actionstep_org_key=org_key, disconnected_at__isnull=False)
        .order_by("-disconnected_at")
        .first()
    )
    if archived is None:
        return None
    archived.disconnected_at = None
    try:
        with transaction.atomic():
            archived.save(update_fields=["disconnected_at"])
    except IntegrityError:
        archived.xero_tenant_id = ""  # that organisation is another pair's now: choose again
        archived.xero_tenant_name = ""
        archived.save(update_fields=["disconnected_at", "xero_tenant_id", "xero_tenant_name"])
    return archived


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
@dataclass(frozen=True)
class Disconnected:
    """What disconnecting did, for the admin's message."""

    connection: Connection
    cancelled_steps: int = 0
    batches: tuple[int, ...] = ()
    at_xero: str = ""  # what was done at Xero, or what the admin must still do there


def disconnect(*, connection: Connection, user=None) -> Disconnected:
    """Archive the connection: it is never deleted, so its batches, their audit, its syncs and
    reconciliation runs stay readable by whoever could read them. In this order: the connection
    is marked disconnected (nothing new can be planned or queued on it), the steps its
    unfinished batches had not started are cancelled (running ones finish), Unlinker's
    connection to the Xero organisation is removed and its refresh token revoked, and the
    tokens are forgotten. Connecting the same Actionstep org again brings the connection, and
    its history, back."""
    # The batches are the unlink engine's: imported here, where a connection's end reaches them.
    from unlinker.unlinking.services import cancel_batches_of

    with transaction.atomic():
        locked = Connection.objects.select_for_update().get(pk=connection.pk)
        if locked.disconnected_at:
            return Disconnected(locked)
        locked.disconnected_at = timezone.now()
        locked.save(update_fields=["disconnected_at"])
    steps, batches = cancel_batches_of(connection=locked, user=user)
    at_xero = _leave_xero(locked)
    OAuthCredential.objects.filter(connection=locked).delete()
    logger.info("%s disconnected by %s: %s", locked, user or "the command line", at_xero)
    return Disconnected(locked, steps, tuple(batches), at_xero)


def _leave_xero(connection: Connection) -> str:
    """DELETE /connections/{id} for the connection's organisation, then revoke the refresh token
    (POST /connect/revocation) unless another live pair holds the same one: a revocation ends
    every connection its authorisation made."""
    from .clients import xero_tokens_for

    credential = OAuthCredential.objects.filter(
        connection=connection, provider=Provider.XERO
    ).first()
    if credential is None or not connection.xero_tenant_id:
        return "Xero was not connected."
    manual = "remove Unlinker from the organisation in Xero yourself (Settings > Connected apps)"
    if credential.tokens_unreadable:
        return f"Its Xero tokens could not be read, so Xero was not told: {manual}."
    try:
        tokens = xero_tokens_for(connection)
        for tenant in xero_connections(tokens):
            if tenant.tenant_id == connection.xero_tenant_id and tenant.connection_id:
                xero_delete_connection(tokens, tenant.connection_id)
        credential.refresh_from_db()  # a refresh on the way may have rotated it
        refresh_token = credential.refresh_token
        shared = any(
            other.refresh_token == refresh_token
            for other in OAuthCredential.objects.filter(
                provider=Provider.XERO, connection__disconnected_at__isnull=True
            ).exclude(connection=connection)
        )
        if refresh_token and not shared:
            revoke_refresh_token(refresh_token)
    except ApiError as exc:
        return f"Xero could not be told ({exc.message or type(exc).__name__}): {manual}."
    name = connection.xero_tenant_name or connection.xero_tenant_id
    return f"Unlinker was removed from the Xero organisation {name} and its access revoked."


def connect_sandbox_firm(sandbox, orgkey: str, *, name: str = "", members=()) -> Connection:
    """A paired connection to one of the sandbox's firms, with tokens the sandbox issued, as if
    an admin had clicked through both consent pages: for the demo (`manage.py connect_sandbox`),
    `make bench` and the tests. `sandbox` is a unlinker.sandbox.control.SandboxControl."""
    firm = next((f for f in sandbox.firms() if f["orgkey"] == orgkey), None)
    if firm is None:
        raise CannotConnect(f"The sandbox has no firm {orgkey!r}: run `unlinker sandbox seed`.")
    # Issued to this deployment's own apps, as their consent pages would (the client ids matter
    # to the token refresh and the revocation).
    actionstep = sandbox.issue_tokens(
        Provider.ACTIONSTEP, orgkey=orgkey, client_id=settings.ACTIONSTEP_CLIENT_ID
    )
    xero = sandbox.issue_tokens(Provider.XERO, client_id=settings.XERO_CLIENT_ID)
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
