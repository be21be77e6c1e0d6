"""Unlinking pages: plan and confirm, the task history, a batch's steps. Views check access,
call a selector or a service, and render."""

from dataclasses import replace

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from unlinker.accounts.roles import BROWSE, CLEANUP_XERO, QUEUE_UNLINK
from unlinker.connections.selectors import connection_for
from unlinker.core.display import money_totals, plural
from unlinker.mirror.selection import KINDS, Selection

from . import exports, selectors, services
from .filters import StepFilterSet
from .forms import PlanForm
from .planning import InvoiceAfter, PaymentRemoval
from .tables import BatchTable, StepTable

# A plan of 10,000 steps is summarised: counts, then this many groups, and this many records
# of each list (what stays in Xero, what the clean-up would remove).
GROUPS_SHOWN = 50
RECORDS_SHOWN = 20
BATCHES_PER_PAGE = 50
STEPS_PER_PAGE = 100


@require_POST
@permission_required(QUEUE_UNLINK, raise_exception=True)
def plan_page(request):
    """The plan page's own URL: the selection names its connection in a field (see plan_view
    for the other fields)."""
    connection_id = request.POST.get("connection", "")
    kind = request.POST.get("kind")
    if not connection_id.isdecimal() or kind not in KINDS:
        return _cannot_plan(
            request, "The selection does not say which connection and which list it is from."
        )
    connection = connection_for(request.user, connection_id)
    return plan_view(request, connection, Selection.from_request(request, connection, kind))


def plan_view(request, connection, selection: Selection):
    """Show the plan for `selection` of `connection`; with `confirm`, queue it as a batch and go
    to the batch's page. The lists' "Unlink from Xero" hands off here.

    The caller has required POST and QUEUE_UNLINK and got `connection` from `connection_for`.
    POST fields besides the selection's: `remove_payments` (none|delete|reverse), `after`
    (none|revert|delete), `xero_cleanup` ("on"; admins only), `plan_digest` (the plan shown) and
    `confirm` ("1" to queue). Nothing is created unless all of them are valid and the plan is
    still the one shown.
    """
    form = PlanForm(request.POST, user=request.user)
    if not form.is_valid():
        problems = [error for errors in form.errors.values() for error in errors]
        return _cannot_plan(request, " ".join(problems))
    try:
        rows = selectors.rows_for_selection(selection)
    except selectors.InvalidSelection as exc:
        return _cannot_plan(request, str(exc))
    options = form.options()
    plan = rows.plan(options)
    digest = plan.digest()

    notice = ""
    if form.cleaned_data["confirm"]:
        if form.cleaned_data["plan_digest"] == digest:
            try:
                batch = services.create_batch(
                    connection=connection,
                    user=request.user,
                    selection=selection.to_dict(),
                    plan=plan,
                )
            except services.NothingToQueue as exc:
                return _cannot_plan(request, str(exc))
            messages.success(request, f"Batch {batch.pk} is queued: {batch.summary}.")
            url = reverse("unlinking:batch", args=[batch.pk])
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
        notice = (
            "The plan changed since it was shown (the lists were refreshed, or the options "
            "changed). Nothing was queued: check it again below."
        )

    action = reverse("unlinking:plan")
    if selection.filter_query:
        action = f"{action}?{selection.filter_query}"  # Selection.from_request reads it there
    context = {
        "title": "Unlink from Xero",
        "connection": connection,
        "selection": selection,
        "action": action,
        "plan": plan,
        "digest": digest,
        "notice": notice,
        "options": options,
        "removal_choices": PaymentRemoval.choices,
        "after_choices": InvoiceAfter.choices,
        "groups": plan.groups[:GROUPS_SHOWN],
        "more_groups": max(0, len(plan.groups) - GROUPS_SHOWN),
        "stays": plan.stays_in_xero[:RECORDS_SHOWN],
        "more_stays": max(0, len(plan.stays_in_xero) - RECORDS_SHOWN),
        "stays_total": money_totals(plan.stays_in_xero),
    }
    if request.htmx and request.htmx.target == "plan":  # an option changed
        return render(request, "unlinking/plan.html#plan", context)
    if request.user.has_perm(CLEANUP_XERO):
        # The clean-up option lists exactly what it would delete or void, before it is chosen.
        cleanup = plan if options.xero_cleanup else rows.plan(replace(options, xero_cleanup=True))
        context["xero_preview"] = [
            {
                "label": change.label,
                "count": len(change.steps),
                "total": money_totals(change.steps),
                "shown": [step.target_label for step in change.steps[:RECORDS_SHOWN]],
                "more": max(0, len(change.steps) - RECORDS_SHOWN),
            }
            for change in cleanup.xero_changes()
        ]
    return render(request, "unlinking/plan.html", context)


def _cannot_plan(request, message: str):
    return render(
        request,
        "unlinking/plan_invalid.html",
        {"title": "Nothing to plan", "message": message},
        status=400,
    )


@permission_required(BROWSE, raise_exception=True)
@require_GET
def history(request):
    table = BatchTable(selectors.with_step_counts(selectors.batches_for(request.user)))
    # Only the table's own columns: django-tables2 would read anything else as a field path.
    sort = request.GET.getlist(table.order_by_field)
    if sort := [alias for alias in sort if alias.removeprefix("-") in table.columns]:
        table.order_by = sort
    _paginate(request, table, BATCHES_PER_PAGE)
    context = {"title": "Task history", "table": table}
    if _wants_results(request):  # sorting or paging
        return _fragment(render(request, "unlinking/history.html#results", context))
    return _fragment(render(request, "unlinking/history.html", context))


@permission_required(BROWSE, raise_exception=True)
@require_GET
def batch_page(request, pk):
    batch = selectors.batch_for(request.user, pk)
    filterset = StepFilterSet(request.GET, queryset=selectors.steps_of(batch))
    if request.GET.get("_export") == "csv":
        filename = f"unlink-batch-{batch.pk}-steps.csv"
        return exports.steps_csv(batch, filterset.qs, filename)
    table = StepTable(
        filterset.qs, exclude=() if request.user.has_perm(QUEUE_UNLINK) else ("retry",)
    )
    _paginate(request, table, STEPS_PER_PAGE)
    progress = selectors.progress(batch)
    context = {
        "title": f"Batch {batch.pk}",
        "batch": batch,
        "selection": selectors.describe_selection(batch.selection),
        "progress": progress,
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
    batch = selectors.batch_for(request.user, pk)
    step_ids = None
    if "step" in request.POST:
        # A step id is a bigint: 19 digits at most. Longer values name no step, and int()
        # refuses strings of more than 4,300 digits (ValueError: a 500).
        step_ids = [int(v) for v in request.POST.getlist("step") if v.isdecimal() and len(v) <= 19]
    count = services.retry_failed_steps(batch=batch, user=request.user, step_ids=step_ids)
    if count:
        messages.success(request, f"{plural(count, 'step')} queued again.")
    else:
        messages.info(request, "There was no failed step to retry.")
    return redirect("unlinking:batch", pk=batch.pk)


@require_POST
@permission_required(QUEUE_UNLINK, raise_exception=True)
def cancel(request, pk):
    batch = selectors.batch_for(request.user, pk)
    count = services.cancel_pending_steps(batch=batch, user=request.user)
    if count:
        messages.success(
            request, f"{plural(count, 'step')} cancelled; steps already running finish."
        )
    else:
        messages.info(request, "There was no step left to cancel.")
    return redirect("unlinking:batch", pk=batch.pk)


def _wants_results(request) -> bool:
    return bool(request.htmx and request.htmx.target == "results")


def _fragment(response):
    # The same URL answers a fragment or a page: a browser cache must keep them apart.
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response


def _paginate(request, table, per_page: int) -> None:
    table.paginate(per_page=per_page)
    # get_page turns a stale or hostile page number into the nearest real page.
    table.page = table.paginator.get_page(request.GET.get(table.page_field))
