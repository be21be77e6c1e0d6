"""What every page carries: the security headers, HTML that a strict CSP lets run as it is
(no inline script or style, no event handler attributes), and only fields that the
hostile-input tests feed to the endpoint that receives them."""

from urllib.parse import urlsplit

import pytest
from django.http import HttpResponse
from django.urls import Resolver404, resolve

from unlinker.connections.oauth import authorize_origins

from .endpoints import ENDPOINTS
from .pages import Page, crawl, parse, query_names

pytestmark = pytest.mark.django_db

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
CSP_DIRECTIVES = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "frame-ancestors 'none'",
)
# Only the Connections page's forms (Connect, Reconnect) may go on to the providers' consent
# pages; every other form stays on the site.
WIDER_FORM_ACTION = {"connections:list", "connections:list (htmx)"}


@pytest.fixture
def pages(scene, signed_in, make_user):
    return crawl(scene, signed_in, make_user)


def test_the_crawl_reaches_every_page(pages):
    seen = {page.label for page in pages}
    pages_of_get_endpoints = {e.name for e in ENDPOINTS.values() if "GET" in e.methods}
    # healthz answers JSON; the callbacks and the entry points redirect
    redirecting = {
        "home",
        "healthz",
        "mirror:invoices",
        "mirror:payments",
        "reconciliation:report",
        "connections:actionstep_callback",
        "connections:xero_callback",
    }
    assert pages_of_get_endpoints - redirecting <= seen
    answering_with_html = {
        "unlinking:plan",
        "reconciliation:cleanup",
        "sync:start",
        "reconciliation:run",
    }
    assert answering_with_html <= seen
    assert {"plan of payments", "not found", "not allowed", "login"} <= seen
    assert {
        "remove a member",
        "new person refused",
        "team with a temporary password",
        "change password",
        "set password",
    } <= seen


def test_every_page_carries_the_security_headers_and_the_csp(pages):
    for page in pages:
        headers = page.response.headers
        for name, value in HEADERS.items():
            assert headers.get(name) == value, (page.label, name)
        csp = [d.strip() for d in headers["Content-Security-Policy"].split(";")]
        assert set(CSP_DIRECTIVES) <= set(csp), page.label
        expected = "form-action 'self'"
        if page.label in WIDER_FORM_ACTION:
            expected = " ".join([expected, *authorize_origins()])
        assert expected in csp, page.label
        assert not any("unsafe-" in directive for directive in csp), page.label


def test_no_page_has_inline_script_or_style_or_event_handlers(pages):
    problems = {page.label: parse(page).problems for page in pages}
    assert {label: found for label, found in problems.items() if found} == {}


def test_the_parser_sees_what_the_csp_forbids():
    sample = HttpResponse(
        '<div style="color: red" onclick="go()"><a href="javascript:go()">a</a>'
        "<style>p {}</style><script>go()</script><script src=/static/js/app.js></script>"
        '<button hx-on:click="go()">b</button></div>'
    )
    assert parse(Page("sample", "/", sample)).problems == [
        'style="color: red" on <div>',
        "onclick= on <div>",
        "a javascript: URL in href= on <a>",
        "a <style> element",
        "an inline <script>",
        "a <script> with a body",
        "hx-on:click= on <button>",
    ]


def view_name(url: str) -> str | None:
    """The URL's route name; None for another site or a static file."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.netloc != "testserver":
        return None
    if parts.path.startswith("/static/"):
        return None
    try:
        return resolve(parts.path).view_name
    except Resolver404:
        return None


def test_every_field_a_page_sends_is_declared_and_fuzzed(pages):
    """test_hostile_requests feeds each endpoint the fields that ENDPOINTS declares for it: every
    field that a form or a link of a page sends to an endpoint must be among them."""
    undeclared = set()
    for page in pages:
        parser = parse(page)
        sent = [(target, form.names) for form in parser.forms for target in form.targets]
        sent += [(url, set()) for url in parser.urls]
        for url, names in sent:
            if (name := view_name(url)) is None:
                continue
            declared = {*ENDPOINTS[name].fields, "csrfmiddlewaretoken"}
            undeclared |= {(name, f) for f in (names | query_names(url)) - declared}
    assert undeclared == set()
