from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from unlinker.accounts.services import set_role
from unlinker.connections.models import Connection

# (login, password, role): one person per role, so that the demo shows what each may do.
DEMO_LOGINS = (
    ("demo", "demo", "admin"),
    ("operator", "operator", "operator"),
    ("viewer", "viewer", "viewer"),
)


class Command(BaseCommand):
    help = (
        "Create (or reset) the demo logins demo/demo (admin), operator/operator and "
        "viewer/viewer, members of every live connection. Refused when DEBUG is off."
    )

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError(
                "The demo users are a demo convenience: they are never created with DEBUG off."
            )
        live = list(Connection.objects.filter(disconnected_at__isnull=True))
        for username, password, role in DEMO_LOGINS:
            user, _ = get_user_model().objects.get_or_create(username=username)
            user.set_password(password)
            # the Django admin is for superusers: a demo login has no use for the staff flag
            user.is_staff = False
            user.save()
            set_role(user=user, role=role)
            for connection in live:
                connection.members.add(user)
            self.stdout.write(f"Demo login: {username} / {password} (role: {role})")
