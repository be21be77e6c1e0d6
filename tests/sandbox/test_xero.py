"""Xero's invoices and payments: status rules, reads, errors; every answer against the schemas."""

import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import jsonschema
import pytest

from tests.sandbox.support import exact, schema

PAID = {"total": "200.00", "payments": [{"amount": "200.00"}]}
PART_PAID = {"total": "200.00", "payments": [{"amount": "50.00"}]}


def valid(answer, name: str) -> dict:
    body = answer.json()
    jsonschema.validate(body, schema(name))
    return body


def messages(answer) -> list[str]:
    assert answer.status_code == 400, answer.text
    body = valid(answer, "validation_error")
    return [
        error["Message"] for element in body["Elements"] for error in element["ValidationErrors"]
    ]


@pytest.fixture
def firm(sandbox, xero):
    """One invoice in each state Xero distinguishes, by number."""
    built = sandbox.build(
        [
            {"number": "DRAFT-1", "total": "100.00", "xero_status": "DRAFT"},
            {"number": "SUB-1", "total": "100.00", "xero_status": "SUBMITTED"},
            {"number": "AUTH-1", "total": "100.00"},
            {"number": "PART-1", **PART_PAID},
            {"number": "PAID-1", **PAID},
            {"number": "CRED-1", "total": "100.00", "amount_credited": "20.00"},
            {"number": "VOID-1", "total": "100.00", "xero_status": "VOIDED"},
            {"number": "BATCH-1", "total": "60.00", "payments": [{"batch": "b"}]},
            {"number": "BATCH-2", "total": "40.00", "payments": [{"batch": "b"}]},
        ]
    )
    built["by_number"] = {bill["number"]: bill for bill in built["bills"]}
    built["api"] = xero(built["firm"]["tenantId"])
    return built


def set_status(firm, number: str, status: str):
    invoice_id = firm["by_number"][number]["xero_invoice_id"]
    body = {"Invoices": [{"InvoiceID": invoice_id, "Status": status}]}
    return firm["api"].post(f"/Invoices/{invoice_id}", body)


NOT_VALID = "Invoice not of valid status for modification"
ALLOCATED = "This document cannot be edited as it has a payment or credit note allocated to it"


@pytest.mark.parametrize(
    ("number", "status", "refused"),
    [
        ("DRAFT-1", "DELETED", None),
        ("SUB-1", "DELETED", None),
        ("AUTH-1", "VOIDED", None),
        ("DRAFT-1", "VOIDED", NOT_VALID),
        ("AUTH-1", "DELETED", NOT_VALID),
        ("PART-1", "VOIDED", ALLOCATED),
        ("PAID-1", "VOIDED", ALLOCATED),
        ("PAID-1", "AUTHORISED", NOT_VALID),
        ("CRED-1", "VOIDED", ALLOCATED),
        ("VOID-1", "VOIDED", NOT_VALID),
        ("VOID-1", "AUTHORISED", NOT_VALID),
        ("AUTH-1", "PAID", NOT_VALID),
    ],
)
def test_status_rules(sandbox, firm, number, status, refused):
    before = sandbox.xero_invoice(firm["by_number"][number]["xero_invoice_id"])
    answer = set_status(firm, number, status)
    after = sandbox.xero_invoice(firm["by_number"][number]["xero_invoice_id"])
    if refused:
        assert messages(answer) == [refused]
        assert after == before
    else:
        assert answer.status_code == 200, answer.text
        (invoice,) = valid(answer, "invoices")["Invoices"]
        assert invoice["Status"] == after["Status"] == status
        assert after["UpdatedDateUTC"] > before["UpdatedDateUTC"]


def test_deleting_the_payment_of_a_paid_invoice_makes_it_authorised(sandbox, firm):
    bill = firm["by_number"]["PAID-1"]
    payment_id = bill["payments"][0]["xero_payment_id"]
    answer = firm["api"].post(f"/Payments/{payment_id}", {"Status": "DELETED"})
    assert answer.status_code == 200, answer.text
    (payment,) = valid(answer, "payments")["Payments"]
    assert payment["Status"] == "DELETED" and payment["PaymentID"] == payment_id

    invoice = sandbox.xero_invoice(bill["xero_invoice_id"])
    assert invoice["Status"] == "AUTHORISED"
    assert (invoice["AmountPaid"], invoice["AmountDue"], invoice["Payments"]) == (0, 200, [])
    assert "FullyPaidOnDate" not in invoice
    assert set_status(firm, "PAID-1", "VOIDED").status_code == 200

    again = firm["api"].post(f"/Payments/{payment_id}", {"Payments": [{"Status": "DELETED"}]})
    assert messages(again) == ["This payment has already been deleted"]


def test_a_partial_payment_lowers_amount_paid_when_deleted(sandbox, firm):
    bill = firm["by_number"]["PART-1"]
    firm["api"].post(f"/Payments/{bill['payments'][0]['xero_payment_id']}", {"Status": "DELETED"})
    invoice = sandbox.xero_invoice(bill["xero_invoice_id"])
    assert (invoice["Status"], invoice["AmountPaid"], invoice["AmountDue"]) == (
        "AUTHORISED",
        0,
        200,
    )


def test_a_batch_payment_cannot_be_deleted_alone(sandbox, firm):
    bill = firm["by_number"]["BATCH-1"]
    payment = bill["payments"][0]
    assert (
        payment["batch_payment_id"]
        == firm["by_number"]["BATCH-2"]["payments"][0]["batch_payment_id"]
    )
    answer = firm["api"].post(f"/Payments/{payment['xero_payment_id']}", {"Status": "DELETED"})
    assert messages(answer) == [
        "Payments that are part of a batch payment cannot be deleted individually"
    ]
    assert sandbox.xero_payment(payment["xero_payment_id"])["Status"] == "AUTHORISED"
    fetched = firm["api"].get(f"/Payments/{payment['xero_payment_id']}")
    assert (
        valid(fetched, "payments")["Payments"][0]["BatchPaymentID"] == payment["batch_payment_id"]
    )


def test_a_payment_takes_only_status_deleted(firm):
    payment_id = firm["by_number"]["PAID-1"]["payments"][0]["xero_payment_id"]
    answer = firm["api"].post(f"/Payments/{payment_id}", {"Status": "DELETED", "Amount": 1})
    assert messages(answer) == ['A payment can only be given {"Status": "DELETED"}']


def test_many_invoices_at_once_with_errors_per_element(sandbox, firm):
    ids = {n: firm["by_number"][n]["xero_invoice_id"] for n in ("AUTH-1", "PAID-1", "SUB-1")}
    body = {
        "Invoices": [
            {"InvoiceID": ids["AUTH-1"], "Status": "VOIDED"},
            {"InvoiceID": ids["PAID-1"], "Status": "VOIDED"},
            {"InvoiceID": ids["SUB-1"], "Status": "DELETED"},
            {"InvoiceID": str(uuid.uuid4()), "Status": "VOIDED"},
        ]
    }
    answer = firm["api"].post("/Invoices", body, params={"summarizeErrors": "false"})
    assert answer.status_code == 200
    elements = valid(answer, "invoices")["Invoices"]
    assert [e.get("HasErrors", False) for e in elements] == [False, True, False, True]
    assert elements[1]["ValidationErrors"] == [{"Message": ALLOCATED}]
    assert elements[1]["StatusAttributeString"] == "ERROR"
    assert [sandbox.xero_invoice(i)["Status"] for i in ids.values()] == [
        "VOIDED",
        "PAID",
        "DELETED",
    ]


def test_summarised_errors_refuse_the_whole_batch(sandbox, firm):
    ids = [firm["by_number"][n]["xero_invoice_id"] for n in ("AUTH-1", "PAID-1")]
    body = {"Invoices": [{"InvoiceID": i, "Status": "VOIDED"} for i in ids]}
    answer = firm["api"].post("/Invoices", body)
    assert messages(answer) == [ALLOCATED]
    assert sandbox.xero_invoice(ids[0])["Status"] == "AUTHORISED"


def test_read_only_and_unknown_fields_are_ignored_as_xero_ignores_them(sandbox, firm):
    """A client may post back the invoice it read, with the status changed."""
    invoice_id = firm["by_number"]["AUTH-1"]["xero_invoice_id"]
    (read,) = firm["api"].get(f"/Invoices/{invoice_id}").json()["Invoices"]
    body = {"Invoices": [{**read, "Status": "VOIDED", "AmountDue": 1, "Colour": "red"}]}
    answer = firm["api"].post(f"/Invoices/{invoice_id}", body)
    assert answer.status_code == 200, answer.text
    (element,) = answer.json()["Invoices"]
    assert element["Status"] == "VOIDED" and "Warnings" not in element
    assert sandbox.xero_invoice(invoice_id)["Total"] == 100


def test_writable_fields_are_changed_or_named_in_warnings(sandbox, firm):
    invoice_id = firm["by_number"]["SUB-1"]["xero_invoice_id"]
    body = {"InvoiceID": invoice_id, "Reference": "edited", "Url": "https://example.com/x"}
    answer = firm["api"].post(f"/Invoices/{invoice_id}", {"Invoices": [body]})
    (element,) = answer.json()["Invoices"]
    assert element["Reference"] == "edited"
    assert element["Warnings"] == [{"Message": "The sandbox does not keep Url: not changed"}]


def test_reading_invoices_by_ids_numbers_statuses_and_where(firm):
    api, by_number = firm["api"], firm["by_number"]
    ids = ",".join(by_number[n]["xero_invoice_id"] for n in ("AUTH-1", "PAID-1"))
    by_ids = valid(api.get("/Invoices", params={"IDs": ids}), "invoices")["Invoices"]
    assert sorted(i["InvoiceNumber"] for i in by_ids) == ["AUTH-1", "PAID-1"]
    assert all("LineItems" not in invoice for invoice in by_ids)

    numbers = api.get("/Invoices", params={"InvoiceNumbers": "DRAFT-1,SUB-1"})
    assert [i["Status"] for i in valid(numbers, "invoices")["Invoices"]] == ["DRAFT", "SUBMITTED"]
    statuses = api.get("/Invoices", params={"Statuses": "PAID,VOIDED"})
    assert {i["InvoiceNumber"] for i in valid(statuses, "invoices")["Invoices"]} == {
        "PAID-1",
        "VOID-1",
        "BATCH-1",
        "BATCH-2",
    }
    where = 'Status=="AUTHORISED" AND Type=="ACCREC" && AmountPaid > 0'
    found = valid(api.get("/Invoices", params={"where": where}), "invoices")["Invoices"]
    assert [i["InvoiceNumber"] for i in found] == ["PART-1"]
    contains = api.get("/Invoices", params={"where": 'InvoiceNumber.StartsWith("BATCH")'})
    assert len(contains.json()["Invoices"]) == 2


def test_more_than_50_ids_is_a_404_as_on_xero(firm):
    fifty = ",".join(str(uuid.uuid4()) for _ in range(50))
    assert firm["api"].get("/Invoices", params={"IDs": fifty}).json()["Invoices"] == []
    answer = firm["api"].get("/Invoices", params={"IDs": f"{fifty},{uuid.uuid4()}"})
    assert answer.status_code == 404
    assert not answer.headers["Content-Type"].startswith("application/json")


def test_unknown_ids_are_404_without_json(firm):
    for path in (f"/Invoices/{uuid.uuid4()}", f"/Payments/{uuid.uuid4()}"):
        answer = firm["api"].get(path)
        assert answer.status_code == 404 and answer.headers["Content-Type"].startswith("text/")
    assert firm["api"].post(f"/Payments/{uuid.uuid4()}", {"Status": "DELETED"}).status_code == 404


def test_one_invoice_by_id_or_number_has_its_payments_and_line_items(firm):
    bill = firm["by_number"]["PART-1"]
    (invoice,) = valid(firm["api"].get(f"/Invoices/{bill['xero_invoice_id']}"), "invoices")[
        "Invoices"
    ]
    assert invoice["Payments"][0]["PaymentID"] == bill["payments"][0]["xero_payment_id"]
    assert invoice["LineItems"][0]["LineAmount"] + invoice["TotalTax"] == invoice["Total"]
    assert invoice["Date"].startswith("/Date(") and invoice["Date"].endswith("+0000)/")
    by_number = firm["api"].get("/Invoices/PART-1").json()["Invoices"]
    assert [i["InvoiceID"] for i in by_number] == [bill["xero_invoice_id"]]


def test_paging_summary_only_and_if_modified_since(sandbox, firm):
    api = firm["api"]
    first = valid(api.get("/Invoices", params={"page": 1, "pageSize": 4}), "invoices")
    assert first["pagination"] == {"page": 1, "pageSize": 4, "pageCount": 3, "itemCount": 9}
    assert len(first["Invoices"]) == 4 and "LineItems" in first["Invoices"][0]
    third = api.get("/Invoices", params={"page": 3, "pageSize": 4}).json()
    assert len(third["Invoices"]) == 1

    summary = valid(api.get("/Invoices", params={"summaryOnly": "true"}), "invoices")
    assert all("Payments" not in i and "LineItems" not in i for i in summary["Invoices"])

    soon = datetime.now(UTC) - timedelta(seconds=1)
    set_status(firm, "AUTH-1", "VOIDED")
    for header in (soon.isoformat(), format_datetime(soon - timedelta(seconds=1), usegmt=True)):
        changed = api.get("/Invoices", headers={"If-Modified-Since": header}).json()["Invoices"]
        assert [i["InvoiceNumber"] for i in changed] == ["AUTH-1"]


def test_reading_payments(firm):
    api = firm["api"]
    everything = valid(api.get("/Payments"), "payments")["Payments"]
    assert len(everything) == 4
    paged = valid(api.get("/Payments", params={"page": 1, "pageSize": 3}), "payments")
    assert paged["pagination"]["itemCount"] == 4 and len(paged["Payments"]) == 3
    part = firm["by_number"]["PART-1"]
    where = f'Invoice.InvoiceID==Guid("{part["xero_invoice_id"]}")'
    (payment,) = valid(api.get("/Payments", params={"where": where}), "payments")["Payments"]
    assert exact(api.get(f"/Payments/{payment['PaymentID']}"))["Payments"][0]["Amount"] == 50
    batch = api.get("/Payments", params={"where": "BatchPaymentID != null"}).json()
    assert len(batch["Payments"]) == 2


def test_a_bad_where_is_a_query_parse_exception(firm):
    answer = firm["api"].get("/Invoices", params={"where": "Colour == 'red'"})
    assert answer.status_code == 400
    assert answer.json()["Type"] == "QueryParseException"


def test_tenant_and_accept_headers_are_required(sandbox, firm):
    api = firm["api"]
    missing = api.get("/Invoices", headers={"Xero-tenant-id": ""})
    assert missing.status_code == 403 and missing.json()["Detail"] == "AuthenticationUnsuccessful"
    other = api.get("/Invoices", headers={"Xero-tenant-id": str(uuid.uuid4())})
    assert other.status_code == 403
    assert api.get("/Invoices", headers={"Accept": "*/*"}).status_code == 406


def test_money_on_the_wire_has_two_decimals(firm):
    text = firm["api"].get(f"/Invoices/{firm['by_number']['PART-1']['xero_invoice_id']}").text
    assert '"Total":200.00' in text and '"AmountPaid":50.00' in text
