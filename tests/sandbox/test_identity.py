"""Xero's identity side of the sandbox: scopes, offline_access, the id_token, the connections
API as xero-identity.yaml describes it, revocation; and a build that cannot stall the sandbox."""

import base64
import hashlib
import hmac
import json
import threading
import time

import pytest
import requests

from tests.sandbox.support import Api


def accounting(sandbox, tenant_id: str, token: str) -> Api:
    headers = {
        "Authorization": f"Bearer {token}",
        "Xero-tenant-id": tenant_id,
        "Accept": "application/json",
    }
    return Api(sandbox.xero_api_url, headers)


def identity(sandbox, token: str) -> Api:
    return Api(f"{sandbox.base_url}/xero/api", {"Authorization": f"Bearer {token}"})


@pytest.fixture
def firm(sandbox):
    built = sandbox.build([{"total": "110.00", "payments": [{"amount": "10.00"}]}], name="Scopes")
    built["tenant"] = built["firm"]["tenantId"]
    return built


@pytest.mark.parametrize(
    ("scope", "invoices", "payments", "organisation"),
    [
        ("openid", 403, 403, 403),
        ("accounting.invoices.read", 200, 403, 403),
        ("accounting.invoices", 200, 403, 403),
        ("accounting.payments.read", 403, 200, 403),
        ("accounting.transactions.read", 200, 200, 403),
        ("accounting.transactions accounting.settings.read", 200, 200, 200),
    ],
)
def test_reads_need_their_scope(sandbox, firm, scope, invoices, payments, organisation):
    api = accounting(
        sandbox, firm["tenant"], sandbox.issue_tokens("xero", scope=scope)["access_token"]
    )
    assert api.get("/Invoices").status_code == invoices
    assert api.get("/Payments").status_code == payments
    assert api.get("/Organisation").status_code == organisation
    if 403 in (invoices, organisation):
        refused = api.get("/Invoices" if invoices == 403 else "/Organisation")
        assert refused.json()["Detail"] == "AuthorizationUnsuccessful"


def test_deleting_a_payment_needs_a_payments_scope_that_can_write(sandbox, firm):
    payment = firm["bills"][0]["payments"][0]["xero_payment_id"]
    for scope, status in (("accounting.payments.read", 403), ("accounting.payments", 200)):
        token = sandbox.issue_tokens("xero", scope=scope)["access_token"]
        answer = accounting(sandbox, firm["tenant"], token).post(
            f"/Payments/{payment}", {"Status": "DELETED"}
        )
        assert answer.status_code == status, answer.text


def test_a_refresh_token_only_with_offline_access_and_an_id_token_only_with_openid(sandbox):
    bare = sandbox.issue_tokens("xero", scope="accounting.invoices")
    assert "refresh_token" not in bare and "id_token" not in bare
    full = sandbox.issue_tokens("xero", scope="openid email offline_access accounting.invoices")
    assert full["refresh_token"]
    header, payload, signature = full["id_token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["aud"] == "sandbox-control" and claims["email"] and claims["exp"] > time.time()
    assert json.loads(base64.urlsafe_b64decode(header + "=="))["alg"] == "HS256"
    expected = hmac.new(b"", f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64encode(expected).rstrip(b"=").decode() == signature


def test_a_refresh_may_narrow_the_scope_but_not_widen_it(sandbox):
    token = sandbox.issue_tokens("xero", scope="offline_access accounting.invoices")

    def refresh(refresh_token, scope):
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "scope": scope}
        return requests.post(sandbox.xero_token_url, data=form, auth=("app", "secret"), timeout=10)

    wider = refresh(
        token["refresh_token"], "offline_access accounting.invoices accounting.payments"
    )
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    same = refresh(token["refresh_token"], "offline_access accounting.invoices")
    assert same.status_code == 200 and same.json()["scope"] == "offline_access accounting.invoices"


def test_connections_answer_under_both_spellings_and_can_be_deleted(sandbox, firm):
    token = sandbox.issue_tokens("xero")["access_token"]
    api = identity(sandbox, token)
    (upper,) = api.get("/Connections").json()
    assert api.get("/connections").json() == [upper]
    assert api.get("/Connections", params={"authEventId": upper["authEventId"]}).json() == [upper]
    assert accounting(sandbox, firm["tenant"], token).get("/Invoices").status_code == 200

    assert api.delete(f"/Connections/{upper['id']}").status_code == 204
    assert api.get("/Connections").json() == []
    assert api.delete(f"/connections/{upper['id']}").status_code == 404
    assert accounting(sandbox, firm["tenant"], token).get("/Invoices").status_code == 403
    # authorising the app again connects it again
    again = sandbox.issue_tokens("xero")["access_token"]
    assert identity(sandbox, again).get("/connections").json()[0]["tenantId"] == firm["tenant"]


def test_revoking_the_refresh_token_ends_the_authorisation(sandbox, firm):
    token = sandbox.issue_tokens("xero", client_id="unlinker-demo")
    revoked = requests.post(
        sandbox.xero_revocation_url,
        data={"token": token["refresh_token"]},
        auth=("unlinker-demo", "secret"),
        timeout=10,
    )
    assert revoked.status_code == 200 and revoked.content == b""
    assert (
        accounting(sandbox, firm["tenant"], token["access_token"]).get("/Invoices").status_code
        == 401
    )
    form = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}
    refused = requests.post(
        sandbox.xero_token_url, data=form, auth=("unlinker-demo", "s"), timeout=10
    )
    assert refused.json()["error"] == "invalid_grant"
    other = sandbox.issue_tokens("xero", client_id="unlinker-demo")["access_token"]
    assert identity(sandbox, other).get("/Connections").status_code == 200

    unknown = requests.post(
        sandbox.xero_revocation_url, data={"token": "nope"}, auth=("unlinker-demo", "s"), timeout=10
    )
    assert unknown.status_code == 200  # RFC 7009
    anonymous = requests.post(sandbox.xero_revocation_url, data={"token": "nope"}, timeout=10)
    assert anonymous.status_code == 401


def test_a_repeated_firm_name_gets_a_new_unique_name(sandbox):
    first = sandbox.build([{"total": "10.00"}], name="Smith & Jones")["firm"]
    second = sandbox.build([{"total": "10.00"}], name="Smith & Jones")["firm"]
    third = sandbox.build([{"total": "10.00"}], name="Smith & Jones")["firm"]
    assert [f["name"] for f in (first, second, third)] == [
        "Smith & Jones",
        "Smith & Jones 2",
        "Smith & Jones 3",
    ]
    assert len({f["orgkey"] for f in (first, second, third)}) == 3


def test_a_build_too_large_is_refused_and_the_apis_stay_responsive(sandbox):
    answer = requests.post(
        f"{sandbox.base_url}/_sandbox/build",
        json={"bills": [{"total": "1.00"}] * 20_001},
        timeout=60,
    )
    assert answer.status_code == 400 and "at most" in answer.json()["error"]

    # While a large build saves, other requests are answered.
    done = []
    builder = threading.Thread(
        target=lambda: done.append(sandbox.build([{"total": "1.00"}] * 5000, name="Big"))
    )
    builder.start()
    started = time.monotonic()
    assert sandbox.health()
    assert time.monotonic() - started < 10
    builder.join(timeout=60)
    assert done and len(done[0]["bills"]) == 5000
