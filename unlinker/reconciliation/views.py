from django.contrib.auth.decorators import permission_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling
from django_tables2 import RequestConfig

from unlinker.accounts.roles import BROWSE
from unlinker.connections.selectors import connection_for, connections_for

from . import selectors, services
from .models import Finding, ReconciliationRun
from .tables import FindingTable


@permission_required(BROWSE, raise_exception=True)
@require_GET
def report(request):
    first = connections_for(request.user).first()
    if first is None:
        return render(request, "reconciliation/no_connection.html", {"title": "Reconciliation"})
    return redirect("reconciliation:connection_report", connection_id=first.pk)


@permission_required(BROWSE, raise_exception=True)
@require_GET
def connection_report(request, connection_id):
    connection = connection_for(request.user, connection_id)
    finished = selectors.latest_finished_run(connection)
    kind = request.GET.get("kind") or None
    table = None
    if finished:
        table = FindingTable(selectors.findings_of(finished, kind))
        RequestConfig(request, paginate={"per_page": 50}).configure(table)
    run = selectors.latest_run(connection)
    context = {
        "title": "Reconciliation",
        "connection": connection,
        "connections": connections_for(request.user),
        "run": run,
        "active": _is_active(run),
        "finished": finished,
        "kinds": Finding.Kind.choices,
        "kind": kind,
        "table": table,
    }
    if request.htmx and not request.htmx.boosted:
        return render(request, "reconciliation/report.html#findings", context)
    return render(request, "reconciliation/report.html", context)


@permission_required(BROWSE, raise_exception=True)
@require_POST
def run_now(request, connection_id):
    connection = connection_for(request.user, connection_id)
    services.start_reconciliation(connection=connection, user=request.user)
    return _progress(request, connection)


@permission_required(BROWSE, raise_exception=True)
@require_GET
def progress(request, connection_id):
    return _progress(request, connection_for(request.user, connection_id))


def _is_active(run) -> bool:
    return run is not None and run.state in (
        ReconciliationRun.State.QUEUED,
        ReconciliationRun.State.RUNNING,
    )


def _progress(request, connection):
    run = selectors.latest_run(connection)
    active = _is_active(run)
    response = render(
        request,
        "reconciliation/_progress.html",
        {"connection": connection, "run": run, "active": active},
    )
    if request.method == "GET" and not active:
        response.status_code = HttpResponseStopPolling.status_code
        response["HX-Refresh"] = "true"  # the findings of the finished run replace the old ones
    return response
