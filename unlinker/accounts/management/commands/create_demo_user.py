from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Create (or reset) the demo login demo/demo with the admin role. Refused when DEBUG is off."
    )

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError(
                "The demo user is a demo convenience: it is never created with DEBUG off."
            )
        user, _ = get_user_model().objects.get_or_create(username="demo")
        user.set_password("demo")
        user.is_staff = True
        user.save()
        user.groups.add(Group.objects.get(name="admin"))
        self.stdout.write("Demo login: demo / demo (role: admin)")
