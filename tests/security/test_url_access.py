"""Who may reach each URL, with which method, and only with the CSRF token: for every route the
URL resolver knows (the admin and static files aside)."""

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from .endpoints import (
    CSRF_EXEMPT,
    ENDPOINTS,
    PUBLIC,
    Endpoint,
    changed_tables,
    database_state,
    is_local,
    routes,
    weakest_allowed_role,
)
from .scene import ROLES

pytestmark = pytest.mark.django_db

ROUTES = routes()
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
CSRF_FAILURE = b"CSRF verification failed"


def test_every_route_is_declared():
    """A new page must say what it requires before the role matrix and the hostile-input tests
    can cover it: add it to ENDPOINTS in tests/security/endpoints.py."""
    found = {route.name for route in ROUTES}
    assert found - ENDPOINTS.keys() == set(), "routes missing from ENDPOINTS"
    assert ENDPOINTS.keys() - found == set(), "ENDPOINTS names routes that no longer exist"


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.name)
def test_anonymous_is_sent_to_login_and_changes_nothing(scene, route):
    endpoint = ENDPOINTS.get(route.name)
    data = {"kind": "invoices", "pk": ["1"], "_all": "1", "confirm": "1", "step": "1"}
    before = database_state()
    for method in ("GET", "POST"):
        response = getattr(Client(), method.lower())(route.dummy_path(), data)
        if endpoint and endpoint.permission == PUBLIC:
            assert response.status_code < 500
            if method not in endpoint.methods:
                assert response.status_code == 405
        else:
            assert response.status_code == 302, (method, response.content[:300])
            assert response["Location"].startswith(f"{reverse('login')}?next=")
    assert changed_tables(before, database_state()) == []


@pytest.mark.parametrize("endpoint", ENDPOINTS.values(), ids=lambda e: e.name)
def test_each_role_gets_403_exactly_where_it_lacks_the_permission(
    scene, signed_in, endpoint: Endpoint
):
    clients = {role: signed_in(role) for role in ROLES}
    url = endpoint.url(endpoint.target_id(scene))
    for role, client in clients.items():
        # each role's request is undone: a disconnect or a cancel must not hide the next one's
        with transaction.atomic():
            response = getattr(client, endpoint.method.lower())(url, endpoint.example(scene))
            transaction.set_rollback(True)
        if endpoint.allows(role):
            assert response.status_code not in (403, 404, 405), (role, response.content[:300])
            assert response.status_code < 500, role
        else:
            assert response.status_code == 403, (role, response.status_code)


@pytest.mark.parametrize("endpoint", ENDPOINTS.values(), ids=lambda e: e.name)
def test_other_methods_are_refused(scene, signed_in, endpoint: Endpoint):
    """Pages answer GET, actions only POST (a link or a prefetch never acts): every other
    method gets 405 and changes nothing, for a user who may use the endpoint."""
    client = signed_in(weakest_allowed_role(endpoint))
    url = endpoint.url(endpoint.target_id(scene))
    before = database_state()
    for method in METHODS:
        if method not in endpoint.methods:
            response = client.generic(method, url)
            assert response.status_code == 405, (method, response.status_code)
    assert changed_tables(before, database_state()) == []


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: route.name)
def test_csrf_is_enforced_on_every_post(scene, signed_in, route):
    """Without the token every POST is refused before it reaches the view, for an anonymous
    visitor as for an admin; with it, the endpoints that take POST let it through."""
    endpoint = ENDPOINTS.get(route.name)
    path = endpoint.url(endpoint.target_id(scene)) if endpoint else route.dummy_path()
    data = endpoint.example(scene) if endpoint else {}
    clients = {who: signed_in(who, enforce_csrf_checks=True) for who in ("anonymous", "admin")}
    before = database_state()
    for who, client in clients.items():
        response = client.post(path, data)
        if route.name in CSRF_EXEMPT:  # it refuses an unsigned request instead
            assert response.status_code == 401, (who, response.status_code)
            continue
        assert response.status_code == 403, (who, response.status_code)
        assert CSRF_FAILURE in response.content
    assert changed_tables(before, database_state()) == []
    if route.name in CSRF_EXEMPT:
        return

    if endpoint and "POST" in endpoint.methods:
        client = signed_in(weakest_allowed_role(endpoint), enforce_csrf_checks=True)
        client.get("/no-such-page/")  # every page, the 404 too, sets the CSRF cookie
        token = client.cookies["csrftoken"].value
        response = client.post(path, data, headers={"X-CSRFToken": token})
        assert CSRF_FAILURE not in response.content
        assert response.status_code not in (403, 405)


OFF_SITE = ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)"]


@pytest.mark.parametrize("next_url", OFF_SITE)
def test_signing_in_and_out_never_redirects_off_site(scene, signed_in, next_url):
    response = Client().post(
        reverse("login"), {"username": "viewer", "password": "pw", "next": next_url}
    )
    assert response.status_code == 302 and is_local(response["Location"])
    assert response["Location"] == reverse("home")
    response = signed_in("viewer").post(reverse("logout"), {"next": next_url})
    assert response.status_code == 302 and response["Location"] == reverse("login")
