from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    name = "unlinker.reconciliation"
    label = "reconciliation"
    verbose_name = "Reconciliation"
