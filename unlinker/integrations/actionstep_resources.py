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
BILL_CLOSED = "Closed"  # paid in full; a payment removed makes it Open again
BILL_DELETED = "Deleted"

# ASSUMPTION: field and values of the link records and of bill payments.
LINK_STATUS_FIELD = "linkStatus"
LINKED = "Linked"
UNLINKED = "Unlinked"
PAYMENT_ACTIVE = "Active"
PAYMENT_REVERSED = "Reversed"
PAYMENT_DELETED = "Deleted"

PAGE_SIZE_MAX = 200  # documented: larger requests are capped at 200

# ASSUMPTION: field and relation names of the undocumented records above.
XERO_INVOICE_ID_FIELD = "xeroInvoiceId"
XERO_INVOICE_NUMBER_FIELD = "xeroInvoiceNumber"
XERO_PAYMENT_ID_FIELD = "xeroPaymentId"
PAYMENT_STATUS_FIELD = "status"
PAYMENT_DATE_FIELD = "paymentDate"
PAYMENT_AMOUNT_FIELD = "amount"
PAYMENT_REFERENCE_FIELD = "reference"
PAYMENT_REASON_FIELD = "reason"  # set when a payment is reversed or deleted
BILL_RELATION = "bill"  # links.bill of link records and bill payments; also an include path
BILL_PAYMENT_RELATION = "billpayment"  # links.billpayment of payment links; also an include path

# ASSUMPTION: the addresses of a matter's and of an invoice's page in Actionstep's web app, for
# the "open in Actionstep" links. Actionstep documents no deep links; these follow the
# addresses its web app shows. They are the defaults of ACTIONSTEP_MATTER_URL and
# ACTIONSTEP_INVOICE_URL (settings.py): a firm whose Actionstep shows other addresses sets
# those, with {matter_id} and {bill_id} where the ids go.
MATTER_PAGE_URL = (
    "https://go.actionstep.com/mym/asfw/workflow/action/overview/action_id/{matter_id}"
)
INVOICE_PAGE_URL = "https://go.actionstep.com/mym/asfw/billing/invoice/view/id/{bill_id}"
