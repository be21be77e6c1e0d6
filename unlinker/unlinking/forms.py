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
    # what the user was shown (Plan.digest); queueing refuses a plan that changed since
    plan_digest = forms.CharField(required=False, max_length=64)
    confirm = forms.BooleanField(required=False)

    def __init__(self, data, *, user):
        super().__init__(data)
        self.user = user

    def clean_xero_cleanup(self):
        chosen = self.cleaned_data["xero_cleanup"]
        if chosen and not self.user.has_perm(CLEANUP_XERO):
            raise forms.ValidationError("Deleting and voiding in Xero needs the admin role.")
        return chosen

    def options(self) -> PlanOptions:
        data = self.cleaned_data
        return PlanOptions(
            remove_payments=data["remove_payments"],
            after=data["after"],
            xero_cleanup=data["xero_cleanup"],
        )
