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


def token_status() -> str:
    """ "ok", or the live connections whose stored tokens no key of UNLINKER_TOKEN_KEY decrypts
    (named by id: this answer needs no login)."""
    from unlinker.connections.models import OAuthCredential

    credentials = OAuthCredential.objects.filter(connection__disconnected_at__isnull=True).only(
        "connection_id", "access_token", "refresh_token"
    )
    unreadable = sorted({c.connection_id for c in credentials if c.tokens_unreadable})
    if not unreadable:
        return "ok"
    ids = ", ".join(str(pk) for pk in unreadable)
    return (
        f"unreadable for connection {ids}: restore the previous UNLINKER_TOKEN_KEY, or "
        "reconnect on Connections"
    )


def last_worker_heartbeat() -> str | None:
    from .models import WorkerHeartbeat

    latest = WorkerHeartbeat.objects.order_by("-seen_at").values_list("seen_at", flat=True).first()
    return latest.isoformat() if latest else None
