"""List pages declared the NetBox way, kept small: a queryset, a FilterSet, a django-tables2
Table, a template and the bulk actions that the user's permissions allow.

Every list belongs to one connection the user may see. An htmx request (not a boosted
navigation) gets only the template's `table` partial, plus out-of-band fragments for what lives
outside it (result count, bulk actions, sort state), so that filtering, sorting and paging swap
the results while the pushed URL stays shareable. `?_export=csv` answers the whole filtered,
sorted list as CSV.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import django_filters
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.db.models import QuerySet
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views import View
from django_tables2 import Table
from django_tables2.export import TableExport
from tablib import Dataset

from unlinker.accounts.roles import BROWSE
from unlinker.connections.selectors import connection_for, connections_for


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


class ListFilterSet(django_filters.FilterSet):
    """A FilterSet whose invalid input matches nothing. django-filter would drop the invalid
    fields and apply the others: the list would silently be wider than the user believes, and
    "select all matching" would act on rows nobody meant to select."""

    def filter_queryset(self, queryset):
        if self.errors:
            return queryset.none()
        return super().filter_queryset(queryset)

    @property
    def is_filtering(self) -> bool:
        return any(self.data.get(name) for name in self.filters)


class SpreadsheetSafeExport(TableExport):
    """Text cells that a spreadsheet would run as a formula get a leading quote: names come
    from another system, and `=HYPERLINK(...)` in a contact name must stay text (CSV injection)."""

    def table_to_dataset(self, table, exclude_columns, dataset_kwargs=None):
        values = table.as_values(exclude_columns=exclude_columns)
        dataset = Dataset(headers=next(values), **(dataset_kwargs or {}))
        for row in values:
            dataset.append([spreadsheet_safe(cell) for cell in row])
        return dataset


def spreadsheet_safe(cell):
    if isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + cell
    return cell


class ObjectListView(PermissionRequiredMixin, View):
    """Subclasses declare the attributes below and implement `get_queryset`. The table's
    checkbox column must be named `pk`; it is hidden from users who may take no action.
    The template must define `{% partialdef table %}` (see templates/core/list/)."""

    title = ""
    template_name: str
    table_class: type[Table]
    filterset_class: type[ListFilterSet]
    actions: Sequence[BulkAction] = ()
    permission_required = BROWSE
    raise_exception = True  # anonymous users never get here: LoginRequiredMiddleware
    page_sizes: Sequence[int] = (25, 50, 100, 200)
    default_page_size = 50
    export_name = "export"

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
        if request.GET.get("_export") == "csv":
            exporter = SpreadsheetSafeExport("csv", table, exclude_columns=("pk",))
            return exporter.response(filename=f"{self.export_name}.csv")

        per_page = self.page_size(request)
        table.paginate(per_page=per_page)
        # get_page turns a stale or hostile page number into the nearest real page.
        table.page = table.paginator.get_page(request.GET.get(table.page_field))

        query = request.GET.urlencode()
        partial = bool(
            request.htmx and not request.htmx.boosted and not request.htmx.history_restore_request
        )
        context = {
            "view": self,
            "title": self.title,
            "connection": connection,
            "connections": connections_for(request.user),
            "filterset": filterset,
            "table": table,
            "count": table.paginator.count,
            "actions": [(action, action.url(connection, query)) for action in actions],
            "page_sizes": self.page_sizes,
            "per_page": per_page,
            "partial": partial,
        }
        template = f"{self.template_name}#table" if partial else self.template_name
        response = render(request, template, context)
        # The same URL answers a fragment or a page: a browser cache must keep them apart, or
        # the back button could show a bare fragment.
        patch_vary_headers(response, ("HX-Request",))
        return response

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
