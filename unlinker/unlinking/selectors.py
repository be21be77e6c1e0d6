"""Reads for unlinking: the rows a plan is made from, the batches a user may see, and how far a
batch has got."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.http import Http404

from unlinker.connections.models import Connection
from unlinker.connections.selectors import connections_for
from unlinker.core.selection import Selection
from unlinker.mirror.models import LinkedInvoice, LinkedPayment

from .filters import NOT_NEEDED  # skipped when the plan was made: already done, or blocked
from .models import FINISHED_STATES, StepState, UnlinkBatch, UnlinkStep
from .planning import Plan, PlanOptions, XeroContext, plan_unlink


class InvalidSelection(ValueError):
    """The selection does not describe records of its connection: nothing can be planned."""


@dataclass(frozen=True)
class PlanRows:
    """What `plan_unlink` needs, loaded in at most three queries whatever the selection's size."""

    invoices: list[LinkedInvoice]
    payments: list[LinkedPayment]
    invoice_payments: list[LinkedPayment]
    xero: XeroContext = field(default_factory=XeroContext)

    def plan(self, options: PlanOptions, busy: Mapping[str, int] | None = None) -> Plan:
        return plan_unlink(
            self.invoices,
            self.payments,
            options,
            invoice_payments=self.invoice_payments,
            busy=busy,
            xero=self.xero,
        )


def xero_context(connection: Connection) -> XeroContext:
    """What a plan of the connection knows of its Xero organisation: the lock dates as last
    read, the connection's history notes, the suffix of freed numbers, the daily allowance."""
    return XeroContext(
        locks=connection.xero_locks,
        locks_read_at=connection.xero_organisation_read_at,
        history_notes=connection.xero_history_notes,
        void_suffix=settings.XERO_VOID_NUMBER_SUFFIX,
        calls_per_day=settings.XERO_CALLS_PER_DAY,
    )


def rows_for_selection(selection: Selection) -> PlanRows:
    """The rows of a list's selection. Ticked ids that are not (visible) rows of the selection's
    connection make the whole selection invalid: acting on the rest would not be what the user
    confirmed."""
    rows = list(selection.queryset())
    if selection.ids is not None and len(rows) != len(set(selection.ids)):
        missing = len(set(selection.ids)) - len(rows)
        raise InvalidSelection(
            f"{missing} of the selected {selection.kind} are not in this connection's linked "
            "list (any more). Go back to the list and select again."
        )
    if not rows:
        raise InvalidSelection(f"No {selection.kind} are selected.")
    xero = xero_context(Connection.objects.get(pk=selection.connection_id))
    if selection.kind == "invoices":
        return _rows(invoices=rows, payments=[], xero=xero)
    return _rows(invoices=[], payments=rows, xero=xero)


def rows_for_actionstep_ids(
    connection: Connection, *, invoice_ids: Sequence[int], payment_ids: Sequence[int]
) -> PlanRows:
    """The rows behind Actionstep bill and bill-payment ids (the command line's way of naming
    them), in the order given. Vanished rows are included: the plan says why they are skipped."""
    invoices = _in_given_order(
        LinkedInvoice.objects.filter(connection=connection, actionstep_id__in=invoice_ids),
        invoice_ids,
    )
    payments = _in_given_order(
        LinkedPayment.objects.filter(connection=connection, actionstep_id__in=payment_ids),
        payment_ids,
    )
    unknown = [f"invoice {pk}" for pk in invoice_ids if pk not in invoices]
    unknown += [f"payment {pk}" for pk in payment_ids if pk not in payments]
    if unknown:
        raise InvalidSelection(f"Not in {connection}'s linked lists: {', '.join(unknown)}")
    if not invoices and not payments:
        raise InvalidSelection("Nothing is selected.")
    return _rows(
        invoices=list(invoices.values()),
        payments=list(payments.values()),
        xero=xero_context(connection),
    )


def _in_given_order(rows: QuerySet, actionstep_ids: Sequence[int]) -> dict:
    by_id = {row.actionstep_id: row for row in rows}
    return {pk: by_id[pk] for pk in actionstep_ids if pk in by_id}


def _rows(
    *, invoices: list[LinkedInvoice], payments: list[LinkedPayment], xero: XeroContext
) -> PlanRows:
    invoice_payments = []
    if invoices:
        # Every payment of the selected invoices, vanished or unlinked ones included: the plan
        # decides which need steps, and says why the others are left alone.
        invoice_payments = list(
            LinkedPayment.objects.filter(
                connection_id=invoices[0].connection_id,
                invoice_id__in=[invoice.pk for invoice in invoices],
            ).order_by("payment_date", "pk")
        )
    return PlanRows(
        invoices=invoices, payments=payments, invoice_payments=invoice_payments, xero=xero
    )


# --- batches ------------------------------------------------------------------------------


def batches_for(user, *, writable: bool = False) -> QuerySet[UnlinkBatch]:
    """The batches of the connections the user may see, newest first: of disconnected
    connections too (their history is kept), unless `writable` (to retry, resume, cancel)."""
    connections = connections_for(user, archived=not writable)
    return UnlinkBatch.objects.filter(connection__in=connections).select_related(
        "connection", "created_by"
    )


def batch_for(user, pk, *, writable: bool = False) -> UnlinkBatch:
    """Batch `pk` if its connection is one the user may see; 404 otherwise, as for
    connections."""
    try:
        return batches_for(user, writable=writable).get(pk=int(pk))
    except (UnlinkBatch.DoesNotExist, TypeError, ValueError, OverflowError):
        raise Http404("No such batch") from None


def steps_of(batch: UnlinkBatch) -> QuerySet[UnlinkStep]:
    return UnlinkStep.objects.filter(batch=batch).order_by("position")


def _count_field(state: str) -> str:
    return f"steps_{state}"


def _state_filter(state: str) -> Q:
    if state == StepState.SKIPPED:
        return Q(steps__state=state, steps__skipped_by_plan=False)
    if state == NOT_NEEDED:
        return Q(steps__state=StepState.SKIPPED, steps__skipped_by_plan=True)
    return Q(steps__state=state)


COUNTED = [*StepState.values, NOT_NEEDED]


def with_step_counts(batches: QuerySet[UnlinkBatch]) -> QuerySet[UnlinkBatch]:
    """Annotate each batch with its number of steps in each state (`steps_<state>`, steps the
    plan skipped apart as `steps_not_needed`) and in all (`steps_total`): one query for a whole
    page of the history."""
    return batches.annotate(
        steps_total=Count("steps"),
        **{_count_field(state): Count("steps", filter=_state_filter(state)) for state in COUNTED},
    )


@dataclass(frozen=True)
class Progress:
    """How far a batch has got. `skipped` counts the steps skipped because a step they depend on
    did not succeed; the steps the plan skipped (already done, or blocked) are `not_needed`."""

    counts: dict[str, int]  # steps per state (and NOT_NEEDED), every one present

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def to_run(self) -> int:
        return self.total - self.counts[NOT_NEEDED]

    @property
    def finished(self) -> int:
        return sum(self.counts[state] for state in FINISHED_STATES) + self.counts[NOT_NEEDED]

    @property
    def percent(self) -> int:
        return 100 * self.finished // self.total if self.total else 100

    @property
    def is_finished(self) -> bool:
        """No step is waiting or running: nothing more will change unless someone retries."""
        return self.finished == self.total

    def by_state(self) -> list[tuple[str, str, int]]:
        """(state, label, count) of every state, the plan's skips last."""
        labels = {**dict(StepState.choices), NOT_NEEDED: "Not needed"}
        return [(state, labels[state], self.counts[state]) for state in COUNTED]

    def segments(self) -> list[tuple[str, str, int, int]]:
        """The progress bar: (state, label, count, whole percent of all steps, at least 1) of
        each finished state with steps, done first; what is left is the bar's empty part."""
        order = [StepState.DONE, NOT_NEEDED, StepState.FAILED, StepState.SKIPPED]
        order.append(StepState.CANCELLED)
        labels = {state: label for state, label, _ in self.by_state()}
        return [
            (state, labels[state], n, max(1, min(100, round(100 * n / self.total))))
            for state in order
            if (n := self.counts[state])
        ]


def progress(batch: UnlinkBatch) -> Progress:
    """The batch's step counts: from `with_step_counts` when annotated, else one aggregate
    query."""
    if hasattr(batch, "steps_total"):
        counts = {state: getattr(batch, _count_field(state)) for state in COUNTED}
    else:
        counts = UnlinkBatch.objects.filter(pk=batch.pk).aggregate(
            **{state: Count("steps", filter=_state_filter(state)) for state in COUNTED}
        )
    return Progress(counts)


@dataclass(frozen=True)
class BatchStatus:
    label: str
    tone: str  # success, danger, warning, neutral, info: the badge's colour


def status(batch: UnlinkBatch, progress: Progress) -> BatchStatus:
    """The batch's state as people read it: a failed or cancelled batch never looks done."""
    counts = progress.counts
    State = UnlinkBatch.State
    if batch.state == State.PAUSED:
        return BatchStatus("Paused", "warning")
    if batch.state == State.CANCELLED:
        not_run = counts[StepState.CANCELLED]
        return BatchStatus(f"Cancelled ({not_run:,} of {progress.to_run:,} not run)", "neutral")
    if batch.state == State.PROBLEMS:
        parts = []
        if counts[StepState.FAILED]:
            parts.append(f"{counts[StepState.FAILED]:,} failed")
        if counts[StepState.SKIPPED]:
            parts.append(f"{counts[StepState.SKIPPED]:,} skipped")
        tone = "danger" if counts[StepState.FAILED] else "warning"
        return BatchStatus(f"Finished with {' and '.join(parts) or 'problems'}", tone)
    if batch.state == State.FINISHED:
        return BatchStatus("Finished", "success")
    if batch.state == State.RUNNING:
        return BatchStatus("Running", "info")
    return BatchStatus(batch.get_state_display(), "info")


def describe_selection(selection: dict) -> str:
    """What a batch was made from, in words (see services.create_batch for the shapes)."""
    if "invoice_actionstep_ids" in selection:
        parts = [
            f"{label} {', '.join(map(str, selection[key]))}"
            for key, label in (
                ("invoice_actionstep_ids", "Actionstep invoices"),
                ("payment_actionstep_ids", "Actionstep payments"),
            )
            if selection.get(key)
        ]
        return "From the command line: " + "; ".join(parts)
    kind = selection.get("kind", "records")
    if selection.get("filter_query") is not None:
        query = selection["filter_query"]
        return f"All {kind} matching {query}" if query else f"All linked {kind}"
    ticked = len(selection.get("ids") or [])
    return f"{ticked} {kind if ticked != 1 else kind.rstrip('s')} ticked in the list"
