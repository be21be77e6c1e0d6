"""XeroClient against recorded answers shaped like Xero's OpenAPI examples."""

from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from django.test import override_settings
from responses import matchers

from unlinker.integrations.errors import AuthExpired, NotFound, ValidationFailed
from unlinker.integrations.records import XeroLimits
from unlinker.integrations.xero import connections

from .conftest import TENANT, XERO_API

INVOICES = f"{XERO_API}/Invoices"
PAYMENTS = f"{XERO_API}/Payments"


def invoice(n, status="AUTHORISED", **extra):
    return {
        "Type": "ACCREC",
        "InvoiceID": f"00000000-0000-0000-0000-{n:012d}",
        "InvoiceNumber": f"INV-{n:04d}",
        "Status": status,
        "Total": 110.25,  # on the wire: JSON numbers
        "AmountPaid": 0,
        "Date": "/Date(1552953600000+0000)/",
        "UpdatedDateUTC": "/Date(1541176290160+0000)/",
        **extra,
    }


def validation_exception(*messages):
    return {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": [{"ValidationErrors": [{"Message": m} for m in messages]}],
    }


def test_headers(mocked, xero):
    mocked.get(
        INVOICES,
        json={"Invoices": []},
        match=[
            matchers.header_matcher(
                {
                    "Xero-tenant-id": TENANT,
                    "Accept": "application/json",
                    "Authorization": "Bearer token-1",
                }
            )
        ],
    )
    assert xero.get_invoices() == []


def test_get_invoices_query(mocked, xero):
    since = datetime(2025, 3, 1, 14, 0, tzinfo=UTC)
    mocked.get(
        INVOICES,
        json={"Invoices": [invoice(1)]},
        match=[
            matchers.query_param_matcher(
                {
                    "InvoiceNumbers": "INV-0001,INV-0002",
                    "Statuses": "AUTHORISED,PAID",
                    "where": 'Type=="ACCREC"',
                    "page": "2",
                    "summaryOnly": "true",
                }
            ),
            matchers.header_matcher({"If-Modified-Since": "2025-03-01T14:00:00+00:00"}),
        ],
    )
    (found,) = xero.get_invoices(
        numbers=["INV-0001", "INV-0002"],
        statuses=["AUTHORISED", "PAID"],
        where='Type=="ACCREC"',
        page=2,
        modified_since=since,
        summary_only=True,
    )
    assert found.number == "INV-0001" and found.total == Decimal("110.25")


def test_more_than_50_ids_are_chunked(mocked, xero):
    asked = []

    def answer(request):
        ids = parse_qs(urlsplit(request.url).query)["IDs"][0].split(",")
        asked.append(ids)
        if len(ids) > 50:
            return 404, {}, "Not Found"
        elements = ",".join(f'{{"InvoiceID": "{i}", "Status": "PAID", "Total": 1.10}}' for i in ids)
        return 200, {}, f'{{"Invoices": [{elements}]}}'

    mocked.add_callback("GET", INVOICES, callback=answer)
    ids = [f"id-{n}" for n in range(120)]
    found = xero.get_invoices_by_ids(ids)
    assert [len(chunk) for chunk in asked] == [50, 50, 20]
    assert [i.invoice_id for i in found] == ids
    assert found[0].total == Decimal("1.10")
    with pytest.raises(ValueError):
        xero.get_invoices(ids=ids)


def test_iter_invoices_pages_to_the_end(mocked, xero):
    for page, count in ((1, 100), (2, 100), (3, 7)):
        mocked.get(
            INVOICES,
            json={"Invoices": [invoice(page * 1000 + n) for n in range(count)]},
            match=[matchers.query_param_matcher({"page": str(page), "Statuses": "PAID"})],
        )
    assert len(list(xero.iter_invoices(statuses=["PAID"]))) == 207
    assert xero.requests_made == 3


def test_bulk_status_change_reports_every_element(mocked, xero):
    ok, refused = invoice(1), invoice(2)
    mocked.post(
        INVOICES,
        json={
            "Invoices": [
                {**ok, "Status": "VOIDED"},
                {
                    **refused,
                    "HasErrors": True,
                    "StatusAttributeString": "ERROR",
                    "ValidationErrors": [
                        {
                            "Message": "This document cannot be edited as it has a payment "
                            "or credit note allocated to it"
                        }
                    ],
                },
            ]
        },
        match=[
            matchers.query_param_matcher({"summarizeErrors": "false"}),
            matchers.header_matcher({"Idempotency-Key": "batch-7"}),
            matchers.json_params_matcher(
                {
                    "Invoices": [
                        {"InvoiceID": ok["InvoiceID"], "Status": "VOIDED"},
                        {"InvoiceID": refused["InvoiceID"], "Status": "VOIDED"},
                    ]
                }
            ),
        ],
    )
    results = xero.update_invoice_statuses(
        [(ok["InvoiceID"], "VOIDED"), (refused["InvoiceID"], "VOIDED")], idempotency_key="batch-7"
    )
    assert [(r.ok, r.status) for r in results] == [(True, "VOIDED"), (False, "AUTHORISED")]
    assert "payment or credit note" in results[1].messages[0]
    assert results[0].messages == ()


def test_bulk_status_change_with_an_element_missing_from_the_answer(mocked, xero):
    mocked.post(INVOICES, json={"Invoices": [{"InvoiceID": "b", "Status": "DELETED"}]})
    results = xero.update_invoice_statuses([("a", "DELETED"), ("b", "DELETED")], "k")
    assert [r.ok for r in results] == [False, False]
    assert results[0].messages == ("missing from Xero's answer",)


def test_validation_exception_carries_xeros_messages(mocked, xero, sleeps):
    mocked.post(
        f"{XERO_API}/Payments/p-1",
        status=400,
        json=validation_exception("Payment not of valid status for modification"),
    )
    with pytest.raises(ValidationFailed) as caught:
        xero.delete_payment("p-1", "k")
    assert caught.value.messages == ["Payment not of valid status for modification"]
    assert caught.value.status == 400 and sleeps == []


def test_idempotency_key_is_required_and_bounded(xero):
    with pytest.raises(ValueError):
        xero.delete_payment("p-1", idempotency_key="")
    with pytest.raises(ValueError):
        xero.update_invoice_statuses([("i-1", "VOIDED")], "k" * 129)
    assert xero.requests_made == 0


def test_payments(mocked, xero):
    payment = {
        "PaymentID": "p-1",
        "Date": "/Date(1543449600000+0000)/",
        "Amount": 46.1,
        "Reference": "",
        "Status": "AUTHORISED",
        "PaymentType": "ACCRECPAYMENT",
        "BatchPaymentID": "b-1",
        "Invoice": {"InvoiceID": "i-1", "InvoiceNumber": "INV-0002"},
        "UpdatedDateUTC": "/Date(1541176592690+0000)/",
    }
    mocked.get(f"{PAYMENTS}/p-1", json={"Payments": [payment]})
    mocked.get(
        PAYMENTS,
        json={"Payments": [payment]},
        match=[matchers.query_param_matcher({"where": 'Status=="AUTHORISED"', "page": "1"})],
    )
    fetched = xero.get_payment("p-1")
    assert (fetched.amount, fetched.batch_payment_id, fetched.invoice_id) == (
        Decimal("46.1"),
        "b-1",
        "i-1",
    )
    assert [p.payment_id for p in xero.iter_payments(where='Status=="AUTHORISED"')] == ["p-1"]


def test_delete_payment(mocked, xero):
    mocked.post(
        f"{PAYMENTS}/p-1",
        json={"Payments": [{"PaymentID": "p-1", "Status": "DELETED", "Amount": 46.0}]},
        match=[
            matchers.json_params_matcher({"Status": "DELETED"}),
            matchers.header_matcher({"Idempotency-Key": "del-p-1"}),
        ],
    )
    assert xero.delete_payment("p-1", idempotency_key="del-p-1").status == "DELETED"


def test_batch_payment_refusal(mocked, xero):
    message = "Payments that are part of a batch payment cannot be deleted individually"
    mocked.post(f"{PAYMENTS}/p-2", status=400, json=validation_exception(message))
    with pytest.raises(ValidationFailed) as caught:
        xero.delete_payment("p-2", idempotency_key="k")
    assert caught.value.messages == [message]


def test_unknown_ids_are_not_found(mocked, xero):
    mocked.get(f"{PAYMENTS}/nope", status=404, body="<html>Not Found</html>")
    mocked.post(f"{PAYMENTS}/nope", status=404, body="Not Found", content_type="text/plain")
    with pytest.raises(NotFound):
        xero.get_payment("nope")
    with pytest.raises(NotFound):
        xero.delete_payment("nope", idempotency_key="k")


def test_rate_limit_headers_are_recorded(mocked, xero):
    assert xero.last_limits is None
    mocked.get(
        INVOICES,
        json={"Invoices": []},
        headers={
            "X-MinLimit-Remaining": "58",
            "X-DayLimit-Remaining": "4990",
            "X-AppMinLimit-Remaining": "9999",
        },
    )
    xero.get_invoices()
    assert xero.last_limits == XeroLimits(58, 4990, 9999)


@override_settings(XERO_CONNECTIONS_URL="https://xero.test/connections")
def test_connections_with_a_bare_access_token(mocked):
    mocked.get(
        "https://xero.test/connections",
        json=[
            {
                "id": "c-1",
                "tenantId": "t-1",
                "tenantName": "Smith & Co",
                "tenantType": "ORGANISATION",
            }
        ],
        match=[matchers.header_matcher({"Authorization": "Bearer fresh-token"})],
    )
    (tenant,) = connections("fresh-token")
    assert (tenant.tenant_id, tenant.name, tenant.type) == ("t-1", "Smith & Co", "ORGANISATION")
    assert "Xero-tenant-id" not in mocked.calls[0].request.headers


@override_settings(XERO_CONNECTIONS_URL="https://xero.test/connections")
def test_connections_with_a_refused_bare_token(mocked):
    mocked.add(responses.GET, "https://xero.test/connections", status=401)
    with pytest.raises(AuthExpired):
        connections("stale-token")
