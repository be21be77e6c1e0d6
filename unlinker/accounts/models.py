from django.conf import settings
from django.db import models


class Access(models.Model):
    """Carries the app's permissions (no rows, no table). Roles are groups holding these."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("browse", "Browse linked records, task history and reconciliation"),
            ("queue_unlink", "Plan and queue unlink batches; retry and cancel steps"),
            ("refresh", "Refresh the lists from Actionstep and run the reconciliation now"),
            ("manage_connections", "Connect, pair and disconnect Actionstep and Xero"),
            ("cleanup_xero", "Delete and void records in Xero"),
        ]

    def __str__(self):
        return "permissions"


class TemporaryPassword(models.Model):
    """A password that an admin gave someone (the team page, `manage.py adduser`): until they
    choose their own, every page sends them to do so (see middleware)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="temporary_password",
    )
    issued_at = models.DateTimeField(auto_now_add=True)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self):
        return f"temporary password of {self.user}"
