from django.conf import settings
from django.db import models
from django.db.models import Q

from unlinker.core.zones import default_zone, validate_zone
from unlinker.integrations.records import XeroLocks

from .crypto import UNREADABLE, EncryptedTextField, Unreadable


class Connection(models.Model):
    """One Actionstep org paired with one Xero tenant: the unit everything else belongs to."""

    name = models.CharField(max_length=200)
    actionstep_org_key = models.CharField(max_length=100, blank=True)
    actionstep_api_endpoint = models.URLField(blank=True)
    xero_tenant_id = models.CharField(max_length=64, blank=True)
    xero_tenant_name = models.CharField(max_length=200, blank=True)
    # The firm's own zone (IANA name), in which its people read times: the Xero organisation's
    # when Xero gives it on pairing, otherwise the one chosen when connecting.
    timezone = models.CharField(max_length=64, default=default_zone, validators=[validate_zone])
    # Users who may see this connection's records; holders of manage_connections see all.
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    # The Xero organisation's lock dates as GET /Organisation last gave them (read with every
    # refresh from Xero, and by every clean-up step before it acts): the plan skips what they
    # lock, with the date.
    xero_period_lock_date = models.DateField(null=True, blank=True)
    xero_end_of_year_lock_date = models.DateField(null=True, blank=True)
    xero_organisation_read_at = models.DateTimeField(null=True, blank=True)
    # Every change Unlinker makes in Xero adds a note to the record's history there, saying
    # which batch did it, for whom and why. Admins can switch it off per connection.
    xero_history_notes = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    disconnected_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["actionstep_org_key"],
                condition=~Q(actionstep_org_key="") & Q(disconnected_at__isnull=True),
                name="one_live_connection_per_actionstep_org",
            ),
            models.UniqueConstraint(
                fields=["xero_tenant_id"],
                condition=~Q(xero_tenant_id="") & Q(disconnected_at__isnull=True),
                name="one_live_connection_per_xero_tenant",
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def xero_locks(self) -> XeroLocks:
        return XeroLocks(self.xero_period_lock_date, self.xero_end_of_year_lock_date)

    @property
    def is_paired(self) -> bool:
        return bool(self.actionstep_org_key and self.xero_tenant_id and not self.disconnected_at)


class Provider(models.TextChoices):
    ACTIONSTEP = "actionstep", "Actionstep"
    XERO = "xero", "Xero"


class OAuthCredential(models.Model):
    """The token pair of one side of a connection. Refresh tokens rotate on every refresh, so
    the row is updated under a lock (see connections/tokens.py)."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="credentials")
    provider = models.CharField(max_length=20, choices=Provider.choices)
    access_token = EncryptedTextField(blank=True)
    refresh_token = EncryptedTextField(blank=True)
    token_type = models.CharField(max_length=20, default="Bearer")
    scope = models.TextField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_refreshed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "provider"], name="one_credential_per_side"
            )
        ]

    def __str__(self):
        return f"{self.connection} · {self.get_provider_display()}"

    def __repr__(self):  # never let a token reach a log line
        return f"<OAuthCredential {self.pk} {self.provider} connection={self.connection_id}>"

    UNREADABLE = UNREADABLE  # what the Connections page and the errors say

    @property
    def tokens_unreadable(self) -> bool:
        """No key of UNLINKER_TOKEN_KEY decrypts the stored tokens (of those loaded)."""
        return any(
            isinstance(self.__dict__.get(field), Unreadable)
            for field in ("access_token", "refresh_token")
        )
