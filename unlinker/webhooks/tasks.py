from celery import shared_task

from . import services


@shared_task(name="webhooks.process_delivery", acks_late=True)
def process_delivery(delivery_id: int) -> None:
    services.process_delivery(delivery_id)


@shared_task(name="webhooks.process_pending")
def process_pending() -> None:
    """Beat: deliveries whose message was lost (the broker was down) or whose worker died."""
    for delivery_id in services.pending():
        services.process_delivery(delivery_id)
