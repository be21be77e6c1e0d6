from django.core.management.base import BaseCommand, CommandError

from unlinker.connections.models import Connection
from unlinker.integrations.errors import ApiError
from unlinker.mirror import services


class Command(BaseCommand):
    help = (
        "Sync a connection's mirror from Actionstep now, in this process. --full reads every "
        "link record and marks those gone upstream; otherwise only what changed since the last "
        "sync is read."
    )

    def add_arguments(self, parser):
        parser.add_argument("--connection", type=int, required=True, help="Connection id")
        parser.add_argument("--full", action="store_true")

    def handle(self, *args, connection, full, **options):
        found = Connection.objects.filter(pk=connection, disconnected_at__isnull=True).first()
        if found is None:
            raise CommandError(f"No live connection {connection}.")
        try:
            run = services.sync_now(services.new_sync_run(found, full=full))
        except ApiError as exc:  # recorded on the run; anything else is raised as it is
            raise CommandError(f"The sync failed: {exc}") from exc
        self.stdout.write(
            f"{'Full' if run.full else 'Incremental'} sync of {found}: {run.records_upserted} "
            f"records, {run.records_vanished} gone upstream, {run.requests_made} requests."
        )
