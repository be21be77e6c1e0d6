import pytest
import requests

from tests.sandbox.support import exact


@pytest.fixture
def firm(sandbox):
    return sandbox.build([{"total": "100.00", "payments": [{"amount": "10.00"}]}])


def test_random_rates_fault_the_api_calls_and_are_logged(sandbox, firm, actionstep):
    sandbox.set_faults("actionstep", rates={"503": 1.0}, seed=1)
    api = actionstep()
    answer = api.get("/bills")
    assert answer.status_code == 503
    assert exact(answer)["errors"][0]["status"] == "503"
    sandbox.set_faults("actionstep", rates={"500": 0.5, "429": 0.25}, seed=7)
    statuses = {api.get("/bills").status_code for _ in range(40)}
    assert statuses == {200, 429, 500}
    logged = sandbox.requests(api="actionstep")
    assert len(logged) == 41
    assert {entry["fault"] for entry in logged if entry["status"] != 200} == {"503", "500", "429"}


def test_random_faults_leave_the_token_endpoint_alone(sandbox, firm):
    sandbox.set_faults("xero", rates={"500": 1.0})
    token = sandbox.issue_tokens("xero")
    refreshed = requests.post(
        sandbox.xero_token_url,
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        auth=("app", "secret"),
        timeout=10,
    )
    assert refreshed.status_code == 200


def test_a_targeted_rule_fires_its_number_of_times(sandbox, firm, actionstep):
    link_id = firm["bills"][0]["link_id"]
    rule = {"method": "GET", "path_contains": f"/xeroinvoicelinks/{link_id}", "status": 500}
    sandbox.set_faults("actionstep", rules=[{**rule, "times": 2}])
    api = actionstep()
    statuses = [api.get(f"/xeroinvoicelinks/{link_id}").status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert api.get("/bills").status_code == 200
    assert sandbox.faults()["actionstep"]["rules"][0]["times"] == 0


def test_a_rule_after_the_change_loses_the_answer_but_keeps_the_change(sandbox, firm, xero):
    payment_id = firm["bills"][0]["payments"][0]["xero_payment_id"]
    rule = {"method": "POST", "path_contains": "/Payments/", "status": 503, "after": True}
    sandbox.set_faults("xero", rules=[{**rule, "times": 1}])
    api = xero(firm["firm"]["tenantId"])
    assert api.post(f"/Payments/{payment_id}", {"Status": "DELETED"}).status_code == 503
    assert sandbox.xero_payment(payment_id)["Status"] == "DELETED"


def test_drop_closes_the_connection_without_an_answer(sandbox, firm, actionstep):
    sandbox.set_faults("actionstep", rules=[{"path_contains": "/bills", "status": "drop"}])
    with pytest.raises(requests.ConnectionError):
        actionstep().get("/bills")
    (entry,) = sandbox.requests(api="actionstep")
    assert entry["fault"] == "drop" and entry["status"] is None


def test_timeout_answers_only_after_the_client_gave_up(sandbox, firm, xero):
    sandbox.set_faults("xero", rates={"timeout": 1.0}, timeout_seconds=2)
    api = xero(firm["firm"]["tenantId"])
    with pytest.raises(requests.ReadTimeout):
        api.get("/Invoices", timeout=0.5)
    (entry,) = sandbox.requests(api="xero")
    assert entry["fault"] == "timeout" and entry["status"] == 504


def test_faults_are_per_api_and_cleared(sandbox, firm, actionstep, xero):
    sandbox.set_faults("xero", rates={"500": 1.0})
    assert actionstep().get("/bills").status_code == 200
    tenant_api = xero(firm["firm"]["tenantId"])
    assert tenant_api.get("/Invoices").status_code == 500
    sandbox.clear_faults()
    assert tenant_api.get("/Invoices").status_code == 200


def test_a_bad_fault_is_refused(sandbox):
    with pytest.raises(requests.HTTPError):
        sandbox.set_faults("xero", rates={"200": 0.5})
