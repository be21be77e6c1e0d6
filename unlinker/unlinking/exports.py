"""A batch's steps as CSV: the audit record of who asked, what was sent, what came back, when.

Streamed from a values query, a chunk at a time: a 10,000-step batch is neither held in memory
nor rendered cell by cell through django-tables2 (which costs seconds per thousand rows). The
file is written by core.csvexport (encoding, Yes/No, times in the connection's zone, formulas
neutralised)."""

from collections.abc import Iterator

from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from unlinker.core.csvexport import csv_response
from unlinker.core.display import zone_of

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
    return csv_response(HEADER, _rows(batch, steps), filename, zone=zone_of(batch.connection))


def _rows(batch: UnlinkBatch, steps: QuerySet) -> Iterator[list]:
    requested_by = batch.created_by.get_username() if batch.created_by else "command line"
    requested_at = batch.created_at
    kinds, states = dict(StepKind.choices), dict(StepState.choices)
    for step in steps.values().iterator(chunk_size=CHUNK):
        yield [
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
            step["started_at"],
            step["finished_at"],
            step["last_request"],
            step["last_response"],
            step["error"],
        ]
