import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.sandbox.support import exact


@pytest.fixture
def tenant_api(sandbox, xero):
    firm = sandbox.build([{"total": "10.00"}])["firm"]
    return xero(firm["tenantId"])


def test_every_xero_answer_says_what_is_left(sandbox, tenant_api):
    sandbox.set_limits("xero", per_minute=10, per_day=100)
    first = tenant_api.get("/Invoices")
    second = tenant_api.get("/Invoices/not-a-number-either")
    assert first.headers["X-MinLimit-Remaining"] == "9"
    assert first.headers["X-DayLimit-Remaining"] == "99"
    assert first.headers["X-AppMinLimit-Remaining"] == "9999"
    assert second.status_code == 404 and second.headers["X-MinLimit-Remaining"] == "8"


def test_minute_limit_answers_429_with_retry_after(sandbox, tenant_api):
    sandbox.set_limits("xero", per_minute=3, time_scale=20)  # a "minute" of three seconds
    statuses = [tenant_api.get("/Invoices").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = tenant_api.get("/Invoices")
    assert refused.headers["X-Rate-Limit-Problem"] == "minute"
    assert 1 <= int(refused.headers["Retry-After"]) <= 3
    assert refused.headers["X-MinLimit-Remaining"] == "0"
    time.sleep(int(refused.headers["Retry-After"]) + 0.1)
    assert tenant_api.get("/Invoices").status_code == 200

    calls = sandbox.requests(api="xero", path_contains="/Invoices")
    assert [c["status"] for c in calls] == [200, 200, 200, 429, 429, 200]


def test_day_limit_is_named_and_long(sandbox, tenant_api):
    sandbox.set_limits("xero", per_day=2)
    tenant_api.get("/Invoices")
    tenant_api.get("/Invoices")
    refused = tenant_api.get("/Invoices")
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Problem"] == "day"
    assert int(refused.headers["Retry-After"]) > 86000
    assert refused.headers["X-DayLimit-Remaining"] == "0"


def test_concurrent_calls_beyond_the_limit_are_refused(sandbox, tenant_api):
    sandbox.set_limits("xero", concurrent=2, latency=1.0)
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: tenant_api.get("/Invoices"), range(6)))
    refused = [a for a in answers if a.status_code == 429]
    assert 2 <= len(answers) - len(refused) <= 4 and refused
    assert all(a.headers["X-Rate-Limit-Problem"] == "concurrent" for a in refused)


def test_limits_are_per_tenant(sandbox, xero):
    first = sandbox.build([{"total": "10.00"}], name="One")["firm"]
    second = sandbox.build([{"total": "10.00"}], name="Two")["firm"]
    sandbox.set_limits("xero", per_minute=1)
    assert xero(first["tenantId"]).get("/Invoices").status_code == 200
    assert xero(first["tenantId"]).get("/Invoices").status_code == 429
    assert xero(second["tenantId"]).get("/Invoices").status_code == 200


def test_actionstep_limit_is_off_by_default_and_has_no_retry_after(sandbox, actionstep):
    sandbox.build([{"total": "10.00"}])
    api = actionstep()
    assert all(api.get("/bills").status_code == 200 for _ in range(20))
    sandbox.set_limits("actionstep", per_minute=2)
    statuses = [api.get("/bills") for _ in range(3)]
    assert [a.status_code for a in statuses] == [200, 200, 429]
    assert "Retry-After" not in statuses[2].headers
    assert exact(statuses[2])["errors"][0]["status"] == "429"


def test_reset_restores_the_default_limits(sandbox):
    sandbox.set_limits("xero", per_minute=1, latency=0.2)
    sandbox.reset()
    limits = sandbox.limits()
    assert limits["xero"]["per_minute"] == 60 and limits["xero"]["latency"] == 0
    assert limits["xero"]["concurrent"] == 5 and limits["xero"]["per_day"] == 5000
    assert limits["actionstep"]["per_minute"] is None


def test_unknown_limits_are_refused(sandbox):
    with pytest.raises(Exception, match="400"):
        sandbox.set_limits("xero", per_hour=10)
