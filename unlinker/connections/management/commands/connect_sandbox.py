from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from unlinker.accounts.management.commands.create_demo_user import DEMO_LOGINS
from unlinker.connections.clients import xero_client_for
from unlinker.connections.models import Connection
from unlinker.connections.services import connect_sandbox_firm
from unlinker.mirror import services as mirror
from unlinker.sandbox.control import SandboxControl


class Command(BaseCommand):
    help = (
        "Demo only: pair the sandbox's first firm (its Actionstep org and Xero organisation) as "
        "if an admin had clicked through both consent pages, then sync it. Does nothing when a "
        "connection exists. Refused when DEBUG is off."
    )

    def add_arguments(self, parser):
        parser.add_argument("--sandbox-url", default=settings.SANDBOX_URL)
        parser.add_argument(
            "--user",
            action="append",
            help="Made a member of the connection (repeatable); the demo logins by default",
        )

    def handle(self, *args, sandbox_url, user, **options):
        if not settings.DEBUG:
            raise CommandError("The sandbox connection is a demo convenience: DEBUG is off.")
        if Connection.objects.filter(disconnected_at__isnull=True).exists():
            self.stdout.write("A connection exists already: nothing to do.")
            return
        sandbox = SandboxControl(sandbox_url)
        firms = sandbox.firms()
        if not firms:
            raise CommandError("The sandbox has no firm: run `unlinker sandbox seed` first.")
        firm = firms[0]
        usernames = user or [username for username, _, _ in DEMO_LOGINS]
        connection = connect_sandbox_firm(
            sandbox,
            firm["orgkey"],
            name=f"{firm['name']} (sandbox)",
            members=get_user_model().objects.filter(username__in=usernames),
        )
        run = mirror.sync_now(mirror.new_sync_run(connection, full=True))
        reads = mirror.refresh_xero_status(connection.pk, xero_client_for(connection))
        self.stdout.write(
            f"Connected {connection.name}: {run.records_upserted} linked records synced, "
            f"Xero status read in {reads} calls."
        )
