"""`manage.py reconcile`: run a connection's reconciliation report here and now."""

from django.core.management.base import BaseCommand, CommandError

from unlinker.connections.clients import xero_client_for
from unlinker.integrations.errors import ApiError
from unlinker.reconciliation import services
from unlinker.reconciliation.models import ReconciliationRun
from unlinker.unlinking.management.commands.unlink import _connection


class Command(BaseCommand):
    help = (
        "Compare a connection's linked invoices with Xero, record the findings as a run of the "
        "reconciliation report, and print them per kind with what changed since the last run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--connection", required=True, help="Connection id or exact name")
        parser.add_argument(
            "--full",
            action="store_true",
            help="read every live invoice, not only what changed since the last run",
        )

    def handle(self, *args, **opts):
        connection = _connection(opts["connection"])
        try:
            run = services.reconcile_now(
                connection=connection, client=xero_client_for(connection), full=opts["full"]
            )
        except services.AlreadyRunning as exc:
            raise CommandError(f"{exc} Wait for it, or see it on the report page.") from None
        except ApiError as exc:
            raise CommandError(f"Xero refused: {exc.message or exc}") from None
        self.print_run(run)

    def print_run(self, run: ReconciliationRun) -> None:
        write = self.stdout.write
        total = sum(run.counts.values())
        write(
            f"Reconciliation {run.pk} of {run.connection}: {total} finding{'s' * (total != 1)}, "
            f"{run.reads_made} Xero read{'s' * (run.reads_made != 1)}."
        )
        for _, label, count in run.kind_counts():
            write(f"  {label}: {count}")
        changes = run.changes
        if changes.get("previous_run"):
            write(
                f"Since run {changes['previous_run']}: {changes['new']} new, "
                f"{changes['resolved']} resolved."
            )
        else:
            write("The first run of this connection: nothing to compare with yet.")
