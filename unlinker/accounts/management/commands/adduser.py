from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from unlinker.accounts import services
from unlinker.accounts.roles import ROLES, role_of
from unlinker.connections import services as connections
from unlinker.connections.models import Connection


class Command(BaseCommand):
    help = (
        "Add a person to the team of one or more connections, as the team page does: an existing "
        "login (its role changed with --role), or a new one with --role and either "
        "--temporary-password (printed once; changed at the first login) or --send-link (an "
        "email with a link to choose a password; needs --email, and PUBLIC_URL for the link)."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", choices=ROLES, help="needed for a new login")
        parser.add_argument(
            "--connection",
            type=int,
            action="append",
            default=[],
            metavar="N",
            help="the id of a live connection (repeatable); see manage.py sync --help",
        )
        parser.add_argument("--email", default="")
        parser.add_argument("--first-name", default="")
        parser.add_argument("--last-name", default="")
        how = parser.add_mutually_exclusive_group()
        how.add_argument(
            "--temporary-password",
            action="store_true",
            help="give a new temporary password and print it",
        )
        how.add_argument(
            "--send-link", action="store_true", help="email a link to choose a password"
        )

    def handle(self, *args, username, role, connection, email, first_name, last_name, **options):
        temporary, link = options["temporary_password"], options["send_link"]
        chosen = list(Connection.objects.filter(pk__in=connection, disconnected_at__isnull=True))
        missing = sorted(set(connection) - {c.pk for c in chosen})
        if missing:
            raise CommandError(f"No live connection {', '.join(map(str, missing))}.")
        user = get_user_model().objects.filter(username__iexact=username).first()
        if user is None and not role:
            raise CommandError("A new login needs --role (viewer, operator or admin).")
        if user is None and not (temporary or link):
            raise CommandError(
                "Say how they get a password: --temporary-password, or --send-link with --email."
            )
        try:
            with transaction.atomic():
                if user is None:
                    created = services.create_person(
                        username=username,
                        role=role,
                        email=email,
                        first_name=first_name,
                        last_name=last_name,
                        temporary_password=temporary,
                    )
                    user, password = created.user, created.temporary_password
                else:
                    password = self._update(user, role, email, temporary)
                for each in chosen:
                    connections.add_member(connection=each, user=user)
            if link:
                services.send_set_password_link(user)
        except services.CannotChangePerson as exc:
            raise CommandError(str(exc)) from None

        member_of = Connection.objects.filter(members=user, disconnected_at__isnull=True)
        where = ", ".join(f"{c} (#{c.pk})" for c in member_of) or "no connection"
        role_now = "superuser" if user.is_superuser else role_of(user) or "no role"
        self.stdout.write(f"{user.username}: {role_now}; member of {where}.")
        if password:
            self.stdout.write(f"Temporary password (shown once; to change at login): {password}")
        if link:
            self.stdout.write(f"A link to choose a password went to {user.email}.")

    @staticmethod
    def _update(user, role, email, temporary) -> str | None:
        if email and email != user.email:
            user.email = email
            user.save(update_fields=["email"])
        if role:
            services.set_role(user=user, role=role)
        return services.issue_temporary_password(user) if temporary else None
