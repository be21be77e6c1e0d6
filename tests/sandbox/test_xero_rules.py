"""The sandbox's Xero beyond statuses: the organisation and its lock dates, credit notes,
prepayments and overpayments allocated to invoices, batch payments, invoice numbers, history
notes, the documented query parameters, and booleans read as Xero reads them."""

import uuid
from datetime import date, timedelta

import pytest

from tests.sandbox.support import exact

TODAY = date.today()
LOCK = (TODAY - timedelta(days=40)).isoformat()
ALLOCATED = "This document cannot be edited as it has a payment or credit note allocated to it"


def locked_message(lock_date: str, kind: str = "period") -> str:
    shown = date.fromisoformat(lock_date).strftime("%d-%b-%Y")
    return f"The document date cannot be before the {kind} lock date, currently set at {shown}"


def element_messages(answer) -> list[str]:
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["Type"] == "ValidationException"
    return [e["Message"] for element in body["Elements"] for e in element["ValidationErrors"]]


@pytest.fixture
def firm(sandbox, xero):
    """OLD-1 and OLD-PAID are dated before the lock date, NEW-1 after it; CN-1, PRE-1 and
    OVER-1 carry one allocation each."""
    old = (TODAY - timedelta(days=60)).isoformat()
    built = sandbox.build(
        [
            {"number": "OLD-1", "total": "100.00", "invoice_date": old},
            {
                "number": "OLD-PAID",
                "total": "100.00",
                "invoice_date": old,
                "payments": [{"amount": "100.00", "date": old}],
            },
            {"number": "NEW-1", "total": "100.00", "invoice_date": TODAY.isoformat()},
            {"number": "CN-1", "allocations": [{"kind": "CREDITNOTE", "amount": "30.00"}]},
            {"number": "PRE-1", "allocations": [{"kind": "PREPAYMENT", "amount": "40.00"}]},
            {"number": "OVER-1", "allocations": [{"kind": "OVERPAYMENT", "amount": "50.00"}]},
            {"number": "BATCH-1", "total": "60.00", "payments": [{"batch": "b"}]},
            {"number": "BATCH-2", "total": "40.00", "payments": [{"batch": "b"}]},
        ],
        name="Lock & Key",
        organisation={"period_lock_date": LOCK},
    )
    built["by_number"] = {bill["number"]: bill for bill in built["bills"]}
    built["tenant"] = built["firm"]["tenantId"]
    built["api"] = xero(built["tenant"])
    return built


def void(firm, number, **extra):
    invoice_id = firm["by_number"][number]["xero_invoice_id"]
    body = {"Invoices": [{"InvoiceID": invoice_id, "Status": "VOIDED", **extra}]}
    return firm["api"].post(f"/Invoices/{invoice_id}", body)


# --- organisation and lock dates --------------------------------------------------------------


def test_the_organisation_has_its_lock_dates_timezone_and_currency(sandbox, firm):
    (org,) = firm["api"].get("/Organisation").json()["Organisations"]
    assert org["Name"] == "Lock & Key" and org["BaseCurrency"] == "AUD"
    assert org["Timezone"] == "EAUSTRALIASTANDARDTIME"
    assert org["PeriodLockDate"].startswith("/Date(") and "EndOfYearLockDate" not in org

    sandbox.set_organisation(firm["tenant"], end_of_year_lock_date="2024-06-30")
    (org,) = firm["api"].get("/Organisation").json()["Organisations"]
    assert org["EndOfYearLockDate"] == "/Date(1719705600000+0000)/"
    sandbox.set_organisation(firm["tenant"], period_lock_date=None, end_of_year_lock_date=None)
    assert "PeriodLockDate" not in firm["api"].get("/Organisation").json()["Organisations"][0]


def test_xero_refuses_to_void_or_delete_a_payment_dated_in_a_locked_period(sandbox, firm):
    assert element_messages(void(firm, "OLD-1")) == [locked_message(LOCK)]
    payment = firm["by_number"]["OLD-PAID"]["payments"][0]["xero_payment_id"]
    answer = firm["api"].post(f"/Payments/{payment}", {"Status": "DELETED"})
    assert element_messages(answer) == [locked_message(LOCK)]
    assert sandbox.xero_payment(payment)["Status"] == "AUTHORISED"
    assert void(firm, "NEW-1").status_code == 200

    # the end-of-year lock date wins when it is the later one
    sandbox.set_organisation(firm["tenant"], end_of_year_lock_date=TODAY.isoformat())
    assert element_messages(void(firm, "CN-1")) == [
        locked_message(TODAY.isoformat(), "end of year")
    ]


def test_a_draft_dated_in_a_locked_period_cannot_be_deleted(sandbox, xero):
    built = sandbox.build(
        [{"number": "D-1", "xero_status": "DRAFT", "invoice_date": "2024-01-31"}],
        organisation={"period_lock_date": "2024-01-31"},
    )
    api, (bill,) = xero(built["firm"]["tenantId"]), built["bills"]
    body = {"Invoices": [{"InvoiceID": bill["xero_invoice_id"], "Status": "DELETED"}]}
    answer = api.post("/Invoices", body, params={"summarizeErrors": "False"})
    assert answer.status_code == 200  # "False" is false, as Xero reads it
    (element,) = answer.json()["Invoices"]
    assert element["ValidationErrors"] == [{"Message": locked_message("2024-01-31")}]


# --- allocations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "kind", "path", "field"),
    [
        ("CN-1", "CREDITNOTE", "CreditNotes", "CreditNoteID"),
        ("PRE-1", "PREPAYMENT", "Prepayments", "PrepaymentID"),
        ("OVER-1", "OVERPAYMENT", "Overpayments", "OverpaymentID"),
    ],
)
def test_an_allocation_blocks_the_void_until_it_is_deleted(
    sandbox, firm, number, kind, path, field
):
    bill = firm["by_number"][number]
    (allocation,) = bill["allocations"]
    assert allocation["kind"] == kind
    (invoice,) = exact(firm["api"].get(f"/Invoices/{bill['xero_invoice_id']}"))["Invoices"]
    (applied,) = invoice[path]
    assert applied[field] == allocation["credit_id"]
    assert applied["AppliedAmount"] == invoice["AmountCredited"] == allocation["amount"] / 100
    assert invoice["AmountDue"] == invoice["Total"] - invoice["AmountCredited"]

    assert element_messages(void(firm, number)) == [ALLOCATED]

    (document,) = firm["api"].get(f"/{path}/{allocation['credit_id']}").json()[path]
    (listed,) = document["Allocations"]
    assert listed["AllocationID"] == allocation["allocation_id"]
    assert listed["Invoice"]["InvoiceID"] == bill["xero_invoice_id"]
    assert document["RemainingCredit"] == 0

    url = f"/{path}/{allocation['credit_id']}/Allocations/{allocation['allocation_id']}"
    deleted = firm["api"].delete(url)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["IsDeleted"] is True and deleted.json()["AllocationID"]
    again = firm["api"].delete(url)  # already deleted: the same answer, nothing changes
    assert again.status_code == 200 and again.json()["IsDeleted"] is True

    after = sandbox.xero_invoice(bill["xero_invoice_id"])
    assert after["AmountCredited"] == 0 and after[path] == []
    (document,) = firm["api"].get(f"/{path}/{allocation['credit_id']}").json()[path]
    assert (
        document["Allocations"] == [] and document["RemainingCredit"] == allocation["amount"] / 100
    )
    assert void(firm, number).status_code == 200


def test_allocations_are_listed_and_unknown_ones_are_404(firm):
    credit_notes = firm["api"].get("/CreditNotes", params={"where": 'Status=="PAID"'})
    assert [c["CreditNoteNumber"] for c in credit_notes.json()["CreditNotes"]] == ["CN-CN-1"]
    assert len(firm["api"].get("/Prepayments").json()["Prepayments"]) == 1
    assert len(firm["api"].get("/Overpayments", params={"page": 1}).json()["Overpayments"]) == 1
    credit = firm["by_number"]["CN-1"]["allocations"][0]["credit_id"]
    assert (
        firm["api"].delete(f"/CreditNotes/{credit}/Allocations/{uuid.uuid4()}").status_code == 404
    )
    assert firm["api"].get(f"/CreditNotes/{uuid.uuid4()}").status_code == 404


# --- batch payments -------------------------------------------------------------------------------


def test_a_batch_payment_names_every_invoice_it_pays(firm):
    payment = firm["by_number"]["BATCH-1"]["payments"][0]
    (batch,) = (
        firm["api"].get(f"/BatchPayments/{payment['batch_payment_id']}").json()["BatchPayments"]
    )
    assert batch["Type"] == "RECBATCH" and batch["TotalAmount"] == 100
    assert sorted(p["Invoice"]["InvoiceNumber"] for p in batch["Payments"]) == [
        "BATCH-1",
        "BATCH-2",
    ]
    listed = firm["api"].get("/BatchPayments", params={"where": "TotalAmount > 50"}).json()
    assert [b["BatchPaymentID"] for b in listed["BatchPayments"]] == [batch["BatchPaymentID"]]


# --- invoice numbers ------------------------------------------------------------------------------


def test_the_number_and_the_void_go_in_one_post(sandbox, firm):
    answer = void(firm, "NEW-1", InvoiceNumber="NEW-1-VOID")
    (element,) = answer.json()["Invoices"]
    assert (element["InvoiceNumber"], element["Status"]) == ("NEW-1-VOID", "VOIDED")
    assert sandbox.xero_invoices("NEW-1") == []


def test_a_refused_void_leaves_the_number_as_it_was(sandbox, firm):
    assert element_messages(void(firm, "CN-1", InvoiceNumber="CN-1-VOID")) == [ALLOCATED]
    assert [i["Status"] for i in sandbox.xero_invoices("CN-1")] == ["AUTHORISED"]


def test_a_number_must_stay_unique_and_a_paid_invoice_keeps_its_number(firm):
    new_id = firm["by_number"]["NEW-1"]["xero_invoice_id"]
    body = {"Invoices": [{"InvoiceID": new_id, "InvoiceNumber": "OLD-1"}]}
    assert element_messages(firm["api"].post("/Invoices", body)) == ["Invoice # must be unique."]
    paid_id = firm["by_number"]["BATCH-1"]["xero_invoice_id"]
    body = {"Invoices": [{"InvoiceID": paid_id, "InvoiceNumber": "B-1"}]}
    assert element_messages(firm["api"].post("/Invoices", body)) == [
        "Invoice not of valid status for modification"
    ]


# --- history and notes ---------------------------------------------------------------------------


def test_notes_on_invoices_and_payments(sandbox, firm):
    invoice_id = firm["by_number"]["NEW-1"]["xero_invoice_id"]
    note = {"HistoryRecords": [{"Details": "Voided by Unlinker batch 42 for A. Admin"}]}
    added = firm["api"].put(f"/Invoices/{invoice_id}/History", note)
    assert added.status_code == 200, added.text
    assert added.json()["HistoryRecords"][0]["Details"] == note["HistoryRecords"][0]["Details"]
    void(firm, "NEW-1")
    history = firm["api"].get(f"/Invoices/{invoice_id}/History").json()["HistoryRecords"]
    assert [h["Changes"] for h in history] == ["Note", "Voided"]

    payment = firm["by_number"]["BATCH-1"]["payments"][0]["xero_payment_id"]
    assert firm["api"].put(f"/Payments/{payment}/History", note).status_code == 200
    assert [h["Changes"] for h in sandbox.xero_history(payment)] == ["Note"]
    empty = {"HistoryRecords": [{"Details": " "}]}
    assert element_messages(firm["api"].put(f"/Payments/{payment}/History", empty))
    assert firm["api"].put(f"/Payments/{uuid.uuid4()}/History", note).status_code == 404


# --- query parameters and booleans --------------------------------------------------------------


def test_search_term_unitdp_created_by_my_app_and_include_archived(firm):
    api = firm["api"]
    found = api.get("/Invoices", params={"searchTerm": "batch"}).json()["Invoices"]
    assert sorted(i["InvoiceNumber"] for i in found) == ["BATCH-1", "BATCH-2"]
    invoice_id = firm["by_number"]["NEW-1"]["xero_invoice_id"]
    four = api.get(f"/Invoices/{invoice_id}", params={"unitdp": "4"}).text
    assert '"UnitAmount":90.9100' in four
    assert api.get("/Invoices", params={"createdByMyApp": "True"}).json()["Invoices"] == []
    assert len(api.get("/Invoices", params={"createdByMyApp": "false"}).json()["Invoices"]) == 8
    assert len(api.get("/Invoices", params={"includeArchived": "TRUE"}).json()["Invoices"]) == 8
    summary = api.get("/Invoices", params={"summaryOnly": "True"}).json()["Invoices"]
    assert all("Payments" not in invoice for invoice in summary)


def test_paths_are_case_insensitive(firm):
    assert firm["api"].get("/invoices", params={"searchTerm": "OLD-1"}).status_code == 200
    assert firm["api"].get("/organisation").status_code == 200
