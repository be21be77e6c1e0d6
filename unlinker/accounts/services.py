"""State changes of people: creating a login, giving a role, and the two ways a new person gets
a password (a temporary one an admin passes on, or an emailed link to set their own)."""

import secrets
import smtplib
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.models import Group
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template import loader

from .models import TemporaryPassword
from .roles import ROLES

# A temporary password is read out or typed by a person: no look-alike characters.
TEMPORARY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


class CannotChangePerson(Exception):
    """A change to a person that cannot be made, with a message for the admin."""


@dataclass(frozen=True)
class NewPerson:
    user: object
    temporary_password: str | None  # shown once, to whoever created the login


def set_role(*, user, role: str, by=None) -> None:
    """Give the user exactly one role. A role is the person's, not a connection's: it applies to
    every connection they belong to. `by` (the admin doing it) may not change their own role,
    so that nobody removes their own admin rights by a slip (and an admin always remains)."""
    if role not in ROLES:
        raise CannotChangePerson(f"{role!r} is not a role: choose one of {', '.join(ROLES)}.")
    if by is not None and user.pk == by.pk:
        raise CannotChangePerson("You cannot change your own role: ask another admin.")
    if user.is_superuser:
        raise CannotChangePerson(
            f"{user.get_username()} is a superuser, who may do everything whatever the role: "
            "superusers are managed in the Django admin."
        )
    with transaction.atomic():
        user.groups.remove(*Group.objects.filter(name__in=ROLES).exclude(name=role))
        user.groups.add(Group.objects.get(name=role))


def create_person(
    *,
    username: str,
    role: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    temporary_password: bool = False,
    by=None,
) -> NewPerson:
    """A new login with a role. With `temporary_password` it gets one (returned, to be passed
    on; it must be changed at the first login); otherwise it has no usable password until its
    holder follows a set-password link (send_set_password_link)."""
    if role not in ROLES:
        raise CannotChangePerson(f"{role!r} is not a role: choose one of {', '.join(ROLES)}.")
    if not temporary_password and not email:
        raise CannotChangePerson(
            "A set-password link is sent by email: give an email address, or a temporary "
            "password instead."
        )
    User = get_user_model()
    try:
        with transaction.atomic():
            user = User(username=username, email=email, first_name=first_name, last_name=last_name)
            user.set_unusable_password()
            user.save()
            user.groups.add(Group.objects.get(name=role))
            password = issue_temporary_password(user, by=by) if temporary_password else None
    except IntegrityError:
        raise CannotChangePerson(f"The username {username} is taken.") from None
    return NewPerson(user, password)


def issue_temporary_password(user, *, by=None) -> str:
    """Give the user a new random password, to be changed at their next login; returned once."""
    password = "-".join(
        "".join(secrets.choice(TEMPORARY_ALPHABET) for _ in range(4)) for _ in range(4)
    )
    user.set_password(password)
    user.save(update_fields=["password"])
    TemporaryPassword.objects.update_or_create(user=user, defaults={"issued_by": by})
    return password


def password_chosen(user) -> None:
    """The user set a password of their own: the temporary one, if any, is done with."""
    TemporaryPassword.objects.filter(user=user).delete()


class _SetPasswordLink(PasswordResetForm):
    """Django's password-reset email (its token generator, its templates' context) sent to one
    given person, who may have no usable password yet: Django's own form skips those."""

    def __init__(self, user):
        super().__init__({"email": user.email})
        self.user = user

    def get_users(self, email):
        return [self.user] if self.user.is_active else []

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        # Django's own logs a failure and carries on (a reset form must not tell a stranger
        # whether an address is known); the admin sending this link must hear of it.
        subject = "".join(loader.render_to_string(subject_template_name, context).splitlines())
        body = loader.render_to_string(email_template_name, context)
        EmailMultiAlternatives(subject, body, from_email, [to_email]).send()


def send_set_password_link(user, *, request=None, by=None) -> None:
    """Email the user a link to choose their password (valid PASSWORD_RESET_TIMEOUT seconds,
    and only until a password is set). The link's address is PUBLIC_URL's when set, otherwise
    the one the request came to; the command line needs PUBLIC_URL."""
    if not user.email:
        raise CannotChangePerson(f"{user.get_username()} has no email address to send a link to.")
    public = urlsplit(settings.PUBLIC_URL) if settings.PUBLIC_URL else None
    if public is None and request is None:
        raise CannotChangePerson("Set PUBLIC_URL (the address people open Unlinker at) first.")
    form = _SetPasswordLink(user)
    if not form.is_valid():
        raise CannotChangePerson(f"{user.email} is not an email address.")
    sender = (by.get_full_name() or by.get_username()) if by is not None else ""
    try:
        form.save(
            domain_override=public.netloc if public else None,
            use_https=public.scheme == "https" if public else request.is_secure(),
            request=request,
            subject_template_name="registration/set_password_subject.txt",
            email_template_name="registration/set_password_email.txt",
            extra_email_context={
                "invited_by": sender,
                "product": "Unlinker",
                "valid_for": _duration(settings.PASSWORD_RESET_TIMEOUT),
            },
        )
    except (smtplib.SMTPException, OSError) as exc:
        raise CannotChangePerson(
            f"The email to {user.email} could not be sent ({type(exc).__name__}): send the link "
            "again once the mail server answers, or give a temporary password."
        ) from exc


def _duration(seconds: int) -> str:
    days, hours = seconds // 86400, max(1, seconds // 3600)
    return f"{days} day{'s' if days != 1 else ''}" if days else f"{hours} hour{'s' * (hours != 1)}"
