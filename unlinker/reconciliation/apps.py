from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    name = "unlinker.reconciliation"
    label = "reconciliation"
    verbose_name = "Reconciliation"

    def ready(self):
        from unlinker.core import selection

        from .filters import FindingFilterSet
        from .selectors import cleanable_findings

        # What "Clean up in Xero" acts on (core.selection); rows of a connection or its id.
        selection.register("findings", cleanable_findings, FindingFilterSet)
