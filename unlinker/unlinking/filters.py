import django_filters as filters

from unlinker.core.listviews import ListFilterSet

from .models import StepState, UnlinkStep


class StepFilterSet(ListFilterSet):
    state = filters.ChoiceFilter(choices=StepState.choices, empty_label="Any")

    class Meta:
        model = UnlinkStep
        fields = ["state"]
