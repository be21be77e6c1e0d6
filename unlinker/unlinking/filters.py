import django_filters as filters
from django import forms
from django.contrib.auth import get_user_model

from unlinker.connections.models import Connection
from unlinker.connections.selectors import connections_for
from unlinker.core.listviews import ListFilterSet

from .models import StepState, UnlinkBatch, UnlinkStep

NOT_NEEDED = "not_needed"  # selectors.NOT_NEEDED: the steps the plan skipped
STATE_CHOICES = [*StepState.choices, (NOT_NEEDED, "Not needed")]


class StepFilterSet(ListFilterSet):
    state = filters.ChoiceFilter(
        choices=STATE_CHOICES, empty_label="Any", method="filter_state", label="State"
    )

    class Meta:
        model = UnlinkStep
        fields = ["state"]

    def filter_state(self, queryset, name, value):
        # "Skipped" is a problem of the run; what the plan skipped is "not needed".
        if value == NOT_NEEDED:
            return queryset.filter(state=StepState.SKIPPED, skipped_by_plan=True)
        if value == StepState.SKIPPED:
            return queryset.filter(state=StepState.SKIPPED, skipped_by_plan=False)
        return queryset.filter(state=value)


def _readable_connections(request):
    if request is None:
        return Connection.objects.none()
    return connections_for(request.user, archived=True)


def _people_who_queued(request):
    """The people who queued a batch the user may see: the Queued-by choices."""
    if request is None:
        return get_user_model().objects.none()
    connections = connections_for(request.user, archived=True)
    return (
        get_user_model()
        .objects.filter(
            pk__in=UnlinkBatch.objects.filter(connection__in=connections).values("created_by")
        )
        .order_by("username")
    )


def _day(lookup_expr: str, label: str) -> filters.DateFilter:
    return filters.DateFilter(
        field_name="created_at__date",
        lookup_expr=lookup_expr,
        label=label,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )


class BatchFilterSet(ListFilterSet):
    """Task history's filters: state, who queued it, when, which connection."""

    state = filters.ChoiceFilter(
        choices=[("unfinished", "Not finished yet"), *UnlinkBatch.State.choices],
        empty_label="Any",
        method="filter_state",
        label="State",
    )
    created_by = filters.ModelChoiceFilter(
        queryset=_people_who_queued, label="Queued by", empty_label="Anyone"
    )
    date_from = _day("gte", "Queued from")
    date_to = _day("lte", "Queued until")
    connection = filters.ModelChoiceFilter(
        queryset=_readable_connections, label="Connection", empty_label="Any"
    )

    class Meta:
        model = UnlinkBatch
        fields = ["state", "created_by", "date_from", "date_to", "connection"]

    def filter_state(self, queryset, name, value):
        if value == "unfinished":
            return queryset.exclude(state__in=UnlinkBatch.SETTLED_STATES)
        return queryset.filter(state=value)
