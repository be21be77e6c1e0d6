from django import forms

from unlinker.accounts.roles import CLEANUP_XERO

from .planning import InvoiceAfter, PaymentRemoval, PlanOptions


class PlanForm(forms.Form):
    """A plan's options and its confirmation. The selection travels beside them, in the fields
    `Selection.from_request` reads. The first post (from a list) carries no option: the
    defaults then apply."""

    remove_payments = forms.TypedChoiceField(
        choices=PaymentRemoval.choices, required=False, empty_value=PaymentRemoval.NONE
    )
    after = forms.TypedChoiceField(
        choices=InvoiceAfter.choices, required=False, empty_value=InvoiceAfter.NONE
    )
    xero_cleanup = forms.BooleanField(required=False)
    # Refinements of the clean-up in Xero: they count only with it (see options()).
    remove_allocations = forms.BooleanField(required=False)
    free_numbers = forms.BooleanField(required=False)
    # what the user was shown (Plan.digest); queueing refuses a plan that changed since
    plan_digest = forms.CharField(required=False, max_length=64)
    confirm = forms.BooleanField(required=False)

    def __init__(self, data, *, user):
        super().__init__(data)
        self.user = user

    def _admin_only(self, name: str) -> bool:
        chosen = self.cleaned_data[name]
        if chosen and not self.user.has_perm(CLEANUP_XERO):
            raise forms.ValidationError("Deleting and voiding in Xero needs the admin role.")
        return chosen

    def clean_xero_cleanup(self):
        return self._admin_only("xero_cleanup")

    def clean_remove_allocations(self):
        return self._admin_only("remove_allocations")

    def clean_free_numbers(self):
        return self._admin_only("free_numbers")

    def options(self) -> PlanOptions:
        data = self.cleaned_data
        cleanup = data["xero_cleanup"]
        return PlanOptions(
            remove_payments=data["remove_payments"],
            after=data["after"],
            xero_cleanup=cleanup,
            # ticked, then the clean-up unticked: they wait, unused, until it is ticked again
            remove_allocations=cleanup and data["remove_allocations"],
            free_numbers=cleanup and data["free_numbers"],
        )
