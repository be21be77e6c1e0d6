"""The reconciliation report of each connection, its progress, and the clean-up in Xero of what
it found. Views check access, call a selector or a service, and render."""

from django.contrib.auth.decorators import permission_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseStopPolling

from unlinker.accounts.roles import BROWSE, CLEANUP_XERO, REFRESH
from unlinker.connections.selectors import connection_for, connections_for
from unlinker.core.display import money_totals
from unlinker.core.listviews import BulkAction, ObjectListView
from unlinker.core.selection import Selection
from unlinker.unlinking.confirming import confirm

from . import selectors, services
from .filters import FindingFilterSet
from .tables import FINDING_EXPORT, FindingTable

CLEAN_UP = BulkAction("Clean up in Xero", "reconciliation:cleanup", CLEANUP_XERO, style="danger")
# The confirm page lists every record up to this many per kind of change, then counts the rest.
RECORDS_SHOWN = 500


@permission_required(BROWSE, raise_exception=True)
@require_GET
def report(request):
    first = connections_for(request.user).first()
    if first is None:
        return render(request, "reconciliation/no_connection.html", {"title": "Reconciliation"})
    return redirect("reconciliation:connection_report", connection_id=first.pk)


class FindingList(ObjectListView):
    """The findings of the connection's latest finished run."""

    title = "Reconciliation"
    template_name = "reconciliation/report.html"
    table_class = FindingTable
    filterset_class = FindingFilterSet
    actions = (CLEAN_UP,)
    nouns = ("finding", "findings")
    export_name = "reconciliation-findings"
    export_columns = FINDING_EXPORT

    def get_queryset(self, request, connection):
        # The page also shows the run in progress and the one the rows come from: kept on the
        # view, of which Django makes one per request.
        self.run = selectors.latest_run(connection)
        self.finished = selectors.latest_finished_run(connection)
        return selectors.findings_of(self.finished)


@permission_required(REFRESH, raise_exception=True)
@require_POST
def run_now(request, connection_id):
    connection = connection_for(request.user, connection_id)
    services.start_reconciliation(connection=connection, user=request.user)
    return _progress(request, connection)


@permission_required(BROWSE, raise_exception=True)
@require_GET
def progress(request, connection_id):
    return _progress(request, connection_for(request.user, connection_id, archived=True))


def _progress(request, connection):
    run = selectors.latest_run(connection)
    response = render(
        request, "reconciliation/_progress.html", {"connection": connection, "run": run}
    )
    if request.method == "GET" and not (run and run.is_active):
        response.status_code = HttpResponseStopPolling.status_code
        response["HX-Refresh"] = "true"  # the findings of the finished run replace the old ones
    return response


@require_POST
@permission_required(CLEANUP_XERO, raise_exception=True)
def cleanup(request, connection_id):
    """The confirm page of a clean-up: exactly what would be deleted or voided in Xero, and what
    would be left to a person. Confirmed like every plan (unlinking.confirming)."""
    connection = connection_for(request.user, connection_id)
    selection = Selection.from_request(request, connection, "findings")
    try:
        chosen = selectors.cleanup_for(connection, selection)
    except selectors.InvalidSelection as exc:
        return _cannot_clean_up(request, connection, str(exc))
    confirmation = confirm(
        request,
        connection=connection,
        selection={
            "source": "reconciliation",
            "run_id": chosen.run.pk,
            **selection.to_dict(),
        },
        planner=chosen.plan,
    )
    if confirmation.response:
        return confirmation.response
    plan = confirmation.plan

    action = reverse("reconciliation:cleanup", args=[connection.pk])
    if selection.filter_query:
        action = f"{action}?{selection.filter_query}"  # Selection.from_request reads it
    changes = [
        {
            "label": change.label,
            "count": len(change.steps),
            "total": money_totals(change.steps, amount="moved"),
            "shown": [step.target_label for step in change.steps[:RECORDS_SHOWN]],
            "more": max(0, len(change.steps) - RECORDS_SHOWN),
        }
        for change in plan.xero_changes()
    ]
    context = {
        "title": "Clean up in Xero",
        "connection": connection,
        "selection": selection,
        "action": action,
        "run": chosen.run,
        "orphans": len(chosen.orphans),
        "duplicates": len(chosen.duplicates),
        "changes": changes,
        "stays": plan.stays_in_xero[:RECORDS_SHOWN],
        "more_stays": max(0, len(plan.stays_in_xero) - RECORDS_SHOWN),
        "stays_count": len(plan.stays_in_xero),
        "stays_total": money_totals(plan.stays_in_xero),
        "left_out": chosen.left_out,
        "runnable": plan.runnable_count,
        "xero_calls": plan.xero_calls(),
        "confirmation": confirmation,
    }
    return render(request, "reconciliation/cleanup.html", context)


def _cannot_clean_up(request, connection, message: str):
    context = {"title": "Nothing to clean up", "connection": connection, "message": message}
    return render(request, "reconciliation/cleanup_invalid.html", context, status=400)
