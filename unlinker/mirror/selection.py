"""What a bulk action acts on: the rows a user ticked, or everything matching a filter.

A Selection is plain data (`to_dict`/`from_dict` are JSON-safe) so that the unlink engine can
store it on its batch and resolve it later in a worker, without the request. Resolving always
starts from the connection's own rows, so ids or filters crafted to reach another connection's
records select nothing; access to the connection itself is checked once, where the selection is
made from a request.
"""

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Literal, NamedTuple

from django.db.models import QuerySet
from django.http import QueryDict

from unlinker.connections.models import Connection

from .filters import (
    MAX_BIGINT,
    LinkedInvoiceFilterSet,
    LinkedPaymentFilterSet,
    LinkedRecordFilterSet,
)
from .selectors import linked_invoices, linked_payments

Kind = Literal["invoices", "payments"]


class Source(NamedTuple):
    rows: Callable[[Connection | int], QuerySet]
    filterset_class: type[LinkedRecordFilterSet]


# The list pages read the same sources (views.LinkedRecordList): a page and the selection made
# on it cannot disagree about which rows a filter matches.
KINDS: dict[str, Source] = {
    "invoices": Source(linked_invoices, LinkedInvoiceFilterSet),
    "payments": Source(linked_payments, LinkedPaymentFilterSet),
}


@dataclass(frozen=True)
class Selection:
    """Either `ids` (the ticked rows) or `filter_query` (the list's filter, as a query string:
    "select all N matching"), never both."""

    connection_id: int
    kind: Kind
    ids: list[int] | None = None
    filter_query: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Unknown kind of linked record: {self.kind!r}")
        if (self.ids is None) == (self.filter_query is None):
            raise ValueError("A selection is either a list of ids or a filter")

    @classmethod
    def from_request(cls, request, connection: Connection, kind: Kind) -> "Selection":
        """The selection posted by a list's bulk form: the checked `pk`s, or with `_all=1` the
        filter in the URL's query string. `connection` must come from `connection_for`."""
        if request.POST.get("_all") == "1":
            return cls(connection.pk, kind, filter_query=_filter_query(request.GET, kind))
        return cls(connection.pk, kind, ids=_ids(request.POST.getlist("pk")))

    def queryset(self) -> QuerySet:
        source = KINDS[self.kind]
        rows = source.rows(self.connection_id)
        if self.ids is not None:
            return rows.filter(pk__in=self.ids)
        return source.filterset_class(QueryDict(self.filter_query), queryset=rows).qs

    def count(self) -> int:
        return self.queryset().count()

    def id_chunks(self, size: int = 1000) -> Iterator[list[int]]:
        """The selected ids in ascending order, `size` at a time, each chunk its own keyset
        query: "all matching" may be 100,000s of rows, which must never sit in memory at once."""
        ids = self.queryset().order_by("pk").values_list("pk", flat=True)
        last = 0
        while chunk := list(ids.filter(pk__gt=last)[:size]):
            yield chunk
            last = chunk[-1]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Selection":
        ids = data.get("ids")
        return cls(
            connection_id=int(data["connection_id"]),
            kind=data["kind"],
            ids=None if ids is None else [int(pk) for pk in ids],
            filter_query=data.get("filter_query"),
        )


def _ids(values: list[str]) -> list[int]:
    """Posted ids as integers, in order, once each. Anything that cannot be a row id is
    dropped rather than refused: it selects nothing either way."""
    ids = {}
    for value in values:
        try:
            pk = int(value)
        except ValueError:
            continue
        if 0 < pk <= MAX_BIGINT:
            ids[pk] = None
    return list(ids)


def _filter_query(params: QueryDict, kind: Kind) -> str:
    """Only the filter's own parameters: paging and sorting do not change what is selected."""
    kept = QueryDict(mutable=True)
    for name in KINDS[kind].filterset_class.base_filters:
        if values := [value for value in params.getlist(name) if value]:
            kept.setlist(name, values)
    return kept.urlencode()
