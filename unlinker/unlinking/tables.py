import django_tables2 as tables
from django.utils.html import format_html

from unlinker.mirror.tables import BadgeColumn, DateTimeColumn, NumberColumn

from . import selectors


class BatchTable(tables.Table):
    id = tables.Column("Batch", linkify=("unlinking:batch", [tables.A("pk")]))
    created_at = DateTimeColumn("When", order_by=("created_at", "id"), zone_from="connection")
    created_by = tables.Column(
        "Who", default="command line", order_by=("created_by__username", "id")
    )
    connection = tables.Column("Connection", order_by=("connection__name", "id"))
    summary = tables.Column("What", orderable=False)
    steps = tables.Column("Steps", accessor="steps_total", orderable=False)
    state = BadgeColumn("State", order_by=("state", "id"))
    progress = tables.Column("Progress", accessor="pk", orderable=False)

    class Meta:
        empty_text = (
            "No unlink batch yet: select invoices or payments in a linked list to start one."
        )

    def render_steps(self, record):
        counts = selectors.progress(record).by_state()
        return format_html(
            "{}",
            " · ".join(f"{n:,} {state.label.lower()}" for state, n in counts if n),
        )

    def render_progress(self, record):
        progress = selectors.progress(record)
        return format_html(
            '<progress max="{}" value="{}">{}%</progress> {}%',
            progress.total,
            progress.finished,
            progress.percent,
            progress.percent,
        )


class StepTable(tables.Table):
    """Every step of a batch (exports.py writes the same steps as the audit CSV)."""

    position = NumberColumn("#")
    kind = tables.Column("Step")
    target_label = tables.Column("Target")
    state = BadgeColumn("State")
    attempts = NumberColumn("Attempts")
    error = tables.Column("Error or reason")
    last_request = tables.Column("Sent")
    last_response = tables.Column("Came back")
    started_at = DateTimeColumn("Started")  # in the batch's zone: see batch.html
    finished_at = DateTimeColumn("Finished")
    retry = tables.TemplateColumn(template_name="unlinking/_retry_step.html")

    class Meta:
        attrs = {"class": "object-table"}
        orderable = False  # the plan's order is the order that matters
        empty_text = "No step in this state."

    def render_target_label(self, value, record):
        if record.added_automatically:
            return format_html('{} <span class="badge added">added</span>', value)
        return value
