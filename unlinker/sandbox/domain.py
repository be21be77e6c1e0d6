"""The rules of both systems: every change the APIs can make, with the refusals they answer.

Actionstep's side follows the help-centre article (payments are unlinked before their invoice; a
linked or paid invoice cannot be edited); approving an invoice again plays the integration's part
and creates a new Xero invoice. Xero's side follows Xero's status rules. The functions take rows
already loaded (and checked to belong to the caller's org or tenant) and an open write
transaction; each change stamps the records it touches.
"""

import uuid

# Messages are the ones the real systems show (see docs/api-contract.md).
NOT_VALID_STATUS = "Invoice not of valid status for modification"
PAYMENT_ALLOCATED = (
    "This document cannot be edited as it has a payment or credit note allocated to it"
)
PAYMENTS_STILL_LINKED = "Invoice has payments linked to Xero; unlink the payments first"
PAYMENT_STILL_LINKED = "Payment is linked to Xero; unlink it first"
BATCH_PAYMENT = "Payments that are part of a batch payment cannot be deleted individually"

# The refusals above that a real API might not make, each of which can be switched off
# (`POST /_sandbox/rules {"lenient": [...]}`): run with them off, the product's tests show that
# Unlinker alone keeps the rule. What Actionstep refuses is an assumption of ours.
LENIENT_RULES = {
    "payments_before_invoice": "unlink an invoice whose payments are still linked",
    "unlinked_before_removal": "delete or reverse a payment that is still linked",
    "editable_bill": "revert or delete a bill that is linked or has payments applied",
    "void_with_allocations": "void or delete a Xero invoice with payments or credits on it",
}

LINKED, UNLINKED = "Linked", "Unlinked"
ACTIVE, REVERSED, DELETED = "Active", "Reversed", "Deleted"
DRAFT, OPEN, CLOSED = "Draft", "Open", "Closed"


def enforced(conn, rule: str) -> bool:
    """Whether the sandbox refuses what `rule` names (see LENIENT_RULES)."""
    return conn.execute("SELECT 1 FROM lenient_rules WHERE name = ?", (rule,)).fetchone() is None


def set_lenient(conn, rules: list[str]) -> list[str]:
    unknown = set(rules) - set(LENIENT_RULES)
    if unknown:
        raise ValueError(f"unknown rules {sorted(unknown)}: the rules are {sorted(LENIENT_RULES)}")
    conn.execute("DELETE FROM lenient_rules")
    conn.executemany("INSERT INTO lenient_rules (name) VALUES (?)", [(r,) for r in set(rules)])
    return sorted(set(rules))


class Refused(Exception):
    """Actionstep refuses the change: HTTP 422 with this detail."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class XeroRefused(Exception):
    """Xero refuses the change: a ValidationException element with these messages."""

    def __init__(self, *messages: str):
        super().__init__("; ".join(messages))
        self.messages = list(messages)


# --- Actionstep -------------------------------------------------------------------------------


def unlink_invoice(conn, link, now: int) -> None:
    if link["link_status"] == UNLINKED:
        return
    still_linked = conn.execute(
        "SELECT 1 FROM xeropaymentlinks WHERE bill_id = ? AND link_status = ? LIMIT 1",
        (link["bill_id"], LINKED),
    ).fetchone()
    if still_linked and enforced(conn, "payments_before_invoice"):
        raise Refused(PAYMENTS_STILL_LINKED)
    conn.execute(
        "UPDATE xeroinvoicelinks SET link_status = ?, unlinked = ?, modified = ? WHERE id = ?",
        (UNLINKED, now, now, link["id"]),
    )


def unlink_payment(conn, link, now: int) -> None:
    if link["link_status"] == UNLINKED:
        return
    conn.execute(
        "UPDATE xeropaymentlinks SET link_status = ?, unlinked = ?, modified = ? WHERE id = ?",
        (UNLINKED, now, now, link["id"]),
    )


def remove_payment(conn, payment, status: str, reason: str, now: int) -> None:
    """Reverse (the record stays, marked Reversed) or delete a payment applied to a bill."""
    link = conn.execute(
        "SELECT link_status FROM xeropaymentlinks WHERE billpayment_id = ?", (payment["id"],)
    ).fetchone()
    if link and link["link_status"] == LINKED and enforced(conn, "unlinked_before_removal"):
        raise Refused(PAYMENT_STILL_LINKED)
    if payment["status"] == status:
        return
    if payment["status"] == DELETED:
        raise Refused("Payment has been deleted")
    conn.execute(
        "UPDATE billpayments SET status = ?, reason = ?, modified = ? WHERE id = ?",
        (status, reason, now, payment["id"]),
    )
    if payment["status"] == ACTIVE:
        # A closed (fully paid) bill owes money again once a payment stops counting.
        conn.execute(
            """UPDATE bills SET total_paid = total_paid - ?, modified = ?,
               status = CASE WHEN status = ? THEN ? ELSE status END WHERE id = ?""",
            (payment["amount"], now, CLOSED, OPEN, payment["bill_id"]),
        )


def _check_editable(conn, bill) -> None:
    if bill["status"] == DELETED:
        raise Refused(NOT_VALID_STATUS)
    if not enforced(conn, "editable_bill"):
        return
    link = conn.execute(
        "SELECT link_status FROM xeroinvoicelinks WHERE bill_id = ?", (bill["id"],)
    ).fetchone()
    if link and link["link_status"] == LINKED:
        raise Refused(NOT_VALID_STATUS)
    applied = conn.execute(
        "SELECT 1 FROM billpayments WHERE bill_id = ? AND status = ? LIMIT 1", (bill["id"], ACTIVE)
    ).fetchone()
    if applied:
        raise Refused(PAYMENT_ALLOCATED)


def revert_to_draft(conn, bill, now: int) -> None:
    if bill["status"] == DRAFT:
        return
    _check_editable(conn, bill)
    conn.execute("UPDATE bills SET status = ?, modified = ? WHERE id = ?", (DRAFT, now, bill["id"]))


def delete_bill(conn, bill, now: int) -> None:
    if bill["status"] == DELETED:
        return
    _check_editable(conn, bill)
    conn.execute(
        "UPDATE bills SET status = ?, deleted = ?, modified = ? WHERE id = ?",
        (DELETED, now, now, bill["id"]),
    )


def approve(conn, bill, tenant_id: str, now: int) -> None:
    """Draft → Open. The integration then creates a NEW Xero invoice and links the bill to it:
    if the previous Xero copy was not voided or deleted, the number now exists twice there."""
    if bill["status"] == OPEN:
        return
    if bill["status"] != DRAFT:
        raise Refused(NOT_VALID_STATUS)
    contact = conn.execute(
        "SELECT xero_contact_id, display_name FROM participants WHERE id = ?",
        (bill["participant_id"],),
    ).fetchone()
    invoice_id = str(uuid.uuid4())
    conn.execute(
        """INSERT INTO xero_invoices (id, tenant_id, number, reference, contact_id, contact_name,
           date, due_date, status, sub_total, total_tax, total, amount_paid, amount_credited,
           currency, fully_paid_on, updated_ms)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'AUTHORISED', ?, ?, ?, 0, 0, ?, NULL, ?)""",
        (
            invoice_id,
            tenant_id,
            bill["our_reference"],
            bill["their_reference"],
            contact["xero_contact_id"],
            contact["display_name"],
            bill["invoice_date"],
            bill["due_date"],
            bill["total_exclusive"],
            bill["total_sales_tax"],
            bill["total_inclusive"],
            bill["currency"],
            now * 1000,
        ),
    )
    conn.execute(
        """INSERT INTO xeroinvoicelinks (firm_id, bill_id, link_status, xero_invoice_id,
           xero_invoice_number, linked, unlinked, modified) VALUES (?, ?, ?, ?, ?, ?, NULL, ?)
           ON CONFLICT (bill_id) DO UPDATE SET link_status = excluded.link_status,
           xero_invoice_id = excluded.xero_invoice_id,
           xero_invoice_number = excluded.xero_invoice_number, linked = excluded.linked,
           unlinked = NULL, modified = excluded.modified""",
        (bill["firm_id"], bill["id"], LINKED, invoice_id, bill["our_reference"], now, now),
    )
    conn.execute("UPDATE bills SET status = ?, modified = ? WHERE id = ?", (OPEN, now, bill["id"]))


# --- Xero -------------------------------------------------------------------------------------

INVOICE_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED")
# Which status each status may be set to through the API (PAID is reached only by payments).
_ALLOWED = {
    "DRAFT": {"SUBMITTED", "AUTHORISED", "DELETED"},
    "SUBMITTED": {"DRAFT", "AUTHORISED", "DELETED"},
    "AUTHORISED": {"VOIDED"},
}


def set_invoice_status(conn, invoice, status: str, now_ms: int) -> None:
    current = invoice["status"]
    if status not in INVOICE_STATUSES:
        raise XeroRefused(f"'{status}' is not a valid invoice status")
    if status == current and current in ("DRAFT", "SUBMITTED", "AUTHORISED"):
        return
    allocated = invoice["amount_paid"] or invoice["amount_credited"]
    if status in ("VOIDED", "DELETED") and current in ("AUTHORISED", "PAID") and allocated:
        if enforced(conn, "void_with_allocations"):
            raise XeroRefused(PAYMENT_ALLOCATED)
        current = "AUTHORISED"  # lenient: as if nothing were on it
    if status not in _ALLOWED.get(current, ()):
        raise XeroRefused(NOT_VALID_STATUS)
    conn.execute(
        "UPDATE xero_invoices SET status = ?, updated_ms = ? WHERE id = ?",
        (status, now_ms, invoice["id"]),
    )


def delete_xero_payment(conn, payment, now_ms: int) -> None:
    if payment["batch_payment_id"]:
        raise XeroRefused(BATCH_PAYMENT)
    if payment["status"] == "DELETED":
        raise XeroRefused("This payment has already been deleted")
    conn.execute(
        "UPDATE xero_payments SET status = 'DELETED', updated_ms = ? WHERE id = ?",
        (now_ms, payment["id"]),
    )
    conn.execute(
        """UPDATE xero_invoices SET amount_paid = amount_paid - ?, fully_paid_on = NULL,
           status = CASE WHEN status = 'PAID' THEN 'AUTHORISED' ELSE status END, updated_ms = ?
           WHERE id = ?""",
        (payment["amount"], now_ms, payment["invoice_id"]),
    )
