"""Every page needs a login; roles decide what each user may do."""

import pytest
from django.test import Client
from django.urls import reverse

from unlinker.connections.models import Connection

NAV_PAGES = [
    "mirror:payments",
    "mirror:invoices",
    "unlinking:history",
    "reconciliation:report",
    "connections:list",
]


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["home", *NAV_PAGES])
def test_anonymous_is_sent_to_login(client, name):
    url = reverse(name)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.fixture
def firm(db):
    return Connection.objects.create(name="Smith & Co")


@pytest.fixture
def invoice_pk(firm):
    from tests.mirror import factories

    return str(factories.invoice(firm).pk)


def unlink_url(connection) -> str:
    return reverse("unlinking:plan", args=[connection.pk])


@pytest.mark.django_db
def test_anonymous_post_is_sent_to_login_and_changes_nothing(client, firm):
    response = client.post(unlink_url(firm), {"kind": "invoices", "pk": ["1"]})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_login_page_and_login(client, make_user):
    make_user("alice", "viewer")
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b'name="username"' in page.content
    response = client.post(reverse("login"), {"username": "alice", "password": "pw"})
    assert response.status_code == 302
    assert client.get(reverse("mirror:invoices")).status_code == 200


@pytest.mark.django_db
def test_wrong_password_is_a_form_error(client, make_user):
    make_user("alice", "viewer")
    response = client.post(reverse("login"), {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"correct username and password" in response.content


@pytest.mark.django_db
def test_admin_reaches_every_nav_page(client_for):
    client = client_for("admin")
    for name in NAV_PAGES:
        response = client.get(reverse(name))
        assert response.status_code == 200, name
        for other in NAV_PAGES:  # the navigation links every page
            assert reverse(other).encode() in response.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    "role, expected",
    [(None, 403), ("viewer", 403), ("operator", 200), ("admin", 200)],
)
def test_queueing_an_unlink_needs_the_operator_role(client_for, firm, invoice_pk, role, expected):
    client = client_for(role)
    firm.members.add(client.user)
    response = client.post(unlink_url(firm), {"kind": "invoices", "pk": [invoice_pk]})
    assert response.status_code == expected


@pytest.mark.django_db
@pytest.mark.parametrize("role, expected", [("viewer", 403), ("operator", 403), ("admin", 200)])
def test_connections_are_for_admins(client_for, role, expected):
    assert client_for(role).get(reverse("connections:list")).status_code == expected


@pytest.mark.django_db
def test_viewer_does_not_see_connections_in_navigation(client_for):
    content = client_for("viewer").get(reverse("mirror:invoices")).content
    assert reverse("connections:list").encode() not in content
    assert reverse("unlinking:history").encode() in content


@pytest.mark.django_db
def test_unlink_needs_post(client_for, firm):
    assert client_for("operator").get(unlink_url(firm)).status_code == 405


@pytest.mark.django_db
def test_csrf_is_enforced_on_posts(make_user, firm, invoice_pk):
    user = make_user("op", "operator")
    firm.members.add(user)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(unlink_url(firm), {"kind": "invoices", "pk": [invoice_pk]})
    assert response.status_code == 403
    # with the token from the page (as htmx sends it in X-CSRFToken) the same post goes through
    page = client.get(reverse("mirror:invoice_list", args=[firm.pk]))
    token = page.context["csrf_token"]
    response = client.post(
        unlink_url(firm),
        {"kind": "invoices", "pk": [invoice_pk]},
        headers={"X-CSRFToken": str(token)},
    )
    assert response.status_code == 200


@pytest.mark.django_db
def test_pages_load_htmx_locally_under_a_strict_csp(client_for):
    response = client_for("viewer").get(reverse("mirror:invoices"))
    assert b"/static/vendor/htmx-2.0.11.min.js" in response.content
    assert b"<script>" not in response.content
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


@pytest.mark.django_db
def test_static_files_are_served(client_for):
    client = client_for("viewer")
    response = client.get("/static/vendor/htmx-2.0.11.min.js")
    assert response.status_code == 200


@pytest.mark.django_db
def test_roles_are_groups_with_the_right_permissions():
    from django.contrib.auth.models import Group

    perms = {g.name: sorted(p.codename for p in g.permissions.all()) for g in Group.objects.all()}
    assert perms == {
        "viewer": ["browse"],
        "operator": ["browse", "queue_unlink", "refresh"],
        "admin": ["browse", "cleanup_xero", "manage_connections", "queue_unlink", "refresh"],
    }
