import django_tables2 as tables
from django.template.loader import render_to_string
from django.utils.html import format_html

from unlinker.mirror.tables import BadgeColumn, DateTimeColumn, NumberColumn

from . import selectors


class BatchTable(tables.Table):
    id = tables.Column("Batch", linkify=("unlinking:batch", [tables.A("pk")]))
    created_at = DateTimeColumn("Queued", order_by=("created_at", "id"), zone_from="connection")
    created_by = tables.Column(
        "Queued by", default="command line", order_by=("created_by__username", "id")
    )
    connection = tables.Column("Connection", order_by=("connection__name", "id"))
    summary = tables.Column("What", orderable=False, attrs={"td": {"class": "wrap"}})
    state = tables.Column("State", order_by=("state", "id"))
    progress = tables.Column("Progress", accessor="pk", orderable=False)

    class Meta:
        attrs = {"class": "object-table batches-table"}
        order_by = ("-created_at",)  # newest first
        empty_text = (
            "No unlink batch yet: select invoices or payments in a linked list to start one."
        )

    def value_state(self, record):
        return selectors.status(record, selectors.progress(record)).label

    def value_progress(self, record):
        progress = selectors.progress(record)
        return f"{progress.finished} of {progress.total} steps finished"

    def render_connection(self, value, record):
        if record.connection.disconnected_at:
            return format_html('{} <span class="badge archived">archived</span>', value)
        return value

    def render_state(self, record):
        status = selectors.status(record, selectors.progress(record))
        return format_html('<span class="badge tone-{}">{}</span>', status.tone, status.label)

    def render_progress(self, record):
        return render_to_string(
            "unlinking/_progress_bar.html", {"progress": selectors.progress(record)}
        )


def _cells(css: str) -> dict:
    return {"th": {"class": css}, "td": {"class": css}}


class StepTable(tables.Table):
    """Every step of a batch, with every attempt and every request it sent (exports.py writes
    the same as the audit CSV)."""

    position = NumberColumn("#")
    kind = tables.Column("Step", attrs=_cells("kind"))
    target_label = tables.Column("Target", attrs=_cells("target"))
    state = BadgeColumn("State")
    result = tables.Column("Result or reason", accessor="pk", attrs=_cells("result"))
    attempts = tables.Column("Attempts and requests", accessor="pk", attrs=_cells("attempts"))
    when = tables.TemplateColumn(
        template_name="unlinking/_step_when.html",
        verbose_name="Started, finished",
        accessor="pk",
        attrs=_cells("when"),
    )
    retry = tables.TemplateColumn(template_name="unlinking/_retry_step.html", verbose_name="")

    class Meta:
        attrs = {"class": "object-table steps-table"}
        orderable = False  # the plan's order is the order that matters
        empty_text = "No step in this state."

    def render_target_label(self, value, record):
        if record.added_automatically:
            return format_html('{} <span class="badge added">added</span>', value)
        return value

    def render_state(self, value, record):
        if record.state == "skipped" and record.skipped_by_plan:
            return format_html('<span class="badge not_needed">{}</span>', "Not needed")
        return format_html('<span class="badge {}">{}</span>', record.state, value)

    def render_result(self, record):
        return record.error or record.result or "—"

    def render_attempts(self, record):
        return render_to_string("unlinking/_attempts.html", {"step": record})
