"""The password pages: changing one's password, and setting it from an emailed link. Django's
own views, which also end a temporary password."""

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import reverse_lazy
from django.utils.decorators import method_decorator

from . import services
from .middleware import MUST_CHANGE


class PasswordChangeView(auth_views.PasswordChangeView):
    success_url = reverse_lazy("home")
    http_method_names = ["get", "post"]  # Django's FormView would take PUT as POST

    def form_valid(self, form):
        response = super().form_valid(form)
        services.password_chosen(form.user)
        self.request.session.pop(MUST_CHANGE, None)
        messages.success(self.request, "Your password is changed.")
        return response


@method_decorator(login_not_required, name="dispatch")  # the link's holder is not logged in
class SetPasswordView(auth_views.PasswordResetConfirmView):
    """The emailed link: choose a password, then log in with it."""

    template_name = "registration/set_password.html"
    success_url = reverse_lazy("set_password_done")
    post_reset_login = False
    http_method_names = ["get", "post"]

    def dispatch(self, *args, **kwargs):
        # Django's view answers any method with the "link no good" page before it looks
        if self.request.method.lower() not in self.http_method_names:
            return self.http_method_not_allowed(self.request, *args, **kwargs)
        return super().dispatch(*args, **kwargs)

    def form_valid(self, form):
        response = super().form_valid(form)
        services.password_chosen(form.user)
        return response


class SetPasswordDoneView(auth_views.PasswordResetCompleteView):
    template_name = "registration/set_password_done.html"
