"""Every answer the sandbox gives, for every Xero endpoint the product uses, against Xero's own
OpenAPI description (vendored in tests/contract/xero/, MIT): the client under test drives the
sandbox and every response it receives is checked, refusals included."""

import contextlib
import json
from datetime import date, timedelta
from urllib.parse import urlsplit

import pytest
import requests

from tests.contract import openapi
from unlinker.integrations.errors import ApiError
from unlinker.integrations.records import InvoiceChange
from unlinker.integrations.tokens import StaticTokenSource
from unlinker.integrations.xero import XeroClient, delete_connection

ACCOUNTING_PREFIX = "/xero/api/api.xro/2.0"
IDENTITY_PREFIX = "/xero/api"
# The operations the product calls (unlinker/integrations/xero.py) and the sandbox serves.
USED = {
    "getInvoices",
    "getInvoice",
    "updateOrCreateInvoices",
    "updateInvoice",
    "getInvoiceHistory",
    "createInvoiceHistory",
    "getPayments",
    "getPayment",
    "deletePayment",
    "getPaymentHistory",
    "createPaymentHistory",
    "getOrganisations",
    "getCreditNote",
    "getCreditNotes",
    "deleteCreditNoteAllocations",
    "getPrepayment",
    "getPrepayments",
    "deletePrepaymentAllocations",
    "getOverpayment",
    "getOverpayments",
    "deleteOverpaymentAllocations",
    "getBatchPayment",
    "getBatchPayments",
    "getConnections",
    "deleteConnection",
}


class Recorder:
    """A requests response hook keeping what every answer was."""

    def __init__(self):
        self.answers = []

    def __call__(self, response, *args, **kwargs):
        path = urlsplit(response.request.url).path
        body = None
        if response.headers.get("Content-Type", "").startswith("application/json"):
            body = json.loads(response.content)
        self.answers.append((response.request.method, path, response.status_code, body))
        return response

    def validate(self) -> set[str]:
        seen = set()
        for method, path, status, body in self.answers:
            if path.startswith(ACCOUNTING_PREFIX):
                api, path = "accounting", path[len(ACCOUNTING_PREFIX) :]
            else:
                api, path = "identity", path[len(IDENTITY_PREFIX) :]
            operation = openapi.validate(api, method, path, status, body)
            seen.add(operation.operation_id)
        return seen


@pytest.fixture
def firm(upstream):
    old = (date.today() - timedelta(days=90)).isoformat()
    built = upstream.build(
        [
            {"number": "A-1", "total": "110.00", "payments": [{"amount": "10.00"}]},
            {"number": "A-2", "total": "220.00"},
            {"number": "OLD", "total": "50.00", "invoice_date": old},
            {
                "number": "CREDITED",
                "total": "300.00",
                "allocations": [
                    {"kind": "CREDITNOTE", "amount": "30.00"},
                    {"kind": "PREPAYMENT", "amount": "40.00"},
                    {"kind": "OVERPAYMENT", "amount": "50.00"},
                ],
            },
            {"number": "B-1", "total": "60.00", "payments": [{"batch": "b"}]},
        ],
        organisation={"period_lock_date": (date.today() - timedelta(days=60)).isoformat()},
    )
    built["by_number"] = {bill["number"]: bill for bill in built["bills"]}
    return built


def test_every_answer_of_every_endpoint_used_matches_xeros_description(upstream, firm):
    recorder = Recorder()
    token = upstream.issue_tokens("xero")["access_token"]
    xero = XeroClient(firm["firm"]["tenantId"], StaticTokenSource(token), timeout=10)
    xero.session.hooks["response"].append(recorder)
    ids = {number: bill["xero_invoice_id"] for number, bill in firm["by_number"].items()}
    payment = firm["by_number"]["A-1"]["payments"][0]["xero_payment_id"]
    batch = firm["by_number"]["B-1"]["payments"][0]["batch_payment_id"]

    def attempt(call):
        # refusals are answers too: they are validated with the rest
        with contextlib.suppress(ApiError, ValueError):
            call()

    xero.get_invoices(ids=list(ids.values()))
    xero.get_invoices(page=1, where='Type=="ACCREC"', statuses=["AUTHORISED", "PAID"])
    xero.get_invoices(page=1, summary_only=True)
    xero.request("GET", f"{xero.api_url}/Invoices/{ids['A-2']}", params={"unitdp": 4})
    xero.get_payments(where="Amount > 0", page=1)
    xero.get_payment(payment)
    xero.get_organisation()
    xero.get_batch_payment(batch)
    xero.request("GET", f"{xero.api_url}/BatchPayments")
    for path in ("CreditNotes", "Prepayments", "Overpayments"):
        xero.request("GET", f"{xero.api_url}/{path}", params={"page": 1})
    for allocation in xero.get_allocations(ids["CREDITED"]):
        attempt(
            lambda a=allocation: xero.delete_allocation(
                a.kind, a.document_id, a.allocation_id, f"d-{a.allocation_id}"
            )
        )
        attempt(
            lambda a=allocation: xero.delete_allocation(
                a.kind, a.document_id, a.allocation_id, f"again-{a.allocation_id}"
            )
        )
    xero.add_invoice_note(ids["A-2"], "Voided by Unlinker", "note-a2")
    xero.add_payment_note(payment, "Deleted by Unlinker", "note-p")
    attempt(lambda: xero.add_payment_note(payment, " x ", "note-p2"))
    xero.get_invoice_history(ids["A-2"])
    xero.get_payment_history(payment)
    attempt(lambda: xero.update_invoice(ids["A-1"], "void-paid", status="VOIDED"))
    attempt(lambda: xero.update_invoice(ids["OLD"], "void-locked", status="VOIDED"))
    xero.update_invoice(ids["A-2"], "rename-void", status="VOIDED", number="A-2-VOID")
    xero.update_invoices(
        [InvoiceChange(ids["CREDITED"], status="VOIDED"), InvoiceChange(ids["A-1"], "VOIDED")],
        "bulk",
    )
    attempt(
        lambda: xero.request(
            "POST",
            f"{xero.api_url}/Invoices",
            body={"Invoices": [{"InvoiceID": ids["A-1"], "Status": "VOIDED"}]},
        )
    )
    xero.delete_payment(payment, "delete-payment")
    attempt(
        lambda: xero.delete_payment(
            firm["by_number"]["B-1"]["payments"][0]["xero_payment_id"], "batch"
        )
    )

    identity = requests.Session()
    identity.hooks["response"].append(recorder)
    headers = {"Authorization": f"Bearer {token}"}
    (connection,) = identity.get(upstream.xero_connections_url, headers=headers, timeout=10).json()
    identity.get(f"{upstream.base_url}/xero/api/Connections", headers=headers, timeout=10)
    identity.delete(
        f"{upstream.xero_connections_url}/{connection['id']}", headers=headers, timeout=10
    )
    identity.delete(
        f"{upstream.xero_connections_url}/{connection['id']}", headers=headers, timeout=10
    )
    delete_connection(token, connection["id"])

    seen = recorder.validate()
    assert seen >= USED, f"not exercised: {sorted(USED - seen)}"
    statuses = {status for _, _, status, _ in recorder.answers}
    assert {200, 204, 400, 404} <= statuses


def test_the_validator_refuses_a_field_xero_does_not_describe():
    body = {"Invoices": [{"InvoiceID": "00000000-0000-0000-0000-000000000000", "Colour": "red"}]}
    with pytest.raises(AssertionError, match="Colour"):
        openapi.validate("accounting", "GET", "/Invoices", 200, body)
    with pytest.raises(AssertionError, match="Status"):
        openapi.validate("accounting", "GET", "/Invoices", 200, {"Invoices": [{"Status": "GONE"}]})
    with pytest.raises(AssertionError, match="not in Xero"):
        openapi.validate("accounting", "GET", "/Widgets", 200, {})
    with pytest.raises(AssertionError, match="does not list"):
        openapi.validate("accounting", "GET", "/Invoices", 201, {})
