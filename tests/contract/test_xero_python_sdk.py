"""Xero's official Python SDK (xero-python) drives the sandbox: a sandbox only our own client
can use proves only that the two agree. The SDK is pointed at the sandbox by its documented
knobs (base_url, the token endpoint's URL) and otherwise used as its README shows."""

import time
from datetime import date, timedelta

import pytest

pytest.importorskip("xero_python", reason="the test extras install xero-python")

from xero_python.accounting import AccountingApi  # noqa: E402
from xero_python.accounting.models import Invoice, Invoices, PaymentDelete  # noqa: E402
from xero_python.api_client import ApiClient, Configuration  # noqa: E402
from xero_python.api_client.oauth2 import OAuth2Token, TokenApi  # noqa: E402
from xero_python.exceptions import AccountingBadRequestException  # noqa: E402
from xero_python.identity import IdentityApi  # noqa: E402

ALLOCATED = "This document cannot be edited as it has a payment or credit note allocated to it"
SCOPES = ["offline_access", "accounting.transactions", "accounting.settings"]


@pytest.fixture
def firm(sandbox):
    old = (date.today() - timedelta(days=90)).isoformat()
    built = sandbox.build(
        [
            {"number": "SDK-1", "total": "110.00", "payments": [{"amount": "10.00"}]},
            {"number": "SDK-2", "total": "220.00"},
            {"number": "SDK-3", "total": "330.00"},
            {"number": "SDK-4", "total": "440.00", "xero_status": "DRAFT"},
            {"number": "SDK-OLD", "total": "50.00", "invoice_date": old},
        ],
        name="SDK Legal",
        organisation={"period_lock_date": (date.today() - timedelta(days=60)).isoformat()},
    )
    built["by_number"] = {bill["number"]: bill for bill in built["bills"]}
    built["tenant"] = built["firm"]["tenantId"]
    return built


@pytest.fixture
def sdk(sandbox, monkeypatch):
    """(api_client, accounting api, the stored token dict) with a token the sandbox issued."""
    monkeypatch.setattr(TokenApi, "refresh_token_url", sandbox.xero_token_url)
    monkeypatch.setattr(TokenApi, "revoke_token_url", sandbox.xero_revocation_url)
    issued = sandbox.issue_tokens("xero", scope=" ".join(SCOPES), client_id="sdk-app")
    stored = {
        **issued,
        "scope": SCOPES,
        "expires_at": time.time() + issued["expires_in"],
    }
    api_client = ApiClient(
        Configuration(oauth2_token=OAuth2Token(client_id="sdk-app", client_secret="sdk-secret")),
        pool_threads=1,
    )

    @api_client.oauth2_token_getter
    def get_token():
        return stored

    @api_client.oauth2_token_saver
    def save_token(token):
        stored.clear()
        stored.update(token)

    return api_client, AccountingApi(api_client, base_url=sandbox.xero_api_url), stored


def test_a_read_with_where_order_page_statuses_and_ids(firm, sdk):
    _, accounting, _ = sdk
    ids = [firm["by_number"][n]["xero_invoice_id"] for n in ("SDK-1", "SDK-2", "SDK-3")]
    answer = accounting.get_invoices(
        firm["tenant"],
        where='Type=="ACCREC" AND Total>=200',
        order="Total DESC",
        page=1,
        statuses=["AUTHORISED", "PAID"],
        i_ds=ids,
        summary_only=False,
        include_archived=True,
        created_by_my_app=False,
        unitdp=4,
        page_size=10,
        search_term="SDK",
    )
    assert [i.invoice_number for i in answer.invoices] == ["SDK-3", "SDK-2"]
    assert answer.pagination.item_count == 2
    assert answer.invoices[0].line_items[0].unit_amount == pytest.approx(300.0)


def test_a_payment_delete(sandbox, firm, sdk):
    _, accounting, _ = sdk
    payment_id = firm["by_number"]["SDK-1"]["payments"][0]["xero_payment_id"]
    answer = accounting.delete_payment(
        firm["tenant"], payment_id, PaymentDelete(status="DELETED"), idempotency_key="sdk-del"
    )
    assert answer.payments[0].status == "DELETED"
    assert sandbox.xero_payment(payment_id)["Status"] == "DELETED"


def test_a_void(sandbox, firm, sdk):
    _, accounting, _ = sdk
    invoice_id = firm["by_number"]["SDK-2"]["xero_invoice_id"]
    invoices = Invoices(invoices=[Invoice(invoice_id=invoice_id, status="VOIDED")])
    answer = accounting.update_invoice(firm["tenant"], invoice_id, invoices)
    assert answer.invoices[0].status == "VOIDED"
    assert sandbox.xero_invoice(invoice_id)["Status"] == "VOIDED"


def test_a_refused_void_carries_xeros_message(firm, sdk):
    _, accounting, _ = sdk
    invoice_id = firm["by_number"]["SDK-1"]["xero_invoice_id"]
    invoices = Invoices(invoices=[Invoice(invoice_id=invoice_id, status="VOIDED")])
    with pytest.raises(AccountingBadRequestException) as refused:
        accounting.update_invoice(firm["tenant"], invoice_id, invoices)
    error = refused.value.error_data  # Xero's Error body, as the SDK hands it over
    assert error["Type"] == "ValidationException"
    assert error["Elements"][0]["ValidationErrors"][0]["Message"] == ALLOCATED


def test_a_batch_update_without_summarised_errors_answers_mixed_results(sandbox, firm, sdk):
    _, accounting, _ = sdk
    by_number = firm["by_number"]
    invoices = Invoices(
        invoices=[
            Invoice(invoice_id=by_number["SDK-3"]["xero_invoice_id"], status="VOIDED"),
            Invoice(invoice_id=by_number["SDK-1"]["xero_invoice_id"], status="VOIDED"),
            Invoice(invoice_id=by_number["SDK-4"]["xero_invoice_id"], status="DELETED"),
            Invoice(invoice_id=by_number["SDK-OLD"]["xero_invoice_id"], status="VOIDED"),
        ]
    )
    # The SDK sends summarizeErrors=False (a capital F): Xero reads it as false.
    answer = accounting.update_or_create_invoices(
        firm["tenant"], invoices, summarize_errors=False, idempotency_key="sdk-batch"
    )
    assert [bool(i.has_errors) for i in answer.invoices] == [False, True, False, True]
    assert answer.invoices[1].validation_errors[0].message == ALLOCATED
    assert "lock date" in answer.invoices[3].validation_errors[0].message
    assert sandbox.xero_invoice(by_number["SDK-3"]["xero_invoice_id"])["Status"] == "VOIDED"
    (logged,) = sandbox.requests(api="xero", method="POST", path_contains="/Invoices")
    assert "summarizeErrors=False" in logged["query"]


def test_a_token_refresh(sandbox, firm, sdk):
    api_client, accounting, stored = sdk
    first = stored["refresh_token"]
    refreshed = api_client.refresh_oauth2_token()
    assert refreshed["access_token"] and refreshed["refresh_token"] != first
    assert stored["access_token"] == refreshed["access_token"]
    assert accounting.get_organisations(firm["tenant"]).organisations[0].name == "SDK Legal"
    (grant,) = sandbox.requests(path_contains="/connect/token")
    assert grant["status"] == 200 and grant["client_id"] == "sdk-app"


def test_connections_and_disconnecting(sandbox, firm, sdk):
    api_client, _, _ = sdk
    identity = IdentityApi(api_client, base_url=f"{sandbox.base_url}/xero/api")
    (connection,) = identity.get_connections()
    assert str(connection.tenant_id) == firm["tenant"]
    identity.delete_connection(connection.id)
    assert identity.get_connections() == []
    api_client.revoke_oauth2_token()
    (revocation,) = sandbox.requests(path_contains="/connect/revocation")
    assert revocation["status"] == 200
