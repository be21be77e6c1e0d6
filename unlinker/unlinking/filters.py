import django_filters as filters

from unlinker.core.listviews import ListFilterSet

from .models import StepState, UnlinkStep

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
