from django.contrib.auth import get_user_model
from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404

from unlinker.accounts.roles import MANAGE_CONNECTIONS, role_of

from .models import Connection, OAuthCredential, Provider


def connections_for(user, *, archived: bool = False) -> QuerySet[Connection]:
    """The live connections a user may see: all of them for connection admins, otherwise the
    ones the user is a member of. Every read of mirrored data starts from here. With `archived`,
    the disconnected ones too: their history stays readable by whoever could read it."""
    connections = Connection.objects.all()
    if not archived:
        connections = connections.filter(disconnected_at__isnull=True)
    if user.has_perm(MANAGE_CONNECTIONS):
        return connections
    return connections.filter(members=user)


def connection_for(user, pk, *, archived: bool = False) -> Connection:
    """The connection `pk` if the user may see it; 404 otherwise (never 403: that would confirm
    that another firm's connection exists). A disconnected one only with `archived`, to read
    its history: nothing acts on it."""
    try:
        return connections_for(user, archived=archived).get(pk=int(pk))
    except (Connection.DoesNotExist, TypeError, ValueError, OverflowError):
        raise Http404("No such connection") from None


def connection_rows() -> list[dict]:
    """The Connections page: each live connection with both sides' credentials (never their
    tokens) and its members."""
    connections = list(
        Connection.objects.filter(disconnected_at__isnull=True)
        .order_by("name")
        .prefetch_related(
            Prefetch("members", queryset=_people().order_by("username"), to_attr="people")
        )
    )
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
    return [
        {
            "connection": c,
            "actionstep": credentials.get((c.pk, Provider.ACTIONSTEP)),
            "xero": credentials.get((c.pk, Provider.XERO)),
            "members": c.people,
        }
        for c in connections
    ]


def has_xero(connection: Connection) -> bool:
    """Paired, with a Xero credential that was not refused."""
    return bool(connection.xero_tenant_id) and (
        OAuthCredential.objects.filter(
            connection=connection, provider=Provider.XERO, last_error=""
        ).exists()
    )


def _people() -> QuerySet:
    return get_user_model().objects.prefetch_related("groups")


def team_of(connection: Connection) -> list:
    """The connection's members, each with `.role` (their role, or "superuser")."""
    people = list(_people().filter(pk__in=connection.members.values("pk")).order_by("username"))
    for person in people:
        person.role = "superuser" if person.is_superuser else role_of(person)
    return people


def admins_beside(connection: Connection) -> list:
    """Who sees the connection without being a member of it: active admins and superusers
    (holders of manage_connections see every connection)."""
    return list(
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(is_superuser=True) | Q(groups__name="admin"))
        .exclude(pk__in=connection.members.values("pk"))
        .distinct()
        .order_by("username")
    )


def member_of(connection: Connection, user_id) -> object:
    """A member of the connection, or 404."""
    try:
        return _people().get(pk=int(user_id), pk__in=connection.members.values("pk"))
    except (get_user_model().DoesNotExist, TypeError, ValueError, OverflowError):
        raise Http404("No such member") from None


def disconnect_preview(connection: Connection) -> dict:
    """What disconnecting would cancel, for its confirmation page."""
    from unlinker.unlinking.models import StepState, UnlinkBatch, UnlinkStep

    unfinished = UnlinkBatch.objects.filter(connection=connection).exclude(
        state__in=UnlinkBatch.SETTLED_STATES
    )
    return {
        "unfinished_batches": list(unfinished.values_list("pk", flat=True)),
        "pending_steps": UnlinkStep.objects.filter(
            batch__in=unfinished, state=StepState.PENDING
        ).count(),
        "running_steps": UnlinkStep.objects.filter(
            batch__in=unfinished, state=StepState.RUNNING
        ).count(),
    }


def archived_connections(user) -> QuerySet[Connection]:
    """The disconnected connections whose history the user may read, newest first."""
    return (
        connections_for(user, archived=True)
        .filter(disconnected_at__isnull=False)
        .order_by("-disconnected_at")
    )
