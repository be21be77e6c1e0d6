from django.apps import AppConfig


class MirrorConfig(AppConfig):
    name = "unlinker.mirror"
    label = "mirror"
    verbose_name = "Linked records"

    def ready(self):
        from unlinker.core import selection

        from .filters import LinkedInvoiceFilterSet, LinkedPaymentFilterSet
        from .selectors import linked_invoices, linked_payments

        # The two lists, and what "Unlink from Xero" acts on (core.selection).
        selection.register("invoices", linked_invoices, LinkedInvoiceFilterSet)
        selection.register("payments", linked_payments, LinkedPaymentFilterSet)
