"""Reachability of the parts the product cannot work without."""

from django.db import connection

from unlinker.celery import app as celery_app


def database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "down"; the kind is reported
        return f"error: {type(exc).__name__}"
    return "ok"


def broker_status() -> str:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=3)
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return "ok"


def last_worker_heartbeat() -> str | None:
    from .models import WorkerHeartbeat

    latest = WorkerHeartbeat.objects.order_by("-seen_at").values_list("seen_at", flat=True).first()
    return latest.isoformat() if latest else None
