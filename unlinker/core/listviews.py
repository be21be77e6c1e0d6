"""List pages declared the NetBox way, kept small: a queryset, a FilterSet, a django-tables2
Table, a template, the bulk actions that the user's permissions allow and the CSV's columns.

Every list belongs to one connection the user may see, and shows its times in that
connection's timezone. An htmx request (not a boosted navigation, not a history restore) gets
only the template's `table` partial, plus out-of-band fragments for what lives outside it (the
filter form, the result count, the bulk actions), so that filtering, sorting and paging swap
the results while the pushed URL stays shareable, and the form always shows the filter the
table applies. `?_export=csv` streams the whole filtered, sorted list as CSV.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import django_filters
from django.conf import settings
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.db.models import QuerySet
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views import View
from django_tables2 import Table

from unlinker.accounts.roles import BROWSE
from unlinker.connections.selectors import connection_for, connections_for

from . import display
from .csvexport import csv_response

EXPORT_CHUNK = 2000


@dataclass(frozen=True)
class BulkAction:
    """A button above the table. It posts the checked `pk`s (or `_all=1`) to `url_name`,
    reversed with the connection's id, with the list's query string, so that the action can
    re-apply the same filter. Shown only to holders of `permission`."""

    label: str
    url_name: str
    permission: str
    style: str = ""

    def url(self, connection, query: str) -> str:
        url = reverse(self.url_name, kwargs={"connection_id": connection.pk})
        return f"{url}?{query}" if query else url


@dataclass(frozen=True)
class ExportColumn:
    """A column of the list's CSV: its header, and the row's attribute or a function of the
    row (and of the connection, for `with_connection`). Values are written by csvexport."""

    header: str
    value: str | Callable[..., Any]
    with_connection: bool = False

    def of(self, row, connection):
        if isinstance(self.value, str):
            return getattr(row, self.value)
        return self.value(row, connection) if self.with_connection else self.value(row)


class ListFilterSet(django_filters.FilterSet):
    """A FilterSet whose invalid input matches nothing. django-filter would drop the invalid
    fields and apply the others: the list would silently be wider than the user believes, and
    "select all matching" would act on rows nobody meant to select. Fields in error are marked
    invalid and point at their message (see _filter_form.html)."""

    def filter_queryset(self, queryset):
        if self.errors:
            return queryset.none()
        return super().filter_queryset(queryset)

    @property
    def form(self):
        form = super().form
        if not getattr(form, "_described", False):
            form._described = True
            errors = form.errors if form.is_bound else {}
            for name, field in form.fields.items():
                described_by = []
                if field.help_text:
                    described_by.append(f"{form[name].auto_id}_help")
                if name in errors:
                    field.widget.attrs["aria-invalid"] = "true"
                    described_by.append(f"{form[name].auto_id}_error")
                if described_by:
                    field.widget.attrs["aria-describedby"] = " ".join(described_by)
        return form

    @property
    def is_filtering(self) -> bool:
        return any(self.data.get(name) for name in self.filters)

    def filter_query(self) -> str:
        """Only the filter's own parameters, as a query string: paging, sorting and page size
        do not change which rows match."""
        kept = self.data.copy()
        for name in list(kept):
            if name not in self.filters or not any(kept.getlist(name)):
                del kept[name]
        return kept.urlencode()


def paginate(request, table, per_page: int) -> None:
    """The table's page that `?page=` asks for (see page_number)."""
    table.paginate(per_page=per_page)
    table.page = table.paginator.page(
        page_number(request.GET.get(table.page_field), table.paginator.num_pages)
    )


def page_number(raw: str | None, num_pages: int) -> int:
    """The page a `?page=` asks for, within the pages there are: a number past the end shows
    the last page (a link to a list that has since shrunk), anything else that is not a page
    (0, -1, "abc", 4,301 digits) the first."""
    try:
        number = int(raw or "1")
    except ValueError:
        return 1
    if number < 1:
        return 1
    return min(number, max(num_pages, 1))


class ObjectListView(PermissionRequiredMixin, View):
    """Subclasses declare the attributes below and implement `get_queryset`. The table's
    checkbox column must be named `pk`; it is hidden from users who may take no action. The
    table gets the connection as `table.connection` (for links to where records live). The
    template must define `{% partialdef table %}` (see templates/core/list/)."""

    title = ""
    template_name: str
    table_class: type[Table]
    filterset_class: type[ListFilterSet]
    actions: Sequence[BulkAction] = ()
    permission_required = BROWSE
    raise_exception = True  # anonymous users never get here: LoginRequiredMiddleware
    page_sizes: Sequence[int] = (25, 50, 100, 200)
    default_page_size = 50
    # What the count counts: "1 invoice", "12 invoices".
    nouns: tuple[str, str] = ("row", "rows")
    export_name = "export"
    export_columns: Sequence[ExportColumn] = ()

    # Most lists belong to one connection (its id in the URL); a list across every connection
    # the user may see (the task history) sets this False and gets connection None.
    per_connection = True

    def get_queryset(self, request, connection) -> QuerySet:
        raise NotImplementedError

    def get(self, request, connection_id=None):
        connection = None
        if self.per_connection:
            # A disconnected connection's lists stay readable, with nothing to act on.
            connection = connection_for(request.user, connection_id, archived=True)
        filterset = self.filterset_class(
            request.GET, queryset=self.get_queryset(request, connection), request=request
        )
        actions = [
            a
            for a in self.actions
            if request.user.has_perm(a.permission)
            and connection is not None
            and not connection.disconnected_at
        ]
        table = self.sorted_table(request, filterset.qs, checkboxes=bool(actions))
        table.connection = connection
        if request.GET.get("_export") == "csv":
            return self.export(table, connection)

        per_page = self.page_size(request)
        paginate(request, table, per_page)

        query = request.GET.urlencode()
        partial = bool(
            request.htmx and not request.htmx.boosted and not request.htmx.history_restore_request
        )
        count = table.paginator.count
        singular, plural = self.nouns
        context = {
            "view": self,
            "title": self.title,
            "connection": connection,
            "connections": connections_for(request.user),
            "filterset": filterset,
            "table": table,
            "count": count,
            "count_text": display.plural(count, singular, plural),
            "nouns": self.nouns,
            "filter_query": filterset.filter_query(),
            # The most rows a selection carried across pages may post (one field each).
            "selection_max": max(1, settings.DATA_UPLOAD_MAX_NUMBER_FIELDS - 50),
            "actions": [(action, action.url(connection, query)) for action in actions],
            "page_sizes": self.page_sizes,
            "per_page": per_page,
            "partial": partial,
            # the filter form's own submission gets the form back (see _filter_form.html)
            "form_submitted": partial and request.htmx.trigger == "list-filter",
            # only the sort asked for: the table's default order needs no field
            "sort_aliases": table.order_by if request.GET.get(table.order_by_field) else (),
        }
        template = f"{self.template_name}#table" if partial else self.template_name
        with timezone.override(display.zone_of(connection)):
            response = render(request, template, context)
        # The same URL answers a fragment or a page: a browser cache must keep them apart, or
        # the back button could show a bare fragment.
        patch_vary_headers(response, ("HX-Request",))
        return response

    def export(self, table: Table, connection):
        """The whole filtered, sorted list, streamed: a server-side cursor reads it a chunk at
        a time, and each row is written as it is read."""
        rows = table.data.data  # the queryset, in the table's order
        columns = self.export_columns
        lines = (
            [column.of(row, connection) for column in columns]
            for row in rows.iterator(chunk_size=EXPORT_CHUNK)
        )
        return csv_response(
            [column.header for column in columns],
            lines,
            f"{self.export_name}.csv",
            zone=display.zone_of(connection),
        )

    def sorted_table(self, request, rows: QuerySet, checkboxes: bool) -> Table:
        # Checkboxes without an action to take would only invite a click that does nothing.
        table = self.table_class(rows, exclude=() if checkboxes else ("pk",))
        # Only this table's column names reach django-tables2, which would parse anything else
        # as an attribute path; it ignores the columns that are not sortable.
        sort = request.GET.getlist(table.order_by_field)
        if sort := [alias for alias in sort if alias.removeprefix("-") in table.columns]:
            table.order_by = sort
        return table

    def page_size(self, request) -> int:
        try:
            size = int(request.GET.get("per_page", ""))
        except ValueError:
            return self.default_page_size
        return size if size in self.page_sizes else self.default_page_size
