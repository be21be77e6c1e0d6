from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.shortcuts import redirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .health import broker_status, database_status, last_worker_heartbeat, token_status


@require_GET
def home(request):
    return redirect("mirror:invoices")


@login_not_required  # probed by load balancers and docker health checks; it reveals no data
@never_cache
@require_GET
def healthz(request):
    checks = {"database": database_status(), "broker": broker_status()}
    if checks["database"] == "ok":
        # tokens no key decrypts: every call of those connections would fail
        checks["tokens"] = token_status()
    healthy = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if healthy else "unavailable", **checks}
    if checks["database"] == "ok":
        # Informational: a worker that stopped does not make the web process unhealthy.
        body["worker_last_seen"] = last_worker_heartbeat()
    return JsonResponse(body, status=200 if healthy else 503)
