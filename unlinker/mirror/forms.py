from django import forms


class LinkedFilterForm(forms.Form):
    """The filter form of both Linked Xero lists (see filters.py). A range whose ends cross is
    an error, not an empty list: the user most likely swapped the two values."""

    field_order = [
        "q",
        "date_from",
        "date_to",
        "invoice",
        "matter",
        "contact",
        "amount_min",
        "amount_max",
        "link_status",
        "xero_status",
        "has_payments",
    ]
    ranges = [("date_from", "date_to"), ("amount_min", "amount_max")]

    def clean(self):
        cleaned = super().clean()
        for low, high in self.ranges:
            start, end = cleaned.get(low), cleaned.get(high)
            if start is not None and end is not None and start > end:
                self.add_error(high, f"Must not be less than “{self.fields[low].label}”.")
        return cleaned
