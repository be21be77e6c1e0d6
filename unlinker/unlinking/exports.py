"""A batch's steps as CSV: the audit record of who asked, what was sent, what came back, when.

Streamed from a values query, a chunk at a time: a 10,000-step batch is neither held in memory
nor rendered cell by cell through django-tables2 (which costs seconds per thousand rows)."""

import csv
from collections.abc import Iterator

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from unlinker.core.listviews import spreadsheet_safe

from .models import StepKind, StepState, UnlinkBatch

HEADER = [
    "Batch",
    "#",
    "Step",
    "Target",
    "Added by the plan",
    "Actionstep id",
    "Xero id",
    "State",
    "Attempts",
    "Requested by",
    "Requested at",
    "Started",
    "Finished",
    "Sent",
    "Came back",
    "Error or reason",
]
CHUNK = 2000


def steps_csv(batch: UnlinkBatch, steps: QuerySet, filename: str) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in _rows(batch, steps)), content_type="text/csv"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _rows(batch: UnlinkBatch, steps: QuerySet) -> Iterator[list]:
    yield HEADER
    requested_by = batch.created_by.get_username() if batch.created_by else "command line"
    requested_at = _when(batch.created_at)
    kinds, states = dict(StepKind.choices), dict(StepState.choices)
    for step in steps.values().iterator(chunk_size=CHUNK):
        row = [
            batch.pk,
            step["position"],
            kinds[step["kind"]],
            step["target_label"],
            step["added_automatically"],
            step["actionstep_id"],
            step["xero_id"],
            states[step["state"]],
            step["attempts"],
            requested_by,
            requested_at,
            _when(step["started_at"]),
            _when(step["finished_at"]),
            step["last_request"],
            step["last_response"],
            step["error"],
        ]
        # Texts come from other systems (names, API messages): a spreadsheet must not run them.
        yield [spreadsheet_safe(cell) for cell in row]


def _when(moment) -> str:
    return timezone.localtime(moment).isoformat(timespec="seconds") if moment else ""


class _Echo:
    """csv.writer writes a row to this and gets the line back, to stream it."""

    def write(self, line: str) -> str:
        return line
