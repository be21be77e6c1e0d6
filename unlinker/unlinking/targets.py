"""Which unfinished batch holds which record: the rule "a record has one writer".

A batch takes its records when it is created (services.create_batch) and gives each one back
once its last step on that record has finished. Taking is one INSERT ... ON CONFLICT DO NOTHING
into BatchTarget, whose partial unique constraint admits one holder per record: of two batches
racing for a record, the second's insert waits for the first to commit and then skips it, so
exactly one gets it. Records are taken in sorted order, so that two racing batches never wait
for each other in a circle (a deadlock).
"""

from collections.abc import Iterable

from django.db.models import Exists, OuterRef
from django.utils import timezone

from .models import UNFINISHED_STATES, BatchTarget, UnlinkStep


def holders(connection_id: int, keys: Iterable[str] | None = None) -> dict[str, int]:
    """record key -> the unfinished batch that holds it, for the connection's held records (all
    of them, or those of `keys`)."""
    held = BatchTarget.objects.filter(connection_id=connection_id, released_at__isnull=True)
    if keys is not None:
        held = held.filter(record_key__in=list(keys))
    return dict(held.values_list("record_key", "batch_id"))


def take(batch, keys: Iterable[str]) -> set[str]:
    """Take the records of `keys` for `batch`; returns the keys it now holds (those another
    batch holds are not among them). Call inside the transaction that creates the batch's steps."""
    wanted = sorted(set(keys))
    BatchTarget.objects.bulk_create(
        [BatchTarget(batch=batch, connection_id=batch.connection_id, record_key=k) for k in wanted],
        ignore_conflicts=True,
        batch_size=1000,
    )
    return set(
        BatchTarget.objects.filter(
            batch=batch, record_key__in=wanted, released_at__isnull=True
        ).values_list("record_key", flat=True)
    )


def give_back(batch_id: int, keys: Iterable[str]) -> None:
    """Release records the batch took but will not write after all."""
    BatchTarget.objects.filter(
        batch_id=batch_id, record_key__in=list(keys), released_at__isnull=True
    ).update(released_at=timezone.now())


def release_finished(batch_id: int, keys: Iterable[str] | None = None) -> int:
    """Give back each record (of `keys`, or all) on which the batch has no step left pending or
    running. One statement; run it in the transaction that finishes the steps."""
    held = BatchTarget.objects.filter(batch_id=batch_id, released_at__isnull=True)
    if keys is not None:
        held = held.filter(record_key__in=list(keys))
    unfinished = UnlinkStep.objects.filter(
        batch_id=batch_id, target_key=OuterRef("record_key"), state__in=UNFINISHED_STATES
    )
    return held.exclude(Exists(unfinished)).update(released_at=timezone.now())
