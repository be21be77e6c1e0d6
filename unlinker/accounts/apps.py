from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "unlinker.accounts"
    label = "accounts"
    verbose_name = "Accounts and roles"

    def ready(self):
        from .middleware import note_temporary_password
        from .roles import ensure_roles

        post_migrate.connect(ensure_roles, sender=self, dispatch_uid="unlinker.ensure_roles")
        user_logged_in.connect(note_temporary_password, dispatch_uid="unlinker.temporary_password")
