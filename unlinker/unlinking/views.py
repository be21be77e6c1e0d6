"""Unlinking pages: plan and confirm, the task history, a batch's steps. Views check access,
call a selector or a service, and render."""

from dataclasses import replace

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from unlinker.accounts.roles import BROWSE, CLEANUP_XERO, QUEUE_UNLINK
from unlinker.connections.selectors import connection_for
from unlinker.core.display import money_totals, plural
from unlinker.core.listviews import ObjectListView, paginate
from unlinker.core.selection import Selection

from . import exports, selectors, services
from .confirming import confirm
from .filters import BatchFilterSet, StepFilterSet
from .forms import PlanForm
from .planning import InvoiceAfter, PaymentRemoval, freed_number
from .tables import BatchTable, StepTable

# A plan of 10,000 steps is summarised: counts, then this many groups, and this many records
# of each list (what stays in Xero, what the clean-up would remove).
GROUPS_SHOWN = 50
RECORDS_SHOWN = 20
LIST_KINDS = ("invoices", "payments")  # the lists a plan is made from
MAX_REDIRECT = 8000  # characters of a URL redirected to (Django refuses more than 16,384)
STEPS_PER_PAGE = 100


@require_POST
@permission_required(QUEUE_UNLINK, raise_exception=True)
def plan_page(request, connection_id):
    """The plan of a list's selection, and its confirmation. The lists' "Unlink from Xero" posts
    here: the selection's fields (`kind`, `pk`s or `_all` with the filter in the query string),
    and once on this page `remove_payments` (none|delete|reverse), `after` (none|revert|delete),
    `xero_cleanup`, `remove_allocations`, `free_numbers` ("on"; admins only), `plan_digest`,
    `confirm_key` and `confirm` ("1" to queue: see confirming.py). Nothing is created unless
    all of them are valid and the plan is still the one shown."""
    connection = connection_for(request.user, connection_id)
    kind = request.POST.get("kind")
    if kind not in LIST_KINDS:
        return _cannot_plan(request, "The selection does not say which list it is from.")
    selection = Selection.from_request(request, connection, kind)
    form = PlanForm(request.POST, user=request.user)
    if not form.is_valid():
        problems = [error for errors in form.errors.values() for error in errors]
        return _cannot_plan(request, " ".join(problems))
    try:
        rows = selectors.rows_for_selection(selection)
    except selectors.InvalidSelection as exc:
        return _cannot_plan(request, str(exc))
    options = form.options()
    confirmation = confirm(
        request,
        connection=connection,
        selection=selection.to_dict(),
        planner=lambda busy: rows.plan(options, busy=busy),
    )
    if confirmation.response:
        return confirmation.response
    plan = confirmation.plan

    action = reverse("unlinking:plan", args=[connection.pk])
    if selection.filter_query:
        action = f"{action}?{selection.filter_query}"  # Selection.from_request reads it there
    context = {
        "title": "Unlink from Xero",
        "connection": connection,
        "selection": selection,
        "action": action,
        "plan": plan,
        "confirmation": confirmation,
        "options": options,
        "removal_choices": PaymentRemoval.choices,
        "after_choices": InvoiceAfter.choices,
        "groups": plan.groups[:GROUPS_SHOWN],
        "more_groups": max(0, len(plan.groups) - GROUPS_SHOWN),
        "stays": plan.stays_in_xero[:RECORDS_SHOWN],
        "more_stays": max(0, len(plan.stays_in_xero) - RECORDS_SHOWN),
        "stays_total": money_totals(plan.stays_in_xero),
        "destructive": plan.destructive_counts(),
        "xero": plan.xero,
        "xero_calls": plan.xero_calls(),
        "freed_example": freed_number("INV-1042", plan.xero.void_suffix),
    }
    if request.user.has_perm(CLEANUP_XERO):
        # The clean-up option lists exactly what it would delete or void, before it is chosen.
        cleanup = (
            plan
            if options.xero_cleanup
            else rows.plan(replace(options, xero_cleanup=True), busy=confirmation.busy)
        )
        context["xero_preview"] = [
            {
                "label": change.label,
                "count": len(change.steps),
                "total": money_totals(change.steps, amount="moved"),
                "shown": [step.target_label for step in change.steps[:RECORDS_SHOWN]],
                "more": max(0, len(change.steps) - RECORDS_SHOWN),
            }
            for change in cleanup.xero_changes()
        ]
    if request.htmx and request.htmx.target == "plan":  # an option changed
        # The plan, and the clean-up's preview beside the options (out of band): both follow
        # the options ticked.
        context["out_of_band"] = True
        return render(request, "unlinking/plan.html#plan", context)
    return render(request, "unlinking/plan.html", context)


@require_POST
@permission_required(QUEUE_UNLINK, raise_exception=True)
def moved_plan_page(request, connection_id=None):
    """The plan page's old addresses (/history/plan/ with the connection in a field, and
    /linked/N/unlink/): a 308 keeps the POST and its selection."""
    if connection_id is not None:
        connection_for(request.user, connection_id)  # 404 for a connection not theirs
    connection_id = str(connection_id or request.POST.get("connection", ""))
    if not connection_id.isdecimal() or len(connection_id) > 19:  # a bigint, or nothing
        return _cannot_plan(request, "The selection does not say which connection it is from.")
    url = reverse("unlinking:plan", args=[int(connection_id)])
    if query := request.GET.urlencode():
        url = f"{url}?{query}"
    if len(url) > MAX_REDIRECT:
        return _cannot_plan(request, "The list's filter is too long to plan from.")
    return redirect(url, permanent=True, preserve_request=True)


def _cannot_plan(request, message: str):
    return render(
        request,
        "unlinking/plan_invalid.html",
        {"title": "Nothing to plan", "message": message},
        status=400,
    )


class BatchList(ObjectListView):
    """Task history: the batches of every connection the user may read (archived ones too),
    newest first, sortable, filtered by state, person, dates and connection."""

    per_connection = False
    title = "Task history"
    nouns = ("batch", "batches")
    template_name = "unlinking/history.html"
    table_class = BatchTable
    filterset_class = BatchFilterSet
    export_name = "task-history"

    def get_queryset(self, request, connection):
        batches = selectors.batches_for(request.user).order_by("-created_at", "-id")
        return selectors.with_step_counts(batches)


@permission_required(BROWSE, raise_exception=True)
@require_GET
def batch_page(request, pk):
    batch = selectors.batch_for(request.user, pk)
    filterset = StepFilterSet(request.GET, queryset=selectors.steps_of(batch))
    if request.GET.get("_export") == "csv":
        filename = f"unlink-batch-{batch.pk}-steps.csv"
        return exports.steps_csv(batch, filterset.qs, filename)
    steps = filterset.qs.prefetch_related("attempt_log__requests").select_related(
        "batch__connection"
    )
    table = StepTable(steps, exclude=() if request.user.has_perm(QUEUE_UNLINK) else ("retry",))
    paginate(request, table, STEPS_PER_PAGE)
    progress = selectors.progress(batch)
    context = {
        "title": f"Batch {batch.pk}",
        "batch": batch,
        "selection": selectors.describe_selection(batch.selection),
        "progress": progress,
        "status": selectors.status(batch, progress),
        "state": filterset.form.cleaned_data.get("state") if filterset.is_valid() else "",
        "table": table,
    }
    if _wants_results(request):  # the poll, or paging
        # 286 tells htmx to stop polling: nothing more will change.
        status = 286 if progress.is_finished else 200
        return _fragment(render(request, "unlinking/batch.html#results", context, status=status))
    return _fragment(render(request, "unlinking/batch.html", context))


@require_POST
@permission_required(QUEUE_UNLINK, raise_exception=True)
def retry(request, pk):
    """Retry the batch's failed steps, or only the posted `step` ids."""
    return _queue_again(
        request, pk, services.retry_failed_steps, "There was no failed step to retry."
    )


@require_POST
@permission_required(QUEUE_UNLINK, raise_exception=True)
def resume(request, pk):
    """Queue the batch's cancelled steps again, or only the posted `step` ids."""
    nothing = "There was no cancelled step to queue again."
    return _queue_again(request, pk, services.resume_cancelled_steps, nothing)


def _queue_again(request, pk, service, nothing: str):
    batch = selectors.batch_for(request.user, pk, writable=True)
    count = service(batch=batch, user=request.user, step_ids=_posted_steps(request))
    if count:
        messages.success(request, f"{plural(count, 'step')} queued again.")
    else:
        messages.info(request, nothing)
    return redirect("unlinking:batch", pk=batch.pk)


@require_http_methods(["GET", "POST"])
@permission_required(QUEUE_UNLINK, raise_exception=True)
def cancel(request, pk):
    """GET: what cancelling would do, to confirm; POST with confirm=1: cancel every step not
    started yet (running ones finish)."""
    batch = selectors.batch_for(request.user, pk, writable=True)
    progress = selectors.progress(batch)
    if request.method == "GET" or request.POST.get("confirm") != "1":
        context = {"title": f"Cancel batch {batch.pk}?", "batch": batch, "progress": progress}
        return render(request, "unlinking/cancel.html", context)
    count = services.cancel_pending_steps(batch=batch, user=request.user)
    if count:
        messages.success(
            request,
            f"{plural(count, 'step')} cancelled; steps already running finish. Cancelled "
            "steps can be queued again from this page.",
        )
    else:
        messages.info(request, "There was no step left to cancel.")
    return redirect("unlinking:batch", pk=batch.pk)


def _posted_steps(request) -> list[int] | None:
    if "step" not in request.POST:
        return None
    # A step id is a bigint: 19 digits at most. Longer values name no step, and int()
    # refuses strings of more than 4,300 digits (ValueError: a 500).
    return [int(v) for v in request.POST.getlist("step") if v.isdecimal() and len(v) <= 19]


def _wants_results(request) -> bool:
    return bool(request.htmx and request.htmx.target == "results")


def _fragment(response):
    # The same URL answers a fragment or a page: a browser cache must keep them apart.
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response
