import base64
import hashlib
import re
import time
from html import unescape
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
import requests

from tests.sandbox.support import schema

REDIRECT = "http://127.0.0.1:8000/connections/callback/?from=test"


def consent(url: str, **params) -> requests.Response:
    """Open the consent page, then press its one button as a browser would."""
    page = requests.get(url, params=params, timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.text.count("<button") == 1 and "Allow access" in page.text
    form = re.search(r'<form method="post">(.*)</form>', page.text, re.S).group(1)
    fields = {
        name: unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form)
    }
    org = re.search(r'name="org" value="([^"]+)" checked', form)
    if org:
        fields["org"] = org.group(1)
    return requests.post(url, data=fields, allow_redirects=False, timeout=10)


def code_from(response: requests.Response, state: str) -> str:
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location._replace(query="").geturl() == REDIRECT.split("?")[0]
    query = parse_qs(location.query)
    assert query["state"] == [state] and query["from"] == ["test"]
    return query["code"][0]


def pkce() -> tuple[str, str]:
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def test_actionstep_authorization_code_flow_and_refresh_rotation(sandbox):
    firm = sandbox.build([{"total": "110.00"}], name="Smith Legal")["firm"]
    answer = consent(
        sandbox.actionstep_authorize_url,
        response_type="code",
        client_id="unlinker-app",
        redirect_uri=REDIRECT,
        scope="bills actions",
        state="s1",
    )
    code = code_from(answer, "s1")
    token = requests.post(
        sandbox.actionstep_token_url,
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        auth=("unlinker-app", "the-secret"),
        timeout=10,
    )
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["api_endpoint"] == f"{sandbox.base_url}/actionstep/api"
    assert body["orgkey"] == firm["orgkey"] == "smithlegal"

    bills = requests.get(
        f"{body['api_endpoint']}/rest/bills",
        headers={"Authorization": f"Bearer {body['access_token']}"},
        timeout=10,
    )
    assert bills.status_code == 200

    again = requests.post(
        sandbox.actionstep_token_url,
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        auth=("unlinker-app", "the-secret"),
        timeout=10,
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"

    refresh = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    rotated = requests.post(
        sandbox.actionstep_token_url, data={**refresh, "client_id": "unlinker-app"}, timeout=10
    )
    assert rotated.status_code == 200
    assert rotated.json()["refresh_token"] != body["refresh_token"]
    reused = requests.post(
        sandbox.actionstep_token_url, data={**refresh, "client_id": "unlinker-app"}, timeout=10
    )
    assert reused.status_code == 400 and reused.json() == {"error": "invalid_grant"}

    token_calls = sandbox.requests(path_contains="/oauth/token")
    assert [c["client_id"] for c in token_calls] == ["unlinker-app"] * 4
    assert [c["status"] for c in token_calls] == [200, 400, 200, 400]


def test_xero_pkce_is_verified(sandbox):
    verifier, challenge = pkce()
    params = {
        "response_type": "code",
        "client_id": "xero-app",
        "redirect_uri": REDIRECT,
        "scope": "openid offline_access accounting.transactions",
        "state": "x1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    exchange = {"grant_type": "authorization_code", "redirect_uri": REDIRECT}
    auth = ("xero-app", "secret")

    code = code_from(consent(sandbox.xero_authorize_url, **params), "x1")
    wrong = requests.post(
        sandbox.xero_token_url,
        data={**exchange, "code": code, "code_verifier": "w" * 50},
        auth=auth,
        timeout=10,
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"

    code = code_from(consent(sandbox.xero_authorize_url, **params), "x1")
    right = requests.post(
        sandbox.xero_token_url,
        data={**exchange, "code": code, "code_verifier": verifier},
        auth=auth,
        timeout=10,
    )
    assert right.status_code == 200, right.text
    body = right.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 1800
    assert body["scope"] == params["scope"] and body["refresh_token"]


def test_authorize_refuses_a_bad_request(sandbox):
    bad = requests.get(
        sandbox.xero_authorize_url,
        params={"response_type": "token", "client_id": "x", "redirect_uri": REDIRECT},
        timeout=10,
    )
    assert bad.status_code == 400


def test_connections_list_the_seeded_tenants(sandbox):
    first = sandbox.build([{"total": "10.00"}], name="First Firm")["firm"]
    second = sandbox.build([{"total": "20.00"}], name="Second Firm")["firm"]
    token = sandbox.issue_tokens("xero")["access_token"]
    answer = requests.get(
        sandbox.xero_connections_url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert answer.status_code == 200
    jsonschema.validate(answer.json(), schema("connections"))
    assert [(c["tenantId"], c["tenantName"]) for c in answer.json()] == [
        (first["tenantId"], "First Firm"),
        (second["tenantId"], "Second Firm"),
    ]


def test_xero_client_credentials_for_a_custom_connection(sandbox):
    answer = requests.post(
        sandbox.xero_token_url,
        data={"grant_type": "client_credentials", "scope": "accounting.transactions"},
        auth=("custom", "secret"),
        timeout=10,
    )
    assert answer.status_code == 200
    assert "refresh_token" not in answer.json()


def test_missing_client_and_unknown_grant(sandbox):
    anonymous = requests.post(
        sandbox.xero_token_url, data={"grant_type": "refresh_token"}, timeout=10
    )
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"
    odd = requests.post(
        sandbox.xero_token_url, data={"grant_type": "password", "client_id": "a"}, timeout=10
    )
    assert odd.status_code == 400 and odd.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize("api", ["actionstep", "xero"])
def test_wrong_and_expired_tokens_get_401(sandbox, api):
    firm = sandbox.build([{"total": "10.00"}])["firm"]
    url = (
        f"{sandbox.actionstep_api_url}/rest/bills"
        if api == "actionstep"
        else f"{sandbox.xero_api_url}/Invoices"
    )
    accept = "application/vnd.api+json" if api == "actionstep" else "application/json"
    headers = {"Xero-tenant-id": firm["tenantId"], "Accept": accept}

    def status(token: str) -> int:
        auth = {"Authorization": f"Bearer {token}"}
        return requests.get(url, headers={**headers, **auth}, timeout=10).status_code

    assert status("not-a-token") == 401
    other_api = sandbox.issue_tokens("xero" if api == "actionstep" else "actionstep")
    assert status(other_api["access_token"]) == 401

    sandbox.set_limits(api, access_token_ttl=1)
    token = sandbox.issue_tokens(api)
    assert token["expires_in"] == 1
    assert status(token["access_token"]) == 200
    time.sleep(1.2)
    assert status(token["access_token"]) == 401

    sandbox.set_limits(api, access_token_ttl=3600)
    fresh = sandbox.issue_tokens(api)
    assert sandbox.expire_tokens(api) >= 1
    assert status(fresh["access_token"]) == 401
    token_url = sandbox.actionstep_token_url if api == "actionstep" else sandbox.xero_token_url
    renewed = requests.post(
        token_url,
        data={"grant_type": "refresh_token", "refresh_token": fresh["refresh_token"]},
        auth=("sandbox-control", ""),
        timeout=10,
    )
    assert status(renewed.json()["access_token"]) == 200
