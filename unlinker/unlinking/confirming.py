"""The one way a plan shown on a page becomes a batch: the unlink plan and the reconciliation's
clean-up both confirm through `confirm`.

The page carries two hidden fields with the plan: `plan_digest`, the fingerprint of the plan
shown (a plan that changed since is not queued), and `confirm_key`, a one-time key made for each
rendering of the plan. Submitting the same key again — a double click, Back and submit, the
request retried by the browser — creates nothing and lands on the batch the key made.
"""

import re
import secrets
from dataclasses import dataclass, field

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from . import services, targets
from .planning import Plan

_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
PLAN_CHANGED = (
    "The plan changed since it was shown (the lists were refreshed, another batch took some of "
    "its records, or the options changed). Nothing was queued: check it again below."
)


def new_confirm_key() -> str:
    return secrets.token_urlsafe(24)


@dataclass
class Confirmation:
    """The plan to show (with a fresh confirm key), and a notice; or `response` when the
    confirmation was carried out (or refused) and the page is not shown again."""

    plan: Plan | None = None
    notice: str = ""
    response: HttpResponse | None = None
    confirm_key: str = ""
    busy: dict = field(default_factory=dict)  # the records unfinished batches hold

    @property
    def digest(self) -> str:
        return self.plan.digest() if self.plan else ""


def confirm(request, *, connection, selection: dict, planner) -> Confirmation:
    """Show or confirm a plan. With `confirm=1` in the POST, queue it (services.create_batch)
    and redirect to its batch; otherwise, or when the plan changed, the plan as it is now."""
    if request.POST.get("confirm") == "1":
        key = request.POST.get("confirm_key", "")
        if not _KEY.match(key):
            return _shown(connection, planner, PLAN_CHANGED)
        try:
            queued = services.create_batch(
                connection=connection,
                user=request.user,
                selection=selection,
                planner=planner,
                expected_digest=request.POST.get("plan_digest", ""),
                confirm_key=key,
            )
        except services.PlanChanged as exc:
            holders = sorted({s.busy_batch for s in exc.plan.steps if s.busy_batch})
            if holders and not exc.plan.runnable_count:
                # The same plan confirmed from another tab, or by a colleague: show theirs.
                batches = ", ".join(f"batch {pk}" for pk in holders)
                messages.info(
                    request,
                    f"Every record of this plan is already in {batches}, still running: "
                    "nothing new was queued.",
                )
                return Confirmation(response=_to_batch(request, holders[0]))
            busy = targets.holders(connection.pk)
            return Confirmation(exc.plan, PLAN_CHANGED, confirm_key=new_confirm_key(), busy=busy)
        except services.NothingToQueue as exc:
            if not exc.holders:
                return _shown(connection, planner, str(exc))
            messages.info(request, f"{exc} Nothing new was queued.")
            return Confirmation(response=_to_batch(request, exc.holders[0]))
        _tell(request, queued)
        return Confirmation(response=_to_batch(request, queued.batch.pk))
    return _shown(connection, planner, "")


def _shown(connection, planner, notice: str) -> Confirmation:
    busy = targets.holders(connection.pk)
    return Confirmation(planner(busy), notice, confirm_key=new_confirm_key(), busy=busy)


def _tell(request, queued: services.Queued) -> None:
    batch = queued.batch
    if not queued.created:
        messages.info(
            request,
            f"This plan was already queued as batch {batch.pk}: nothing new was queued.",
        )
        return
    messages.success(request, f"Batch {batch.pk} is queued: {batch.summary}.")
    for holder, count in sorted(queued.taken_by_others.items()):
        records = "record was" if count == 1 else "records were"
        messages.warning(
            request,
            f"{count} {records} taken by batch {holder}, confirmed at the same moment: "
            "this batch skips them.",
        )


def _to_batch(request, pk: int) -> HttpResponse:
    url = reverse("unlinking:batch", args=[pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
