import json

import pytest


@pytest.fixture
def payment(sandbox, xero):
    built = sandbox.build([{"total": "100.00", "payments": [{"amount": "40.00"}]}])
    api = xero(built["firm"]["tenantId"])
    return api, built["bills"][0]["payments"][0]["xero_payment_id"]


def test_a_repeated_key_replays_the_answer_without_acting_again(sandbox, payment):
    api, payment_id = payment
    headers = {"Idempotency-Key": "delete-payment-1"}
    first = api.post(f"/Payments/{payment_id}", {"Status": "DELETED"}, headers=headers)
    second = api.post(f"/Payments/{payment_id}", {"Status": "DELETED"}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()

    entries = sandbox.requests(api="xero", method="POST")
    assert [(e["status"], e["replay"]) for e in entries] == [(200, False), (200, True)]
    assert all(e["idempotency_key"] == "delete-payment-1" for e in entries)

    without_key = api.post(f"/Payments/{payment_id}", {"Status": "DELETED"})
    assert without_key.status_code == 400  # acted again: already deleted


def test_the_same_key_with_another_body_is_refused(sandbox, payment):
    api, payment_id = payment
    headers = {"Idempotency-Key": "k-2"}
    api.post(f"/Payments/{payment_id}", {"Status": "DELETED"}, headers=headers)
    other = api.post(
        f"/Payments/{payment_id}", {"Payments": [{"Status": "DELETED"}]}, headers=headers
    )
    assert other.status_code == 400
    assert "different request" in other.json()["Detail"]


def test_a_refusal_is_replayed_too_but_a_server_error_is_not(sandbox, payment):
    api, payment_id = payment
    sandbox.set_faults(
        "xero", rules=[{"method": "POST", "path_contains": "/Payments/", "status": 500, "times": 1}]
    )
    headers = {"Idempotency-Key": "k-3"}
    assert (
        api.post(f"/Payments/{payment_id}", {"Status": "DELETED"}, headers=headers).status_code
        == 500
    )
    assert (
        api.post(f"/Payments/{payment_id}", {"Status": "DELETED"}, headers=headers).status_code
        == 200
    )
    assert sandbox.xero_payment(payment_id)["Status"] == "DELETED"


def test_keys_longer_than_128_characters_are_refused(payment):
    api, payment_id = payment
    answer = api.post(
        f"/Payments/{payment_id}", {"Status": "DELETED"}, headers={"Idempotency-Key": "k" * 129}
    )
    assert answer.status_code == 400


def test_the_log_holds_every_request_in_order(sandbox, payment, actionstep):
    api, payment_id = payment
    start = sandbox.last_request_id()
    api.get("/Invoices", params={"Statuses": "PAID"})
    api.post(f"/Payments/{payment_id}", {"Status": "DELETED"}, headers={"Idempotency-Key": "x"})
    actionstep().get("/bills", params={"pageSize": 5})
    entries = sandbox.requests(since=start)
    assert [(e["api"], e["method"], e["path"]) for e in entries] == [
        ("xero", "GET", "/xero/api/api.xro/2.0/Invoices"),
        ("xero", "POST", f"/xero/api/api.xro/2.0/Payments/{payment_id}"),
        ("actionstep", "GET", "/actionstep/api/rest/bills"),
    ]
    get, post, listing = entries
    assert get["query"] == "Statuses=PAID" and get["body"] is None
    assert post["body"] == {"Status": "DELETED"} and post["idempotency_key"] == "x"
    assert post["tenant_id"] == sandbox.firms()[0]["tenant_id"]
    assert all(e["status"] == 200 and e["at"] and e["duration_ms"] >= 0 for e in entries)
    assert sandbox.requests(since=start, api="actionstep") == [listing]
    assert sandbox.requests(since=start, method="post") == [post]
    assert sandbox.requests(since=start, status=200, limit=1) == [get]
    assert json.loads(json.dumps(entries)) == entries


def test_the_log_records_requests_to_unknown_paths(sandbox, actionstep):
    sandbox.build([{"total": "1.00"}])
    actionstep().get("/nothing-here")
    (entry,) = sandbox.requests(api="actionstep")
    assert entry["status"] == 404
