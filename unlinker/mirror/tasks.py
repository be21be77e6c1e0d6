from celery import shared_task

from unlinker.connections.clients import xero_client_for
from unlinker.connections.models import Connection
from unlinker.integrations.errors import ApiError

from . import services
from .models import SyncRun


def _paired():
    return (
        Connection.objects.filter(disconnected_at__isnull=True)
        .exclude(xero_tenant_id="")
        .exclude(actionstep_org_key="")
    )


@shared_task(name="mirror.sync_connection", acks_late=True)
def sync_connection(run_id: int) -> None:
    run = SyncRun.objects.select_related("connection").filter(pk=run_id).first()
    if run is None or run.state in (SyncRun.State.DONE, SyncRun.State.FAILED):
        return
    try:
        services.sync_now(run)
    except ApiError:
        return  # recorded on the run, which the Refresh panel shows; anything else is raised
    refresh_xero.delay(run.connection_id, only_unchecked=True)


@shared_task(name="mirror.refresh_xero", acks_late=True)
def refresh_xero(connection_id: int, only_unchecked: bool = False) -> None:
    connection = _paired().filter(pk=connection_id).first()
    if connection is not None:
        services.refresh_xero_status(
            connection.pk, xero_client_for(connection), only_unchecked=only_unchecked
        )


@shared_task(name="mirror.sync_all")
def sync_all() -> None:
    for connection in _paired():
        services.start_sync(connection=connection)
