from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse

MUST_CHANGE = "accounts.must_change_password"


def note_temporary_password(sender, request, user, **kwargs):
    """user_logged_in: remember in the session whether the password used was a temporary one,
    so that the middleware needs no query on every request."""
    from .models import TemporaryPassword

    if TemporaryPassword.objects.filter(user=user).exists():
        request.session[MUST_CHANGE] = True


class TemporaryPasswordMiddleware:
    """Whoever logged in with a temporary password chooses their own before anything else."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.session.get(MUST_CHANGE) and request.user.is_authenticated:
            allowed = {reverse("password_change"), reverse("logout")}
            if request.path not in allowed and not request.path.startswith("/static/"):
                messages.info(request, "Choose a password of your own to go on.")
                return redirect("password_change")
        return self.get_response(request)
