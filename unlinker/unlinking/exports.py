"""A batch's steps as CSV: the audit record of who asked, and for each step every attempt and
every request it sent, what came back and when. One row per request (a step never attempted
gets one row of its own).

Streamed a chunk of steps at a time, with their attempts and requests read per chunk: a
10,000-step batch is neither held in memory nor rendered cell by cell through django-tables2
(which costs seconds per thousand rows)."""

import csv
from collections import defaultdict
from collections.abc import Iterator

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from unlinker.core.iterables import chunked
from unlinker.core.listviews import spreadsheet_safe

from .models import StepAttempt, StepKind, StepRequest, StepState, UnlinkBatch

HEADER = [
    "Batch",
    "#",
    "Step",
    "Target",
    "Added by the plan",
    "Actionstep id",
    "Xero id",
    "State",
    "Result or reason",
    "Requested by",
    "Requested at",
    "Attempt",
    "Attempt started",
    "Attempt outcome",
    "Attempt detail",
    "Request",
    "API",
    "Method",
    "Path",
    "Idempotency key",
    "Sent at",
    "Answer",
    "Duration (ms)",
    "Sent",
    "Came back",
]
CHUNK = 1000


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
    outcomes = dict(StepAttempt.Outcome.choices)
    for chunk in chunked(steps.values().iterator(chunk_size=CHUNK), CHUNK):
        attempts, requests = _audit_of([step["id"] for step in chunk])
        for step in chunk:
            state = states[step["state"]]
            if step["state"] == StepState.SKIPPED and step["skipped_by_plan"]:
                state = "Not needed"
            about_step = [
                batch.pk,
                step["position"],
                kinds[step["kind"]],
                step["target_label"],
                step["added_automatically"],
                step["actionstep_id"],
                step["xero_id"],
                state,
                step["error"] or step["result"],
                requested_by,
                requested_at,
            ]
            rows = 0
            for attempt in attempts[step["id"]]:
                about_attempt = [
                    attempt["number"],
                    _when(attempt["started_at"]),
                    outcomes.get(attempt["outcome"], attempt["outcome"]),
                    attempt["detail"],
                ]
                sent = requests[attempt["id"]] or [None]
                for request in sent:
                    rows += 1
                    yield _safe(about_step + about_attempt + _request_cells(request))
            if not rows:
                yield _safe(about_step + [""] * (len(HEADER) - len(about_step)))


def _request_cells(request: dict | None) -> list:
    if request is None:
        return ["", "", "", "(nothing sent)", "", "", "", "", "", ""]
    answer = request["status"] if request["status"] is not None else "sent, answer lost"
    if request["status"] is None and request["error"]:
        answer = f"sent, answer lost ({request['error']})"
    return [
        request["sequence"],
        request["api"],
        request["method"],
        request["path"],
        request["idempotency_key"],
        _when(request["sent_at"]),
        answer,
        request["duration_ms"],
        request["sent"],
        request["came_back"],
    ]


def _audit_of(step_ids: list[int]) -> tuple[dict, dict]:
    attempts = defaultdict(list)
    for attempt in StepAttempt.objects.filter(step_id__in=step_ids).order_by("step", "number"):
        attempts[attempt.step_id].append(
            {
                "id": attempt.pk,
                "number": attempt.number,
                "started_at": attempt.started_at,
                "outcome": attempt.outcome,
                "detail": attempt.detail,
            }
        )
    requests = defaultdict(list)
    for request in (
        StepRequest.objects.filter(attempt__step_id__in=step_ids)
        .order_by("attempt", "sequence")
        .values()
    ):
        requests[request["attempt_id"]].append(request)
    return attempts, requests


def _safe(row: list) -> list:
    # Texts come from other systems (names, API messages): a spreadsheet must not run them.
    return [spreadsheet_safe(cell) for cell in row]


def _when(moment) -> str:
    return timezone.localtime(moment).isoformat(timespec="seconds") if moment else ""


class _Echo:
    """csv.writer writes a row to this and gets the line back, to stream it."""

    def write(self, line: str) -> str:
        return line
