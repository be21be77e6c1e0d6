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
