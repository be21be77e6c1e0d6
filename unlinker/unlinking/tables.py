import django_tables2 as tables
from django.template.loader import render_to_string
from django.utils.html import format_html

from unlinker.mirror.tables import BadgeColumn, NumberColumn

from . import selectors


class BatchTable(tables.Table):
    id = tables.Column("Batch", linkify=("unlinking:batch", [tables.A("pk")]))
    created_at = tables.DateTimeColumn(verbose_name="When", order_by=("created_at", "id"))
    created_by = tables.Column(
        "Who", default="command line", order_by=("created_by__username", "id")
    )
    connection = tables.Column("Connection", order_by=("connection__name", "id"))
    summary = tables.Column("What", orderable=False)
    state = tables.Column("State", order_by=("state", "id"))
    progress = tables.Column("Progress", accessor="pk", orderable=False)

    class Meta:
        empty_text = (
            "No unlink batch yet: select invoices or payments in a linked list to start one."
        )

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


class StepTable(tables.Table):
    """Every step of a batch, with every attempt and every request it sent (exports.py writes
    the same as the audit CSV)."""

    position = NumberColumn("#")
    kind = tables.Column("Step")
    target_label = tables.Column("Target")
    state = BadgeColumn("State")
    result = tables.Column("Result or reason", accessor="pk")
    attempts = tables.Column("Attempts and requests", accessor="pk")
    started_at = tables.DateTimeColumn(verbose_name="Started")
    finished_at = tables.DateTimeColumn(verbose_name="Finished")
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
