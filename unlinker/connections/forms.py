from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator

from unlinker.accounts.roles import ROLES, role_of
from unlinker.core.zones import zone_choices, zone_names

ROLE_CHOICES = [(role, role.capitalize()) for role in ROLES]


class ZoneField(forms.ChoiceField):
    """A select of the IANA zones, grouped by region; any zone this machine knows is valid
    (the one Xero gave may be missing from the offered list, which then shows it too)."""

    def __init__(self, *, current: str = "", **kwargs):
        kwargs.setdefault("label", "Time zone")
        super().__init__(choices=zone_choices(current), **kwargs)

    def valid_value(self, value):
        return value in zone_names()


class ConnectForm(forms.Form):
    """Connect an Actionstep org (in the zone chosen here, until Xero gives its own), or
    reconnect the connection named."""

    timezone = ZoneField(
        required=False,
        help_text="The firm's time zone, until its Xero organisation gives its own.",
    )
    connection = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=1)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["timezone"].initial = settings.TIME_ZONE

    def clean_timezone(self):
        return self.cleaned_data["timezone"] or settings.TIME_ZONE


class TimezoneForm(forms.Form):
    def __init__(self, *args, connection, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["timezone"] = ZoneField(
            current=connection.timezone,
            initial=connection.timezone,
            help_text="The zone in which this firm's people read every time.",
        )


class AddMemberForm(forms.Form):
    """Someone who already has a login, into this connection."""

    prefix = "existing"
    user = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(), label="Person", empty_label="Choose a person"
    )
    role = forms.ChoiceField(
        choices=[("", "Keep their role"), *ROLE_CHOICES], required=False, label="Role"
    )

    def __init__(self, *args, connection, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = (
            get_user_model()
            .objects.filter(is_active=True)
            .exclude(pk__in=connection.members.values("pk"))
            .prefetch_related("groups")
            .order_by("username")
        )
        self.fields["user"].label_from_instance = _person_label

    def clean(self):
        cleaned = super().clean()
        user = cleaned.get("user")
        if user and not cleaned.get("role") and not user.is_superuser and not role_of(user):
            self.add_error("role", f"{user.get_username()} has no role yet: choose one.")
        return cleaned


class NewPersonForm(forms.Form):
    """A new login, with a role, and the way its holder gets a password."""

    prefix = "new"
    LINK, TEMPORARY = "link", "temporary"
    username = forms.CharField(
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text="What they log in with: letters, digits and @ . + - _ only.",
    )
    first_name = forms.CharField(max_length=150, required=False, label="First name")
    last_name = forms.CharField(max_length=150, required=False, label="Last name")
    email = forms.EmailField(required=False, label="Email")
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial="viewer", label="Role")
    password = forms.ChoiceField(
        label="Their password",
        widget=forms.RadioSelect,
        initial=LINK,
        choices=[
            (LINK, "Email them a link to choose their own"),
            (TEMPORARY, "Give them a temporary password, shown once, to pass on"),
        ],
    )

    def clean_username(self):
        username = self.cleaned_data["username"]
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError(
                f"{username} has a login already: add them with the form beside this one."
            )
        return username

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password") == self.LINK and not cleaned.get("email"):
            self.add_error("email", "The link is sent by email: give their address.")
        return cleaned


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES)


def _person_label(user) -> str:
    name = user.get_full_name()
    role = "superuser" if user.is_superuser else role_of(user) or "no role"
    return f"{name} ({user.get_username()}), {role}" if name else f"{user.get_username()}, {role}"
