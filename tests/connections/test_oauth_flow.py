"""Connecting Actionstep and Xero through the real authorization-code flows, end to end
against the sandbox's authorize and token endpoints."""

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.db import connection as db
from django.urls import reverse

from unlinker.connections.models import Connection, OAuthCredential

pytestmark = pytest.mark.django_db


def consent(authorize_url: str, choose: str | None = None) -> str:
    """Do what the admin does on the provider's consent page: allow access. Returns the URL
    the provider redirects the browser to."""
    page = requests.get(authorize_url, timeout=10)
    assert page.status_code == 200, page.text
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    fields = {name: unescape(value) for name, value in fields.items()}
    radios = re.findall(r'<input type="radio" name="([^"]+)" value="([^"]*)"', page.text)
    if radios:
        name = radios[0][0]
        fields[name] = choose or unescape(radios[0][1])
    answer = requests.post(authorize_url, data=fields, allow_redirects=False, timeout=10)
    assert answer.status_code in (302, 303), answer.text
    return answer.headers["Location"]


def local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_connect_actionstep_then_xero_and_pair(client_for, upstream):
    firm = upstream.seed(invoices=5)["firm"]
    client = client_for("admin")

    start = client.post(reverse("connections:actionstep_start"))
    assert start.status_code == 302
    authorize = start["Location"]
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(upstream.actionstep_authorize_url)
    assert query["response_type"] == ["code"] and query["state"][0]

    callback = consent(authorize, choose=firm["orgkey"])
    assert urlsplit(callback).path == reverse("connections:actionstep_callback")
    done = client.get(local(callback))
    assert done.status_code == 302
    connection = Connection.objects.get()
    assert connection.actionstep_org_key == firm["orgkey"]
    assert connection.actionstep_api_endpoint == upstream.actionstep_api_url
    assert client.user in connection.members.all()

    start = client.post(reverse("connections:xero_start", args=[connection.pk]))
    query = parse_qs(urlsplit(start["Location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    callback = consent(start["Location"])
    done = client.get(local(callback))
    assert done.status_code == 302
    connection.refresh_from_db()
    # one organisation behind the Xero login: paired straight away
    assert connection.xero_tenant_id == upstream.firms()[0]["tenant_id"]
    assert connection.is_paired

    page = client.get(reverse("connections:list"))
    assert page.status_code == 200
    credential = OAuthCredential.objects.get(connection=connection, provider="xero")
    assert credential.access_token.encode() not in page.content


def test_pick_the_tenant_when_the_login_reaches_several(client_for, upstream):
    first = upstream.seed(invoices=2, name="First Firm")["firm"]
    second = upstream.seed(invoices=2, name="Second Firm")["firm"]
    client = client_for("admin")
    client.get(
        local(
            consent(
                client.post(reverse("connections:actionstep_start"))["Location"],
                choose=first["orgkey"],
            )
        )
    )
    connection = Connection.objects.get()
    start = client.post(reverse("connections:xero_start", args=[connection.pk]))
    answer = client.get(local(consent(start["Location"])))
    assert answer["Location"] == reverse("connections:xero_tenant", args=[connection.pk])
    page = client.get(answer["Location"])
    assert b"First Firm" in page.content and b"Second Firm" in page.content

    refused = client.post(answer["Location"], {"tenant_id": "not-offered"})
    assert refused.status_code == 200
    connection.refresh_from_db()
    assert not connection.xero_tenant_id

    second_tenant = next(f for f in upstream.firms() if f["orgkey"] == second["orgkey"])
    client.post(answer["Location"], {"tenant_id": second_tenant["tenant_id"]})
    connection.refresh_from_db()
    assert connection.xero_tenant_id == second_tenant["tenant_id"]


def test_a_forged_state_is_refused(client_for, upstream):
    upstream.seed(invoices=1)
    client = client_for("admin")
    callback = consent(client.post(reverse("connections:actionstep_start"))["Location"])
    forged = callback.replace("state=", "state=forged")
    response = client.get(local(forged), follow=True)
    assert not Connection.objects.exists()
    assert b"was not connected" in response.content


def test_a_denied_consent_connects_nothing(client_for, upstream):
    client = client_for("admin")
    response = client.get(
        reverse("connections:actionstep_callback") + "?error=access_denied&state=x", follow=True
    )
    assert not Connection.objects.exists()
    assert b"was not connected" in response.content


def test_tokens_are_unreadable_in_the_database(connect, upstream):
    connection = connect(upstream.seed(invoices=1)["firm"])
    credential = OAuthCredential.objects.get(connection=connection, provider="actionstep")
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT access_token, refresh_token FROM connections_oauthcredential WHERE id = %s",
            [credential.pk],
        )
        stored_access, stored_refresh = cursor.fetchone()
    assert credential.access_token and credential.access_token not in stored_access
    assert credential.refresh_token not in stored_refresh
    assert stored_access.startswith("gAAAAA")  # a Fernet token
    assert credential.access_token not in repr(credential)


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_admins_connect(client_for, role):
    client = client_for(role)
    assert client.post(reverse("connections:actionstep_start")).status_code == 403
    assert client.get(reverse("connections:actionstep_callback")).status_code == 403
