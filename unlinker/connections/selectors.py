from django.db.models import QuerySet
from django.http import Http404

from unlinker.accounts.roles import MANAGE_CONNECTIONS

from .models import Connection


def connections_for(user) -> QuerySet[Connection]:
    """The live connections a user may see: all of them for connection admins, otherwise the
    ones the user is a member of. Every read of mirrored data starts from here."""
    live = Connection.objects.filter(disconnected_at__isnull=True)
    if user.has_perm(MANAGE_CONNECTIONS):
        return live
    return live.filter(members=user)


def connection_for(user, pk) -> Connection:
    """The connection `pk` if the user may see it; 404 otherwise (never 403: that would confirm
    that another firm's connection exists)."""
    try:
        return connections_for(user).get(pk=int(pk))
    except (Connection.DoesNotExist, TypeError, ValueError, OverflowError):
        raise Http404("No such connection") from None
