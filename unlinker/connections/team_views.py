"""A connection's page for admins: its team (who may see its records, with which role) and its
time zone. Views check access, call a service, and render."""

from django.contrib import messages
from django.db import transaction
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from unlinker.accounts import services as accounts
from unlinker.accounts.roles import ROLES, role_of

from . import selectors, services
from .forms import AddMemberForm, NewPersonForm, RoleForm, TimezoneForm
from .selectors import connection_for
from .views import admin_only

# A temporary password is shown once, on the page the admin lands on after creating the login;
# kept in the (server-side) session until then, never in a message cookie or a URL.
SHOW_ONCE = "connections.temporary_password"


@admin_only
@require_GET
def team(request, pk):
    return _team_page(request, connection_for(request.user, pk))


@admin_only
@require_POST
def add_member(request, pk):
    connection = connection_for(request.user, pk)
    form = AddMemberForm(request.POST, connection=connection)
    if not form.is_valid():
        return _team_page(request, connection, existing=form)
    person, role = form.cleaned_data["user"], form.cleaned_data["role"]
    try:
        with transaction.atomic():
            if role:
                accounts.set_role(user=person, role=role, by=request.user)
            services.add_member(connection=connection, user=person)
    except accounts.CannotChangePerson as exc:
        form.add_error("role", str(exc))
        return _team_page(request, connection, existing=form)
    messages.success(
        request, f"{_name(person)} is in the team of {connection}, as {role_or(person)}."
    )
    return redirect("connections:team", pk=connection.pk)


@admin_only
@require_POST
def new_person(request, pk):
    connection = connection_for(request.user, pk)
    form = NewPersonForm(request.POST)
    if not form.is_valid():
        return _team_page(request, connection, new=form)
    data = form.cleaned_data
    temporary = data["password"] == NewPersonForm.TEMPORARY
    try:
        with transaction.atomic():
            created = accounts.create_person(
                username=data["username"],
                role=data["role"],
                email=data["email"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                temporary_password=temporary,
                by=request.user,
            )
            services.add_member(connection=connection, user=created.user)
    except accounts.CannotChangePerson as exc:
        form.add_error(None, str(exc))
        return _team_page(request, connection, new=form)
    person = created.user
    if temporary:
        request.session[SHOW_ONCE] = {"user": person.pk, "password": created.temporary_password}
        messages.success(request, f"{_name(person)} can log in as {person.username}.")
        return redirect("connections:team", pk=connection.pk)
    try:
        accounts.send_set_password_link(person, request=request, by=request.user)
    except accounts.CannotChangePerson as exc:
        messages.error(request, f"{_name(person)} is in the team, but {exc}")
    else:
        messages.success(
            request,
            f"{_name(person)} is in the team. A link to choose a password went to "
            f"{person.email}; they log in as {person.username}.",
        )
    return redirect("connections:team", pk=connection.pk)


@admin_only
@require_POST
def change_role(request, pk):
    connection = connection_for(request.user, pk)
    person = selectors.member_of(connection, request.POST.get("user"))
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Choose one of the roles: {', '.join(ROLES)}.")
        return redirect("connections:team", pk=connection.pk)
    try:
        accounts.set_role(user=person, role=form.cleaned_data["role"], by=request.user)
    except accounts.CannotChangePerson as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{_name(person)} is now {form.cleaned_data['role']}.")
    return redirect("connections:team", pk=connection.pk)


@admin_only
@require_http_methods(["GET", "POST"])
def remove_member(request, pk):
    """GET (?user=N) asks for confirmation; POST (user=N) removes."""
    connection = connection_for(request.user, pk)
    person = selectors.member_of(connection, (request.POST or request.GET).get("user"))
    if request.method == "POST":
        services.remove_member(connection=connection, user=person)
        messages.success(request, f"{_name(person)} is no longer in the team of {connection}.")
        return redirect("connections:team", pk=connection.pk)
    context = {
        "title": f"Remove {_name(person)}",
        "connection": connection,
        "person": person,
        "role": role_or(person),
        "elsewhere": selectors.connections_for(person).exclude(pk=connection.pk).count(),
    }
    return render(request, "connections/remove_member.html", context)


@admin_only
@require_POST
def send_link(request, pk):
    connection = connection_for(request.user, pk)
    person = selectors.member_of(connection, request.POST.get("user"))
    try:
        accounts.send_set_password_link(person, request=request, by=request.user)
    except accounts.CannotChangePerson as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"A link to choose a password went to {person.email}.")
    return redirect("connections:team", pk=connection.pk)


@admin_only
@require_POST
def set_timezone(request, pk):
    connection = connection_for(request.user, pk)
    form = TimezoneForm(request.POST, connection=connection)
    if not form.is_valid():
        return _team_page(request, connection, zone=form)
    services.set_timezone(connection=connection, zone=form.cleaned_data["timezone"])
    messages.success(request, f"{connection} now shows times in {connection.timezone}.")
    return redirect("connections:team", pk=connection.pk)


def _team_page(request, connection, *, existing=None, new=None, zone=None):
    shown = request.session.pop(SHOW_ONCE, None)
    members = selectors.team_of(connection)
    context = {
        "title": f"Team of {connection}",
        "connection": connection,
        "members": members,
        "admins_beside": selectors.admins_beside(connection),
        "existing_form": existing or AddMemberForm(connection=connection),
        "new_form": new or NewPersonForm(),
        "zone_form": zone or TimezoneForm(connection=connection),
        "roles": ROLES,
        "temporary": _shown_once(shown, members),
    }
    invalid = any(form is not None for form in (existing, new, zone))
    return render(request, "connections/team.html", context, status=400 if invalid else 200)


def _shown_once(shown, members):
    if not shown:
        return None
    person = next((m for m in members if m.pk == shown["user"]), None)
    return {"person": person, "password": shown["password"]} if person else None


def _name(user) -> str:
    return user.get_full_name() or user.get_username()


def role_or(user) -> str:
    return "superuser" if user.is_superuser else role_of(user) or "no role"
