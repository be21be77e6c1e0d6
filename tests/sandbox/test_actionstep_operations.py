"""The operations table of docs/api-contract.md, and the order the help-centre article demands."""

import time

import pytest

from tests.sandbox.support import exact

UNLINK_INVOICE = {"xeroinvoicelinks": {"linkStatus": "Unlinked"}}
UNLINK_PAYMENT = {"xeropaymentlinks": {"linkStatus": "Unlinked"}}


@pytest.fixture
def paid_invoice(sandbox):
    """An approved invoice of 1100.00 with one linked payment of 400.00."""
    built = sandbox.build([{"total": "1100.00", "payments": [{"amount": "400.00"}]}])
    return built["bills"][0]


def refusal(answer) -> str:
    assert answer.status_code == 422, answer.text
    (error,) = exact(answer)["errors"]
    assert error["status"] == "422"
    return error["detail"]


def test_an_invoice_with_a_linked_payment_cannot_be_unlinked(sandbox, actionstep, paid_invoice):
    api = actionstep()
    answer = api.put(f"/xeroinvoicelinks/{paid_invoice['link_id']}", UNLINK_INVOICE)
    assert refusal(answer) == "Invoice has payments linked to Xero; unlink the payments first"
    link = sandbox.actionstep("xeroinvoicelinks", paid_invoice["link_id"])
    assert link["linkStatus"] == "Linked" and link["unlinkedTimestamp"] is None


def test_payments_first_then_the_invoice(sandbox, actionstep, paid_invoice):
    api = actionstep()
    payment_link = paid_invoice["payments"][0]["link_id"]
    unlinked = api.put(f"/xeropaymentlinks/{payment_link}", UNLINK_PAYMENT)
    assert unlinked.status_code == 200
    assert exact(unlinked)["xeropaymentlinks"]["linkStatus"] == "Unlinked"

    answer = api.put(f"/xeroinvoicelinks/{paid_invoice['link_id']}", UNLINK_INVOICE)
    assert answer.status_code == 200
    link = exact(answer)["xeroinvoicelinks"]
    assert link["linkStatus"] == "Unlinked" and link["unlinkedTimestamp"]

    again = api.put(f"/xeroinvoicelinks/{paid_invoice['link_id']}", UNLINK_INVOICE)
    assert again.status_code == 200
    assert exact(again)["xeroinvoicelinks"]["modifiedTimestamp"] == link["modifiedTimestamp"]
    # The Xero copy stays as it was: unlinking never touches Xero.
    assert sandbox.xero_invoice(paid_invoice["xero_invoice_id"])["Status"] == "AUTHORISED"


def test_relinking_is_refused(sandbox, actionstep, paid_invoice):
    api = actionstep()
    payment_link = paid_invoice["payments"][0]["link_id"]
    api.put(f"/xeropaymentlinks/{payment_link}", UNLINK_PAYMENT)
    answer = api.put(
        f"/xeropaymentlinks/{payment_link}", {"xeropaymentlinks": {"linkStatus": "Linked"}}
    )
    assert "approve the invoice again" in refusal(answer)


@pytest.mark.parametrize("removal", ["delete", "reverse"])
def test_a_payment_is_removed_only_once_unlinked(sandbox, actionstep, paid_invoice, removal):
    api = actionstep()
    payment = paid_invoice["payments"][0]

    def remove():
        if removal == "delete":
            return api.delete(f"/billpayments/{payment['id']}", params={"reason": "Wrong matter"})
        body = {"billpayments": {"status": "Reversed", "reason": "Wrong matter"}}
        return api.put(f"/billpayments/{payment['id']}", body)

    assert refusal(remove()) == "Payment is linked to Xero; unlink it first"
    api.put(f"/xeropaymentlinks/{payment['link_id']}", UNLINK_PAYMENT)
    answer = remove()
    assert answer.status_code == (204 if removal == "delete" else 200)
    record = sandbox.actionstep("billpayments", payment["id"])
    assert record["status"] == ("Deleted" if removal == "delete" else "Reversed")
    assert record["reason"] == "Wrong matter"
    bill = sandbox.actionstep("bills", paid_invoice["id"])
    assert (bill["totalPaid"], bill["totalDue"]) == (0, 1100)
    link = sandbox.actionstep("xeropaymentlinks", payment["link_id"])
    assert link["linkStatus"] == "Unlinked"


def test_removing_a_payment_needs_a_reason(sandbox, actionstep):
    built = sandbox.build([{"total": "10.00", "link": "Unlinked", "payments": [{}]}])
    payment_id = built["bills"][0]["payments"][0]["id"]
    answer = actionstep().delete(f"/billpayments/{payment_id}")
    assert answer.status_code == 400
    assert "reason is required" in exact(answer)["errors"][0]["detail"]


def test_a_closed_bill_reopens_when_its_payment_goes(sandbox, actionstep):
    built = sandbox.build([{"total": "300.00", "payments": [{}]}])
    bill = built["bills"][0]
    assert sandbox.actionstep("bills", bill["id"])["status"] == "Closed"
    api = actionstep()
    api.put(f"/xeropaymentlinks/{bill['payments'][0]['link_id']}", UNLINK_PAYMENT)
    api.delete(f"/billpayments/{bill['payments'][0]['id']}", params={"reason": "Bounced"})
    assert sandbox.actionstep("bills", bill["id"])["status"] == "Open"


def test_revert_and_delete_follow_the_article(sandbox, actionstep, paid_invoice):
    api = actionstep()
    bill_url = f"/bills/{paid_invoice['id']}"
    to_draft = {"bills": {"status": "Draft"}}
    assert refusal(api.put(bill_url, to_draft)) == "Invoice not of valid status for modification"
    assert refusal(api.delete(bill_url)) == "Invoice not of valid status for modification"

    payment = paid_invoice["payments"][0]
    api.put(f"/xeropaymentlinks/{payment['link_id']}", UNLINK_PAYMENT)
    api.put(f"/xeroinvoicelinks/{paid_invoice['link_id']}", UNLINK_INVOICE)
    allocated = "This document cannot be edited as it has a payment or credit note allocated to it"
    assert refusal(api.put(bill_url, to_draft)) == allocated

    api.delete(f"/billpayments/{payment['id']}", params={"reason": "Refunded"})
    reverted = api.put(bill_url, to_draft)
    assert reverted.status_code == 200 and exact(reverted)["bills"]["status"] == "Draft"
    assert api.delete(bill_url).status_code == 204
    deleted = exact(api.get(bill_url))["bills"]
    assert deleted["status"] == "Deleted" and deleted["deletedTimestamp"]
    assert api.delete(bill_url).status_code == 204
    assert refusal(api.put(bill_url, {"bills": {"status": "Open"}}))


def test_approving_again_creates_a_new_xero_invoice(sandbox, actionstep):
    """In an organisation that lets a number be used twice (as firms report)."""
    built = sandbox.build(
        [{"total": "550.00", "number": "INV-777"}], organisation={"invoice_numbers": "duplicates"}
    )
    bill = built["bills"][0]
    api = actionstep()
    first_copy = bill["xero_invoice_id"]
    api.put(f"/xeroinvoicelinks/{bill['link_id']}", UNLINK_INVOICE)
    api.put(f"/bills/{bill['id']}", {"bills": {"status": "Draft"}})
    before = exact(api.get(f"/bills/{bill['id']}"))["bills"]["modifiedTimestamp"]
    time.sleep(1.1)  # one-second timestamps

    approved = api.put(f"/bills/{bill['id']}", {"bills": {"status": "Open"}})
    assert approved.status_code == 200
    assert exact(approved)["bills"]["status"] == "Open"
    assert exact(approved)["bills"]["modifiedTimestamp"] > before
    link = exact(api.get(f"/xeroinvoicelinks/{bill['link_id']}"))["xeroinvoicelinks"]
    assert link["linkStatus"] == "Linked" and link["xeroInvoiceId"] != first_copy
    assert link["unlinkedTimestamp"] is None

    copies = sandbox.xero_invoices("INV-777")
    assert [c["InvoiceID"] for c in copies] == [first_copy, link["xeroInvoiceId"]]
    assert [c["Status"] for c in copies] == ["AUTHORISED", "AUTHORISED"]  # the duplicate case
    assert all(c["Total"] == 550 for c in copies)


def _unlink_and_revert(api, bill):
    api.put(f"/xeroinvoicelinks/{bill['link_id']}", UNLINK_INVOICE)
    api.put(f"/bills/{bill['id']}", {"bills": {"status": "Draft"}})


def test_xero_refuses_the_number_of_a_voided_copy_so_approving_again_fails(sandbox, actionstep):
    """Xero describes a sales invoice's number as unique: the voided copy keeps it."""
    built = sandbox.build([{"total": "550.00", "number": "INV-778", "xero_status": "VOIDED"}])
    bill = built["bills"][0]
    api = actionstep()
    _unlink_and_revert(api, bill)

    answer = api.put(f"/bills/{bill['id']}", {"bills": {"status": "Open"}})
    assert answer.status_code == 422
    assert refusal(answer) == "Xero refused the invoice: Invoice # must be unique."
    assert sandbox.actionstep("bills", bill["id"])["status"] == "Draft"
    assert [c["Status"] for c in sandbox.xero_invoices("INV-778")] == ["VOIDED"]


def test_renaming_the_voided_copy_frees_its_number_for_the_approval(sandbox, actionstep, xero):
    built = sandbox.build([{"total": "550.00", "number": "INV-779"}])
    bill, tenant = built["bills"][0], built["firm"]["tenantId"]
    api = actionstep()
    _unlink_and_revert(api, bill)
    # One POST renames and voids the copy (xero_accounting.yaml: both fields of Invoice).
    change = {"InvoiceID": bill["xero_invoice_id"], "InvoiceNumber": "INV-779-VOID"}
    answer = xero(tenant).post(
        f"/Invoices/{bill['xero_invoice_id']}", {"Invoices": [{**change, "Status": "VOIDED"}]}
    )
    assert answer.status_code == 200, answer.text

    assert api.put(f"/bills/{bill['id']}", {"bills": {"status": "Open"}}).status_code == 200
    (new_copy,) = sandbox.xero_invoices("INV-779")
    assert new_copy["Status"] == "AUTHORISED" and new_copy["InvoiceID"] != bill["xero_invoice_id"]
    (old_copy,) = sandbox.xero_invoices("INV-779-VOID")
    assert old_copy["Status"] == "VOIDED"


def test_approving_a_never_approved_draft_links_it(sandbox, actionstep):
    bill = sandbox.build([{"total": "80.00", "status": "Draft"}])["bills"][0]
    assert bill["link_id"] is None
    api = actionstep()
    assert api.put(f"/bills/{bill['id']}", {"bills": {"status": "Open"}}).status_code == 200
    link = exact(api.get("/xeroinvoicelinks", params={"bill_eq": bill["id"]}))["xeroinvoicelinks"]
    assert link["linkStatus"] == "Linked"
    assert sandbox.xero_invoice(link["xeroInvoiceId"])["Total"] == 80


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/xeroinvoicelinks/{link}", {"xeroinvoicelinks": {"xeroInvoiceId": "x"}}, 400),
        ("/xeroinvoicelinks/{link}", {"bills": {"status": "Draft"}}, 400),
        ("/xeroinvoicelinks/{link},{link}", UNLINK_INVOICE, 400),
        ("/xeroinvoicelinks/999999", UNLINK_INVOICE, 404),
        ("/actions/1", {"actions": {"name": "x"}}, 405),
    ],
)
def test_malformed_writes(sandbox, actionstep, path, body, status):
    bill = sandbox.build([{"total": "10.00"}])["bills"][0]
    answer = actionstep().put(path.format(link=bill["link_id"]), body)
    assert answer.status_code == status
    assert exact(answer)["errors"][0]["status"] == str(status)
