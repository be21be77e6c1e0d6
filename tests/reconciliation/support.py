"""Reconciliation runs in tests: against the sandbox as the task runs them, or stored directly
for the pages."""

from decimal import Decimal

from django.utils import timezone

from unlinker.connections.clients import xero_client_for
from unlinker.mirror import services as mirror
from unlinker.reconciliation.models import Finding, ReconciliationRun
from unlinker.reconciliation.services import run_reconciliation


def reconcile(connection, **fields) -> ReconciliationRun:
    """Queue a run and run it here, as the task does."""
    run = ReconciliationRun.objects.create(connection=connection, **fields)
    return run_reconciliation(run, xero_client_for(connection))


def resync(connection) -> None:
    """Bring the mirror up to date with Actionstep (what the Refresh button does)."""
    mirror.sync_now(mirror.new_sync_run(connection, full=True))


def xero_reads(sandbox, since: int) -> list[dict]:
    return sandbox.requests(since=since, api="xero", method="GET")


def stored_run(connection, findings: list[tuple[str, str]], **fields) -> ReconciliationRun:
    """A finished run with these (kind, invoice number) findings, written directly."""
    now = timezone.now()
    counts = dict.fromkeys(Finding.Kind.values, 0)
    for kind, _ in findings:
        counts[kind] += 1
    values = {"state": ReconciliationRun.State.DONE, "started_at": now, "finished_at": now}
    run = ReconciliationRun.objects.create(
        connection=connection, counts=counts, **(values | fields)
    )
    Finding.objects.bulk_create(
        Finding(
            run=run,
            kind=kind,
            invoice_number=number,
            xero_invoice_id=f"00000000-0000-0000-0000-{n:012d}",
            xero_status="AUTHORISED",
            actionstep_total=Decimal("100.00") + n,
            xero_total=Decimal("100.00") + n,
            detail=f"detail of {number}",
            key=f"{kind}:{n}:",
        )
        for n, (kind, number) in enumerate(findings, start=1)
    )
    return run
