"""Links to where a record lives: Xero's documented deep links, Actionstep's assumed ones."""

from types import SimpleNamespace

from unlinker.integrations import weblinks

GUID = "1cf1a11c-a067-4a05-9c8b-06f281f7afed"


def test_xero_invoice_and_payment_pages(settings):
    settings.XERO_WEB_URL = "https://go.xero.com"
    connection = SimpleNamespace()
    assert weblinks.xero_invoice_url(connection, GUID) == (
        f"https://go.xero.com/AccountsReceivable/View.aspx?InvoiceID={GUID}"
    )
    assert weblinks.xero_payment_url(connection, GUID) == (
        f"https://go.xero.com/Bank/ViewTransaction.aspx?bankTransactionID={GUID}"
    )


def test_with_the_organisations_short_code_the_link_opens_that_organisation(settings):
    settings.XERO_WEB_URL = "https://go.xero.com/"
    connection = SimpleNamespace(xero_short_code="!NLglS")
    assert weblinks.xero_invoice_url(connection, GUID) == (
        "https://go.xero.com/organisationlogin/default.aspx?shortcode=%21NLglS"
        f"&redirecturl=/AccountsReceivable/View.aspx?InvoiceID={GUID}"
    )


def test_what_is_not_a_xero_id_gets_no_link():
    for value in ("", None, "javascript:alert(1)", f"{GUID}&x=1", "not-a-guid"):
        assert weblinks.xero_invoice_url(None, value) == ""
        assert weblinks.xero_payment_url(None, value) == ""


def test_actionstep_pages_follow_the_settings_patterns(settings):
    settings.ACTIONSTEP_MATTER_URL = "https://ap.example/matter/{matter_id}"
    settings.ACTIONSTEP_INVOICE_URL = "https://ap.example/bill/{bill_id}"
    assert weblinks.actionstep_matter_url(None, 12) == "https://ap.example/matter/12"
    assert weblinks.actionstep_invoice_url(None, 34) == "https://ap.example/bill/34"
    assert weblinks.actionstep_matter_url(None, None) == ""
    settings.ACTIONSTEP_MATTER_URL = ""  # a firm may turn the links off
    assert weblinks.actionstep_matter_url(None, 12) == ""
    settings.ACTIONSTEP_INVOICE_URL = "https://ap.example/{other}"  # a wrong pattern: no link
    assert weblinks.actionstep_invoice_url(None, 34) == ""
