"""Where a record lives: the address of its page in Xero's or Actionstep's web app, for the
lists' "open in Xero / in Actionstep" links. An empty string means there is no page to link.

Xero documents its deep links ("Deep link to Xero", developer.xero.com/documentation/
api-guides/deep-link-xero): `/AccountsReceivable/View.aspx?InvoiceID=...` for a sales invoice,
and a payment's transaction at `/Bank/ViewTransaction.aspx?bankTransactionID=<PaymentID>` (as
Xero's own MCP server links them). Through `/organisationlogin/default.aspx?shortcode=...` the
link opens the right organisation for someone who has several; without the organisation's
ShortCode (GET /Organisation) it opens in the organisation last used. XERO_WEB_URL is the base.

Actionstep documents no deep links: its patterns are assumptions (actionstep_resources), the
defaults of ACTIONSTEP_MATTER_URL and ACTIONSTEP_INVOICE_URL.
"""

import re
from urllib.parse import quote

from django.conf import settings

# A Xero id is a GUID; anything else is not put in a link.
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _xero(connection, path: str) -> str:
    base = settings.XERO_WEB_URL.rstrip("/")
    # A ShortCode is stored by the connection where it was read (GET /Organisation).
    short_code = getattr(connection, "xero_short_code", "") or ""
    if short_code:
        return (
            f"{base}/organisationlogin/default.aspx?shortcode={quote(short_code)}"
            f"&redirecturl={path}"
        )
    return f"{base}{path}"


def xero_invoice_url(connection, invoice_id: str) -> str:
    if not invoice_id or not GUID.match(invoice_id):
        return ""
    return _xero(connection, f"/AccountsReceivable/View.aspx?InvoiceID={invoice_id}")


def xero_payment_url(connection, payment_id: str) -> str:
    if not payment_id or not GUID.match(payment_id):
        return ""
    return _xero(connection, f"/Bank/ViewTransaction.aspx?bankTransactionID={payment_id}")


def _actionstep(pattern: str, **ids) -> str:
    if not pattern or any(value in (None, "") for value in ids.values()):
        return ""
    try:
        return pattern.format(**{name: quote(str(value)) for name, value in ids.items()})
    except (KeyError, IndexError, ValueError):  # a pattern naming something else: no link
        return ""


def actionstep_matter_url(connection, matter_id) -> str:
    return _actionstep(settings.ACTIONSTEP_MATTER_URL, matter_id=matter_id)


def actionstep_invoice_url(connection, bill_id) -> str:
    return _actionstep(settings.ACTIONSTEP_INVOICE_URL, bill_id=bill_id)
