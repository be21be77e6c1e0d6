"""The rules of both systems: every change the APIs can make, with the refusals they answer.

Actionstep's side follows the help-centre article (payments are unlinked before their invoice; a
linked or paid invoice cannot be edited); approving an invoice again plays the integration's part
and creates a new Xero invoice. Xero's side follows Xero's status rules. The functions take rows
already loaded (and checked to belong to the caller's org or tenant) and an open write
transaction; each change stamps the records it touches.
"""

import uuid
from datetime import date

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
    "lock_dates": "change a Xero document dated on or before a lock date",
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


def approve(conn, bill, tenant_id: str, now: int) -> str | None:
    """Draft → Open. The integration then creates a NEW Xero invoice under the bill's number
    and links the bill to it; the new invoice's id, None when the bill was approved already.

    Xero describes a sales invoice's number as unique and answers "Invoice # must be unique."
    when it is taken, by a voided or deleted invoice too: then the approval fails and nothing
    changes (ASSUMPTION: Actionstep shows Xero's refusal). Firms also report two invoices with
    one number; an organisation set to `invoice_numbers: duplicates` plays that case."""
    if bill["status"] == OPEN:
        return None
    if bill["status"] != DRAFT:
        raise Refused(NOT_VALID_STATUS)
    org = organisation(conn, tenant_id)
    refusal = lock_refusal(org, bill["invoice_date"])
    if refusal is None and org["invoice_numbers"] == "unique":
        refusal = NUMBER_TAKEN if number_taken(conn, tenant_id, bill["our_reference"]) else None
    if refusal:
        raise Refused(f"Xero refused the invoice: {refusal}")
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
    return invoice_id


# --- Xero -------------------------------------------------------------------------------------

INVOICE_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED")
# Which status each status may be set to through the API (PAID is reached only by payments).
_ALLOWED = {
    "DRAFT": {"SUBMITTED", "AUTHORISED", "DELETED"},
    "SUBMITTED": {"DRAFT", "AUTHORISED", "DELETED"},
    "AUTHORISED": {"VOIDED"},
}
EDITABLE = ("DRAFT", "SUBMITTED", "AUTHORISED")
# Xero's words for a change dated in a locked period (as reported from its API; the description
# names the lock dates but not the message).
LOCKED = "The document date cannot be before the {lock} lock date, currently set at {date}"
NUMBER_TAKEN = "Invoice # must be unique."
CREDIT_KINDS = ("CREDITNOTE", "PREPAYMENT", "OVERPAYMENT")


def organisation(conn, tenant_id: str) -> dict:
    """The tenant's organisation settings (xero_organisations), or the defaults of a firm made
    before they existed: no lock dates, Brisbane, AUD, unique invoice numbers."""
    row = conn.execute(
        "SELECT * FROM xero_organisations WHERE tenant_id = ?", (tenant_id,)
    ).fetchone()
    if row is not None:
        return dict(row)
    return {
        "tenant_id": tenant_id,
        "organisation_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"organisation/{tenant_id}")),
        "short_code": "!" + tenant_id[:5],
        "period_lock_date": None,
        "end_of_year_lock_date": None,
        "timezone": "EAUSTRALIASTANDARDTIME",
        "base_currency": "AUD",
        "country_code": "AU",
        "invoice_numbers": "unique",
    }


def lock_refusal(org: dict, iso_date: str) -> str | None:
    """Xero's message when a document dated `iso_date` lies in a locked period (on or before
    the end-of-year or the period lock date), else None."""
    for column, lock in (("end_of_year_lock_date", "end of year"), ("period_lock_date", "period")):
        locked_until = org.get(column)
        if locked_until and iso_date <= locked_until:
            shown = date.fromisoformat(locked_until).strftime("%d-%b-%Y")
            return LOCKED.format(lock=lock, date=shown)
    return None


def _check_unlocked(conn, tenant_id: str, iso_date: str) -> None:
    refusal = lock_refusal(organisation(conn, tenant_id), iso_date)
    if refusal and enforced(conn, "lock_dates"):
        raise XeroRefused(refusal)


def set_invoice_status(conn, invoice, status: str, now_ms: int) -> bool:
    """Change the status as Xero would; False when the invoice already has it."""
    current = invoice["status"]
    if status not in INVOICE_STATUSES:
        raise XeroRefused(f"'{status}' is not a valid invoice status")
    if status == current and current in EDITABLE:
        return False
    _check_unlocked(conn, invoice["tenant_id"], invoice["date"])
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
    return True


def number_taken(conn, tenant_id: str, number: str, other_than: str | None = None) -> bool:
    """Whether another sales invoice of the tenant holds the number: voided and deleted ones
    keep theirs."""
    row = conn.execute(
        "SELECT 1 FROM xero_invoices WHERE tenant_id = ? AND number = ? AND id != ? LIMIT 1",
        (tenant_id, number, other_than or ""),
    ).fetchone()
    return row is not None


def edit_invoice(conn, invoice, changes: dict, now_ms: int) -> list[str]:
    """Change an invoice's number, reference or dates (`changes` maps columns to new values);
    the names of the fields changed. Xero lets a draft, submitted or authorised invoice be
    edited while nothing is paid or credited on it, outside locked periods."""
    changes = {column: value for column, value in changes.items() if invoice[column] != value}
    if not changes:
        return []
    if invoice["status"] not in EDITABLE:
        raise XeroRefused(NOT_VALID_STATUS)
    if invoice["amount_paid"] or invoice["amount_credited"]:
        raise XeroRefused(PAYMENT_ALLOCATED)
    for iso_date in {invoice["date"], changes.get("date", invoice["date"])}:
        _check_unlocked(conn, invoice["tenant_id"], iso_date)
    number = changes.get("number")
    if number is not None:
        if not number.strip():
            raise XeroRefused("Invoice number cannot be empty")
        if len(number) > 255:
            raise XeroRefused("Invoice number must not be longer than 255 characters")
        if number_taken(conn, invoice["tenant_id"], number, other_than=invoice["id"]):
            raise XeroRefused(NUMBER_TAKEN)
    assignments = ", ".join(f"{column} = ?" for column in changes)
    conn.execute(
        f"UPDATE xero_invoices SET {assignments}, updated_ms = ? WHERE id = ?",  # noqa: S608
        (*changes.values(), now_ms, invoice["id"]),
    )
    return list(changes)


def delete_xero_payment(conn, payment, now_ms: int) -> None:
    if payment["batch_payment_id"]:
        raise XeroRefused(BATCH_PAYMENT)
    if payment["status"] == "DELETED":
        raise XeroRefused("This payment has already been deleted")
    _check_unlocked(conn, payment["tenant_id"], payment["date"])
    conn.execute(
        "UPDATE xero_payments SET status = 'DELETED', updated_ms = ? WHERE id = ?",
        (now_ms, payment["id"]),
    )
    _recount_invoice(conn, payment["invoice_id"], now_ms, paid=-payment["amount"])


def _recount_invoice(conn, invoice_id: str, now_ms: int, *, paid: int = 0, credited: int = 0):
    """An invoice owes more again: lower what is paid or credited; PAID becomes AUTHORISED."""
    conn.execute(
        """UPDATE xero_invoices SET amount_paid = amount_paid + ?,
           amount_credited = amount_credited + ?, fully_paid_on = NULL,
           status = CASE WHEN status = 'PAID' THEN 'AUTHORISED' ELSE status END, updated_ms = ?
           WHERE id = ?""",
        (paid, credited, now_ms, invoice_id),
    )


def delete_allocation(conn, allocation, now_ms: int) -> None:
    """Remove a credit note's, prepayment's or overpayment's allocation to an invoice: the
    invoice owes the amount again and the document has it to allocate again. Deleting it
    again changes nothing (the description knows only the 200 answer, with IsDeleted)."""
    if allocation["deleted_ms"] is not None:
        return
    _check_unlocked(conn, allocation["tenant_id"], allocation["date"])
    conn.execute(
        "UPDATE xero_allocations SET deleted_ms = ? WHERE id = ?", (now_ms, allocation["id"])
    )
    _recount_invoice(conn, allocation["invoice_id"], now_ms, credited=-allocation["amount"])
    conn.execute(
        "UPDATE xero_credits SET status = 'AUTHORISED', updated_ms = ? WHERE id = ?",
        (now_ms, allocation["credit_id"]),
    )


def add_history(
    conn, tenant_id: str, record_id: str, changes: str, details: str, user: str, now_ms: int
) -> dict:
    cursor = conn.execute(
        """INSERT INTO xero_history (tenant_id, record_id, changes, details, user, at_ms)
           VALUES (?, ?, ?, ?, ?, ?)""",
        (tenant_id, record_id, changes, details, user, now_ms),
    )
    return {
        "seq": cursor.lastrowid,
        "changes": changes,
        "details": details,
        "user": user,
        "at_ms": now_ms,
    }
