"""The Refresh button and the sync progress panel shown on both linked lists."""

from django.contrib.auth.decorators import permission_required
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from unlinker.accounts.roles import BROWSE, REFRESH
from unlinker.connections.selectors import connection_for

from . import services
from .sync_selectors import sync_state


def _panel(request, connection):
    response = render(request, "mirror/_sync_panel.html", {"connection": connection})
    if request.htmx and not sync_state(connection)["active"]:
        # The sync the page waited for is over (seen by a poll, or already by the Refresh that
        # queued it): the page reloads, or its table and count would show the rows from before.
        response["HX-Refresh"] = "true"
        if request.method == "GET":
            response.status_code = HttpResponseStopPolling.status_code  # stops the polling
    return response


@permission_required(BROWSE, raise_exception=True)
@require_GET
def sync_panel(request, connection_id):
    connection = connection_for(request.user, connection_id, archived=True)
    return _panel(request, connection)


@permission_required(REFRESH, raise_exception=True)
@require_POST
def sync_start(request, connection_id):
    connection = connection_for(request.user, connection_id)
    services.start_sync(
        connection=connection, user=request.user, full=request.POST.get("full") == "1"
    )
    return _panel(request, connection)
