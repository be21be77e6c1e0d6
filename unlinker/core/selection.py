"""What a bulk action acts on, for every list: the rows a user ticked, or everything matching the
list's filter ("select all N matching").

A Selection is plain data (`to_dict`/`from_dict` are JSON-safe) so that a batch can store it and
a worker resolve it later, without the request. Resolving always starts from the connection's own
rows of the list (its Source), so ids or filters crafted to reach another connection's records
select nothing; access to the connection itself is checked once, where the selection is made from
a request. Each list registers its Source once, in its app's ready().
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import NamedTuple

from django.db.models import QuerySet
from django.http import QueryDict

MAX_ID = 2**63 - 1  # a bigint primary key


class Source(NamedTuple):
    """A list's rows of a connection (given the connection or its id), and its FilterSet: the
    page and the selection made on it cannot disagree about which rows a filter matches."""

    rows: Callable[[object], QuerySet]
    filterset_class: type


SOURCES: dict[str, Source] = {}


def register(kind: str, rows: Callable[[object], QuerySet], filterset_class: type) -> None:
    SOURCES[kind] = Source(rows, filterset_class)


def posted_ids(values: list[str]) -> list[int]:
    """Posted ids as integers, in order, once each. Anything that cannot be a row id is dropped
    rather than refused: it selects nothing either way. (int() refuses numbers of more than
    4,300 digits with a ValueError, which is caught like any other.)"""
    ids = {}
    for value in values:
        try:
            pk = int(value)
        except ValueError:
            continue
        if 0 < pk <= MAX_ID:
            ids[pk] = None
    return list(ids)


def filter_query(params: QueryDict, filterset_class: type) -> str:
    """Only the filter's own parameters: paging and sorting do not change what is selected."""
    kept = QueryDict(mutable=True)
    for name in filterset_class.base_filters:
        if values := [value for value in params.getlist(name) if value]:
            kept.setlist(name, values)
    return kept.urlencode()


@dataclass(frozen=True)
class Selection:
    """Either `ids` (the ticked rows) or `filter_query` (the list's filter, as a query string:
    "select all N matching"), never both."""

    connection_id: int
    kind: str
    ids: list[int] | None = None
    filter_query: str | None = None

    def __post_init__(self):
        if self.kind not in SOURCES:
            raise ValueError(f"Unknown kind of list: {self.kind!r}")
        if (self.ids is None) == (self.filter_query is None):
            raise ValueError("A selection is either a list of ids or a filter")

    @classmethod
    def from_request(cls, request, connection, kind: str) -> "Selection":
        """The selection posted by a list's bulk form: the checked `pk`s, or with `_all=1` the
        filter in the URL's query string. `connection` must come from `connection_for`."""
        if request.POST.get("_all") == "1":
            query = filter_query(request.GET, SOURCES[kind].filterset_class)
            return cls(connection.pk, kind, filter_query=query)
        return cls(connection.pk, kind, ids=posted_ids(request.POST.getlist("pk")))

    @property
    def source(self) -> Source:
        return SOURCES[self.kind]

    def queryset(self) -> QuerySet:
        rows = self.source.rows(self.connection_id)
        if self.ids is not None:
            return rows.filter(pk__in=self.ids)
        return self.source.filterset_class(QueryDict(self.filter_query), queryset=rows).qs

    def count(self) -> int:
        return self.queryset().count()

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
