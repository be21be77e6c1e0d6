"""Every URL of the project, read from the URL resolver, and what each one requires.

`routes()` walks the resolver, so a new page is found without anyone listing it here: the
anonymous and CSRF tests then cover it at once, and `test_every_route_is_declared` fails until
ENDPOINTS says which methods it answers, which permission it needs and which fields it reads (the
role matrix and the hostile-input tests run from that declaration).
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from unlinker.accounts import roles
from unlinker.accounts.roles import (
    BROWSE,
    CLEANUP_XERO,
    MANAGE_CONNECTIONS,
    QUEUE_UNLINK,
    REFRESH,
)
from unlinker.mirror.filters import LinkedInvoiceFilterSet, LinkedPaymentFilterSet
from unlinker.reconciliation.filters import FindingFilterSet
from unlinker.reconciliation.models import Finding

from .scene import ROLES, Scene

EXCLUDED_PREFIXES = ("admin/", "static/")
PUBLIC = "public"  # no login needed
# The only views without CSRF protection: what posts to them cannot hold a token.
CSRF_EXEMPT = {"webhooks:xero"}
SIGNED_IN = "signed in"  # any signed-in user, whatever their role


@dataclass(frozen=True)
class Route:
    name: str  # namespaced: "unlinking:plan"
    route: str  # the full pattern: "unlink/<int:connection_id>/plan/"

    def dummy_path(self) -> str:
        """The path with every parameter set to 1: enough where access is refused before the
        view runs."""
        return "/" + re.sub(r"<(?:\w+:)?\w+>", "1", self.route)


def routes() -> list[Route]:
    return sorted(_walk(get_resolver(), "", ""), key=lambda r: r.name)


def _walk(resolver: URLResolver, prefix: str, namespace: str) -> Iterator[Route]:
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if route.startswith(EXCLUDED_PREFIXES):
            continue
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _walk(entry, route, inner)
        elif isinstance(entry, URLPattern):
            assert entry.name, f"the route {route!r} has no name: give it one"
            yield Route(f"{namespace}{entry.name}", route)


@dataclass(frozen=True)
class Endpoint:
    name: str
    methods: tuple[str, ...]  # the methods it answers; any other gets 405
    permission: str  # PUBLIC, SIGNED_IN or a permission of unlinker.accounts.roles
    target: str | None = None  # what the URL's id names: "connection" or "batch"
    fields: tuple[str, ...] = ()  # the query parameters and form fields it reads
    # A valid request's fields, for the role matrix and the CSRF control.
    example: Callable[[Scene], dict] = field(default=lambda scene: {})
    # A POST that acts whatever its fields once its target is reachable (disconnect, cancel):
    # the hostile-input test aims it only at targets the user may not reach.
    acts_on_target: bool = False
    redirects_away: bool = False  # to an OAuth provider's authorize page
    path_args: tuple[str, ...] = ()  # the URL's parameters when they are not a target's id

    @property
    def method(self) -> str:
        """The method of its main use: POST for actions, GET for pages."""
        return "POST" if "POST" in self.methods and "GET" not in self.methods else "GET"

    def target_id(self, scene: Scene) -> int | None:
        return {
            None: None,
            "connection": scene.connection.pk,
            "batch": scene.batch.pk,
        }[self.target]

    def url(self, target_id: int | None = None) -> str:
        if self.path_args:
            return reverse(self.name, args=self.path_args)
        return reverse(self.name, args=[] if target_id is None else [target_id])

    def allows(self, role: str | None) -> bool:
        if self.permission in (PUBLIC, SIGNED_IN):
            return True
        return role is not None and self.permission in roles.ROLES[role]


# --- The fields each page reads ------------------------------------------------------------
# The two lists' filters: mostly the same, each with one of its own.
FILTER = tuple(
    dict.fromkeys([*LinkedInvoiceFilterSet.base_filters, *LinkedPaymentFilterSet.base_filters])
)
FINDING_FILTER = tuple(FindingFilterSet.base_filters)
TABLE = ("sort", "page", "per_page", "_export")
LIST = FILTER + TABLE
SELECTION = ("kind", "pk", "_all")
PLAN_OPTIONS = (
    "remove_payments",
    "after",
    "xero_cleanup",
    "remove_allocations",
    "free_numbers",
    "plan_digest",
    "confirm_key",
    "confirm",
)
OAUTH_CALLBACK = ("code", "state", "error", "error_description", "scope", "iss")


def _first_invoice(scene: Scene) -> dict:
    return {"kind": "invoices", "pk": [str(scene.firm.invoices[0].pk)]}


def _the_viewer(scene: Scene) -> dict:
    return {"user": str(scene.users["viewer"].pk)}


NEW_PERSON = tuple(
    f"new-{name}" for name in ("username", "first_name", "last_name", "email", "role", "password")
)
PASSWORDS = ("old_password", "new_password1", "new_password2")


ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in [
        # core and accounts
        Endpoint("home", ("GET",), SIGNED_IN),
        Endpoint("healthz", ("GET",), PUBLIC),
        # Xero's deliveries: no login, no CSRF token; the HMAC signature authenticates them
        Endpoint("webhooks:xero", ("POST",), PUBLIC),
        # Django's LoginView is a FormView, which treats PUT as POST.
        Endpoint("login", ("GET", "POST", "PUT"), PUBLIC, fields=("username", "password", "next")),
        Endpoint("logout", ("POST",), SIGNED_IN, fields=("next",)),
        Endpoint("password_change", ("GET", "POST"), SIGNED_IN, fields=PASSWORDS),
        # the emailed link; a link of nobody (uid 1 in base64, a bad token) shows that it is
        # no good
        Endpoint(
            "set_password",
            ("GET", "POST"),
            PUBLIC,
            fields=PASSWORDS[1:],
            path_args=("MQ", "no-such-token"),
        ),
        Endpoint("set_password_done", ("GET",), PUBLIC),
        # connections: admins only
        Endpoint("connections:list", ("GET",), MANAGE_CONNECTIONS),
        Endpoint(
            "connections:actionstep_callback", ("GET",), MANAGE_CONNECTIONS, fields=OAUTH_CALLBACK
        ),
        Endpoint(
            "connections:xero_start",
            ("POST",),
            MANAGE_CONNECTIONS,
            target="connection",
            redirects_away=True,
        ),
        Endpoint("connections:xero_callback", ("GET",), MANAGE_CONNECTIONS, fields=OAUTH_CALLBACK),
        Endpoint(
            "connections:xero_tenant",
            ("GET", "POST"),
            MANAGE_CONNECTIONS,
            target="connection",
            fields=("tenant_id",),
        ),
        # GET asks to confirm; the POST with confirm=1 disconnects.
        Endpoint(
            "connections:disconnect",
            ("GET", "POST"),
            MANAGE_CONNECTIONS,
            target="connection",
            fields=("confirm",),
            example=lambda scene: {"confirm": "1"},
        ),
        Endpoint(
            "connections:set_history_notes",
            ("POST",),
            MANAGE_CONNECTIONS,
            target="connection",
            fields=("notes",),
            example=lambda scene: {"notes": "off"},
        ),
        # a connection's team and time zone: admins only
        Endpoint("connections:team", ("GET",), MANAGE_CONNECTIONS, target="connection"),
        Endpoint(
            "connections:add_member",
            ("POST",),
            MANAGE_CONNECTIONS,
            target="connection",
            fields=("existing-user", "existing-role"),
        ),
        Endpoint(
            "connections:new_person",
            ("POST",),
            MANAGE_CONNECTIONS,
            target="connection",
            fields=NEW_PERSON,
            example=lambda scene: {
                "new-username": "newcomer",
                "new-role": "viewer",
                "new-password": "temporary",
            },
        ),
        Endpoint(
            "connections:change_role",
            ("POST",),
            MANAGE_CONNECTIONS,
            target="connection",
            fields=("user", "role"),
            example=lambda scene: {**_the_viewer(scene), "role": "operator"},
        ),
        Endpoint(
            "connections:remove_member",
            ("GET", "POST"),
            MANAGE_CONNECTIONS,
            target="connection",
            fields=("user",),
            example=_the_viewer,
            # any member's id removes them: aimed only at connections out of reach
            acts_on_target=True,
        ),
        Endpoint(
            "connections:send_link",
            ("POST",),
            MANAGE_CONNECTIONS,
            target="connection",
            fields=("user",),
            example=_the_viewer,
        ),
        Endpoint(
            "connections:set_timezone",
            ("POST",),
            MANAGE_CONNECTIONS,
            target="connection",
            fields=("timezone",),
            example=lambda scene: {"timezone": "Australia/Perth"},
        ),
        Endpoint(
            "connections:actionstep_start",
            ("POST",),
            MANAGE_CONNECTIONS,
            redirects_away=True,
            fields=("timezone", "connection"),
        ),
        # the linked lists
        Endpoint("mirror:invoices", ("GET",), BROWSE, fields=LIST),
        Endpoint("mirror:payments", ("GET",), BROWSE, fields=LIST),
        Endpoint("mirror:invoice_list", ("GET",), BROWSE, target="connection", fields=LIST),
        Endpoint("mirror:payment_list", ("GET",), BROWSE, target="connection", fields=LIST),
        Endpoint("sync:start", ("POST",), REFRESH, target="connection", fields=("full",)),
        Endpoint("sync:panel", ("GET",), BROWSE, target="connection"),
        # unlinking
        Endpoint(
            "unlinking:history",
            ("GET",),
            BROWSE,
            fields=("state", "created_by", "date_from", "date_to", "connection", *TABLE),
        ),
        Endpoint(
            "unlinking:plan",
            ("POST",),
            QUEUE_UNLINK,
            target="connection",
            # The bulk form posts to it with the list's query string: filter, sort and paging.
            fields=SELECTION + LIST + PLAN_OPTIONS,
            example=_first_invoice,
        ),
        # The plan page's old addresses: a 308 to it, the POST kept.
        Endpoint(
            "unlinking:moved_plan",
            ("POST",),
            QUEUE_UNLINK,
            fields=("connection",),
            example=lambda scene: {"connection": str(scene.connection.pk), **_first_invoice(scene)},
        ),
        Endpoint(
            "unlinking:moved_unlink",
            ("POST",),
            QUEUE_UNLINK,
            target="connection",
            example=_first_invoice,
        ),
        Endpoint(
            "unlinking:batch", ("GET",), BROWSE, target="batch", fields=("state", "page", "_export")
        ),
        # Without `step` it retries every failed step (test_hostile_requests tests `step` alone).
        Endpoint(
            "unlinking:retry",
            ("POST",),
            QUEUE_UNLINK,
            target="batch",
            fields=("step",),
            acts_on_target=True,
        ),
        Endpoint(
            "unlinking:resume",
            ("POST",),
            QUEUE_UNLINK,
            target="batch",
            fields=("step",),
            acts_on_target=True,
        ),
        # GET asks to confirm; the POST with confirm=1 cancels.
        Endpoint(
            "unlinking:cancel",
            ("GET", "POST"),
            QUEUE_UNLINK,
            target="batch",
            fields=("confirm",),
            example=lambda scene: {"confirm": "1"},
        ),
        # reconciliation
        Endpoint("reconciliation:report", ("GET",), BROWSE),
        Endpoint(
            "reconciliation:connection_report",
            ("GET",),
            BROWSE,
            target="connection",
            fields=FINDING_FILTER + TABLE,
        ),
        Endpoint("reconciliation:run", ("POST",), REFRESH, target="connection"),
        Endpoint("reconciliation:progress", ("GET",), BROWSE, target="connection"),
        Endpoint(
            "reconciliation:cleanup",
            ("POST",),
            CLEANUP_XERO,
            target="connection",
            fields=("pk", "_all", "plan_digest", "confirm_key", "confirm", *FINDING_FILTER, *TABLE),
            example=lambda scene: {
                "pk": [str(f.pk) for f in Finding.objects.filter(run__connection=scene.connection)]
            },
        ),
    ]
}
ALL_FIELDS = tuple(sorted({name for e in ENDPOINTS.values() for name in e.fields}))


def weakest_allowed_role(endpoint: Endpoint) -> str | None:
    """The least privileged user who may use the endpoint ("anonymous" for public ones): what
    an attacker would have."""
    if endpoint.permission == PUBLIC:
        return "anonymous"
    return next(role for role in ROLES if endpoint.allows(role))


# --- What a request may change, and where it may send the browser --------------------------
# The project's data and its users (not the sessions: every sign-in writes one).
WATCHED_APPS = {"auth", "accounts", "core", "connections", "mirror", "unlinking", "reconciliation"}


@cache
def watched_tables() -> list[str]:
    return sorted(
        model._meta.db_table
        for model in apps.get_models(include_auto_created=True)
        if model._meta.app_label in WATCHED_APPS
        and model._meta.managed
        and model._meta.label != "auth.Permission"  # made by migrations, never by a request
    )


def database_state() -> dict[str, list[tuple]]:
    """Every row of every watched table (the scenes are small): a change to any value shows.
    Raw SQL: it runs twice per hypothesis example."""
    state = {}
    with connection.cursor() as cursor:
        for table in watched_tables():
            quoted = connection.ops.quote_name(table)
            cursor.execute(f"SELECT * FROM {quoted} ORDER BY 1")  # noqa: S608 (our own names)
            state[table] = cursor.fetchall()
    return state


def changed_tables(before: dict, after: dict) -> list[str]:
    return [label for label in before if before[label] != after[label]]


def is_local(location: str) -> bool:
    """A redirect that stays on this site (no open redirect)."""
    parts = urlsplit(location)
    return (
        parts.scheme in ("", "http", "https")
        and parts.netloc in ("", "testserver")
        and not location.startswith(("//", "/\\", "\\"))
    )


def is_oauth_provider(location: str) -> bool:
    return location.startswith((settings.ACTIONSTEP_AUTHORIZE_URL, settings.XERO_AUTHORIZE_URL))
