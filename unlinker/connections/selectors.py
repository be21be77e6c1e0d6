from django.db.models import QuerySet
from django.http import Http404

from unlinker.accounts.roles import MANAGE_CONNECTIONS

from .models import Connection


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
