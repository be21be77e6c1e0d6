"""A batch's steps as CSV: the audit record of who asked, and for each step every attempt and
every request it sent, what came back and when. One row per request (a step never attempted
gets one row of its own).

Streamed a chunk of steps at a time, with their attempts and requests read per chunk: a
10,000-step batch is neither held in memory nor rendered cell by cell through django-tables2
(which costs seconds per thousand rows). The file is written by core.csvexport (encoding,
Yes/No, times in the connection's zone, formulas neutralised)."""

from collections import defaultdict
from collections.abc import Iterator

from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from unlinker.core.csvexport import csv_response
from unlinker.core.display import zone_of
from unlinker.core.iterables import chunked

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
    return csv_response(HEADER, _rows(batch, steps), filename, zone=zone_of(batch.connection))


def _rows(batch: UnlinkBatch, steps: QuerySet) -> Iterator[list]:
    requested_by = batch.created_by.get_username() if batch.created_by else "command line"
    requested_at = batch.created_at
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
                    attempt["started_at"],
                    outcomes.get(attempt["outcome"], attempt["outcome"]),
                    attempt["detail"],
                ]
                sent = requests[attempt["id"]] or [None]
                for request in sent:
                    rows += 1
                    yield about_step + about_attempt + _request_cells(request)
            if not rows:
                yield about_step + [""] * (len(HEADER) - len(about_step))


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
        request["sent_at"],
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
