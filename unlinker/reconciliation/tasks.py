from celery import shared_task
from django.utils import timezone

from unlinker.connections.models import Connection
from unlinker.integrations.errors import ApiError

from . import services
from .models import ReconciliationRun


@shared_task(name="reconciliation.reconcile", acks_late=True)
def reconcile(run_id: int) -> None:
    from unlinker.integrations.factory import xero_client_for

    run = ReconciliationRun.objects.select_related("connection").filter(pk=run_id).first()
    if run is None or run.state in (ReconciliationRun.State.DONE, ReconciliationRun.State.FAILED):
        return
    try:
        services.run_reconciliation(run, xero_client_for(run.connection))
    except ApiError as exc:
        ReconciliationRun.objects.filter(pk=run.pk).update(
            state=ReconciliationRun.State.FAILED, finished_at=timezone.now(), error=str(exc)
        )


@shared_task(name="reconciliation.reconcile_all")
def reconcile_all() -> None:
    paired = Connection.objects.filter(disconnected_at__isnull=True).exclude(xero_tenant_id="")
    for connection in paired:
        services.start_reconciliation(connection=connection)
