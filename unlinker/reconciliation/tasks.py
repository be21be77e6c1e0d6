import contextlib

from celery import shared_task

from unlinker.connections.clients import xero_client_for
from unlinker.connections.models import Connection
from unlinker.core.failures import failure_reason
from unlinker.integrations.errors import ApiError

from . import services
from .models import ReconciliationRun


@shared_task(
    name="reconciliation.reconcile",
    acks_late=True,
    time_limit=services.TIME_LIMIT_SECONDS,
    soft_time_limit=services.TIME_LIMIT_SECONDS - 60,
)
def reconcile(run_id: int) -> None:
    run = ReconciliationRun.objects.select_related("connection").filter(pk=run_id).first()
    if run is None:
        return
    try:
        client = xero_client_for(run.connection)
    except Exception as exc:  # e.g. no longer paired with a Xero tenant, or tokens unreadable
        services.fail(run, failure_reason(exc))
        if isinstance(exc, ApiError):
            return
        raise
    with contextlib.suppress(ApiError):  # recorded on the run, which the page shows
        services.run_reconciliation(run, client)


@shared_task(name="reconciliation.reconcile_all")
def reconcile_all() -> None:
    paired = Connection.objects.filter(disconnected_at__isnull=True).exclude(xero_tenant_id="")
    for connection in paired:
        services.start_reconciliation(connection=connection)
