"""Deliveries of Xero's webhooks, stored before anything else is done with them."""

from django.db import models
from django.db.models import Q


class WebhookDelivery(models.Model):
    """One correctly signed delivery with events. Its raw body's digest is unique: Xero
    retrying it, or anyone replaying it, finds it stored and nothing is done twice."""

    received_at = models.DateTimeField(auto_now_add=True)
    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the raw body")
    body = models.TextField()
    event_count = models.PositiveIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    invoices_read = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["received_at", "id"]
        indexes = [
            models.Index(
                fields=["received_at"],
                name="webhook_unprocessed",
                condition=Q(processed_at__isnull=True),
            )
        ]

    def __str__(self):
        return f"webhook delivery {self.pk} ({self.event_count} events)"
