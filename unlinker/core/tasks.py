import socket

from celery import shared_task
from django.utils import timezone

from .models import WorkerHeartbeat


@shared_task(name="core.heartbeat")
def heartbeat(worker: str = "") -> None:
    WorkerHeartbeat.objects.update_or_create(
        worker=worker or socket.gethostname(), defaults={"seen_at": timezone.now()}
    )
