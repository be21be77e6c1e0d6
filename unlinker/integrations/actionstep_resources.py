"""Every Actionstep name this project relies on, in one place.

Actionstep documents `bills`, `actions` and `participants` and its REST conventions; it does not
publicly document the payments applied to invoices, the Xero link records behind the admin lists
"Linked Xero Invoices" / "Linked Xero Payments", or the unlink, reverse and revert operations.
Those names are marked ASSUMPTION: confirm them with Actionstep's support for a real org and
change them here only (docs/api-contract.md describes the shapes).
"""

# Documented resources
BILLS = "bills"  # invoices
ACTIONS = "actions"  # matters
PARTICIPANTS = "participants"  # contacts

# ASSUMPTION: payments (receipts) applied to an invoice, as seen on its "Payment history" tab.
BILL_PAYMENTS = "billpayments"
# ASSUMPTION: the rows of Admin > Accounting > "Xero: Sales Invoices".
XERO_INVOICE_LINKS = "xeroinvoicelinks"
# ASSUMPTION: the rows of Admin > Accounting > "Xero: Payments".
XERO_PAYMENT_LINKS = "xeropaymentlinks"

# Bill statuses (documented)
BILL_DRAFT = "Draft"
BILL_OPEN = "Open"
BILL_CLOSED = "Closed"
BILL_DELETED = "Deleted"

# ASSUMPTION: field and values of the link records and of bill payments.
LINK_STATUS_FIELD = "linkStatus"
LINKED = "Linked"
UNLINKED = "Unlinked"
PAYMENT_ACTIVE = "Active"
PAYMENT_REVERSED = "Reversed"
PAYMENT_DELETED = "Deleted"

PAGE_SIZE_MAX = 200  # documented: larger requests are capped at 200
