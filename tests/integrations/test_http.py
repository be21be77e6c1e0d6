"""The behaviour both clients share (http.ApiClient): auth and refresh, error mapping, retries."""

from contextlib import contextmanager

import pytest
import requests
import responses
from responses import matchers

from unlinker.integrations import http
from unlinker.integrations.errors import (
    AuthExpired,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    Throttled,
    Unreachable,
)

from .conftest import AS_REST, XERO_API

INVOICES = f"{XERO_API}/Invoices"
ONE_INVOICE = {"Invoices": [{"InvoiceID": "i-1", "Status": "AUTHORISED"}]}


def rate_limited(problem, retry_after="2"):
    headers = {"X-Rate-Limit-Problem": problem}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return responses.Response("GET", INVOICES, status=429, headers=headers)


def test_minute_429_on_a_get_waits_retry_after_and_retries(mocked, xero, sleeps):
    mocked.add(rate_limited("minute", "7"))
    mocked.add(rate_limited("concurrent", "1"))
    mocked.get(INVOICES, json=ONE_INVOICE)
    assert [i.invoice_id for i in xero.get_invoices()] == ["i-1"]
    assert sleeps == [7.0, 1.0]
    assert xero.requests_made == 3


def test_minute_429_gives_up_after_three_retries(mocked, xero, sleeps):
    for _ in range(4):
        mocked.add(rate_limited("minute", "1"))
    with pytest.raises(RateLimited) as caught:
        xero.get_invoices()
    assert caught.value.problem == "minute" and caught.value.retry_after == 1.0
    assert len(sleeps) == 3 and xero.requests_made == 4


def test_day_429_is_raised_at_once(mocked, xero, sleeps):
    mocked.add(rate_limited("day", "43200"))
    with pytest.raises(RateLimited) as caught:
        xero.get_invoices()
    assert caught.value.is_daily and caught.value.retry_after == 43200.0
    assert caught.value.status == 429 and caught.value.api == "xero"
    assert sleeps == [] and xero.requests_made == 1


def test_retry_after_longer_than_the_cap_is_raised_not_slept(mocked, xero, sleeps):
    mocked.add(rate_limited("minute", str(http.RETRY_AFTER_CAP_SECONDS + 1)))
    with pytest.raises(RateLimited):
        xero.get_invoices()
    assert sleeps == []


def test_writes_are_never_retried(mocked, xero, sleeps):
    mocked.post(
        f"{XERO_API}/Payments/p-1",
        status=429,
        headers={"Retry-After": "1", "X-Rate-Limit-Problem": "minute"},
    )
    with pytest.raises(RateLimited):
        xero.delete_payment("p-1", idempotency_key="k1")
    mocked.post(f"{XERO_API}/Invoices", status=503)
    with pytest.raises(ServerError):
        xero.update_invoice_statuses([("i-1", "VOIDED")], idempotency_key="k2")
    mocked.post(f"{XERO_API}/Payments/p-2", body=requests.ConnectionError("reset"))
    with pytest.raises(Unreachable):
        xero.delete_payment("p-2", idempotency_key="k3")
    assert sleeps == [] and xero.requests_made == 3


def test_actionstep_429_has_no_retry_after_so_gets_back_off(mocked, actionstep, sleeps):
    url = f"{AS_REST}/bills/1"
    mocked.get(url, status=429, json={"errors": [{"status": "429", "title": "Too many"}]})
    mocked.get(url, json={"bills": {"id": 1, "status": "Open"}})
    assert actionstep.get_bill(1).status == "Open"
    assert len(sleeps) == 1 and 0 < sleeps[0] <= http.BACKOFF_SECONDS * 1.5


def test_5xx_on_a_get_backs_off_exponentially_then_raises(mocked, xero, sleeps):
    for status in (500, 502, 503, 504):
        mocked.get(INVOICES, status=status)
    with pytest.raises(ServerError) as caught:
        xero.get_invoices()
    assert caught.value.status == 504 and caught.value.retryable
    assert len(sleeps) == 3 and xero.requests_made == 4
    for attempt, delay in enumerate(sleeps):  # 0.5s doubling, with jitter of +-50%
        base = http.BACKOFF_SECONDS * 2**attempt
        assert base * 0.5 <= delay <= base * 1.5


def test_5xx_then_success(mocked, xero, sleeps):
    mocked.get(INVOICES, status=500)
    mocked.get(INVOICES, json=ONE_INVOICE)
    assert len(xero.get_invoices()) == 1 and len(sleeps) == 1


@pytest.mark.parametrize(
    "failure",
    [
        requests.ConnectTimeout("connect timed out"),
        requests.ReadTimeout("read timed out"),
        requests.ConnectionError("connection refused"),
        requests.exceptions.ChunkedEncodingError("dropped"),
    ],
)
def test_transport_failures_are_unreachable_and_retried_on_gets(mocked, xero, sleeps, failure):
    for _ in range(4):
        mocked.get(INVOICES, body=failure)
    with pytest.raises(Unreachable) as caught:
        xero.get_invoices()
    assert caught.value.retryable and caught.value.api == "xero"
    assert len(sleeps) == 3


def test_every_call_has_a_timeout(mocked, xero, monkeypatch):
    seen = []
    original = requests.Session.request

    def spy(self, method, url, **kwargs):
        seen.append(kwargs.get("timeout"))
        return original(self, method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", spy)
    mocked.get(INVOICES, json=ONE_INVOICE)
    xero.get_invoices()
    assert seen == [5]


def test_malformed_json_is_unreachable(mocked, xero, sleeps):
    for _ in range(4):
        mocked.get(INVOICES, body='{"Invoices": [', content_type="application/json")
    with pytest.raises(Unreachable) as caught:
        xero.get_invoices()
    assert "malformed JSON" in caught.value.message
    assert len(sleeps) == 3


def test_401_refreshes_once_and_retries(mocked, xero, tokens):
    mocked.get(
        INVOICES, status=401, match=[matchers.header_matcher({"Authorization": "Bearer token-1"})]
    )
    mocked.get(
        INVOICES,
        json=ONE_INVOICE,
        match=[matchers.header_matcher({"Authorization": "Bearer token-2"})],
    )
    assert len(xero.get_invoices()) == 1
    assert tokens.refreshes == 1 and xero.requests_made == 2


def test_a_write_refused_with_401_is_sent_again_after_the_refresh(mocked, xero, tokens):
    url = f"{XERO_API}/Payments/p-1"
    mocked.post(url, status=401)
    mocked.post(url, json={"Payments": [{"PaymentID": "p-1", "Status": "DELETED"}]})
    assert xero.delete_payment("p-1", idempotency_key="k").status == "DELETED"
    assert tokens.refreshes == 1


def test_second_401_is_auth_expired(mocked, xero, tokens, sleeps):
    mocked.get(INVOICES, status=401, json={"Title": "Unauthorized", "Detail": "TokenExpired"})
    with pytest.raises(AuthExpired) as caught:
        xero.get_invoices()
    assert tokens.refreshes == 1 and xero.requests_made == 2 and sleeps == []
    assert not caught.value.retryable
    assert "token-" not in str(caught.value) and "token-" not in repr(caught.value)


def test_tokens_stay_out_of_reprs_and_messages(mocked, xero, actionstep):
    mocked.get(INVOICES, body=requests.ConnectionError("refused"))
    with pytest.raises(Unreachable) as caught:
        xero.get_invoices()
    for text in (
        str(caught.value),
        repr(caught.value),
        repr(xero),
        repr(xero.tokens),
        repr(actionstep),
    ):
        assert "token-1" not in text


def test_status_mapping(mocked, xero):
    mocked.get(f"{INVOICES}/missing", status=404, body="The resource you're looking for...")
    mocked.get(f"{INVOICES}/secret", status=403, json={"Title": "Forbidden"})
    mocked.get(f"{INVOICES}/odd", status=409, json={"Message": "Conflict"})
    with pytest.raises(NotFound) as not_found:
        xero.request("GET", f"{INVOICES}/missing")
    assert not_found.value.status == 404 and "looking" not in not_found.value.message
    with pytest.raises(Forbidden):
        xero.request("GET", f"{INVOICES}/secret")
    with pytest.raises(Exception) as other:
        xero.request("GET", f"{INVOICES}/odd")
    assert other.value.status == 409 and other.value.message == "Conflict"
    assert not other.value.retryable


class RecordingThrottle:
    def __init__(self, refuse=False):
        self.refuse = refuse
        self.slots = 0

    @contextmanager
    def slot(self):
        if self.refuse:
            raise Throttled("no slot", retry_after=1.0, problem="minute")
        self.slots += 1
        yield


def test_every_attempt_takes_a_throttle_slot(mocked, xero):
    xero.throttle = RecordingThrottle()
    mocked.get(INVOICES, status=502)
    mocked.get(INVOICES, json=ONE_INVOICE)
    xero.get_invoices()
    assert xero.throttle.slots == 2 == xero.requests_made


def test_a_refusal_of_the_throttle_is_not_retried(mocked, xero, sleeps):
    xero.throttle = RecordingThrottle(refuse=True)
    with pytest.raises(Throttled):
        xero.get_invoices()
    assert sleeps == [] and xero.requests_made == 0 and len(mocked.calls) == 0
