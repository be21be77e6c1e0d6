"""Every page of the product, as its most privileged user sees it (plus the pages only others
get: the login, 403, 404 and "no connection" pages), and what an HTML parser finds in it."""

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urljoin, urlsplit

from django.db import transaction
from django.http import HttpResponse

from unlinker.connections.views import TENANT_CHOICES

from .endpoints import ENDPOINTS
from .scene import Scene

HTMX_RESULTS = {"HX-Request": "true", "HX-Target": "results"}
HTMX_PLAN = {"HX-Request": "true", "HX-Target": "plan"}


@dataclass
class Page:
    label: str
    url: str
    response: HttpResponse

    @property
    def html(self) -> str:
        return self.response.content.decode()


def crawl(scene: Scene, signed_in, make_user) -> list[Page]:
    """The HTML answers (redirects aside) of every GET endpoint, as a page and as an htmx
    fragment, of every action that answers with HTML, and of the pages shown only in some
    states or to some users."""
    admin = signed_in("admin")
    pages: list[Page] = []

    def visit(client, label: str, method: str, url: str, data=None, headers=None, **kw) -> None:
        response = getattr(client, method)(url, data or {}, headers=headers or {}, **kw)
        if not 300 <= response.status_code < 400 and "html" in response.get("Content-Type", ""):
            pages.append(Page(label, url, response))

    session = admin.session
    session[TENANT_CHOICES] = {
        "connection": scene.connection.pk,
        "tenants": {"t-1": "Smith Xero", "t-2": "Smith Trust Xero"},
    }
    session.save()  # the organisation picker shows only during a Xero connection
    for endpoint in ENDPOINTS.values():
        url = endpoint.url(endpoint.target_id(scene))
        if "GET" in endpoint.methods:
            visit(admin, endpoint.name, "get", url)
            visit(admin, f"{endpoint.name} (htmx)", "get", url, headers=HTMX_RESULTS)
        else:  # an action, on a client of its own and undone: a sign-out or a disconnect
            with transaction.atomic():  # must not change what the rest of the crawl sees
                visit(signed_in("admin"), endpoint.name, "post", url, endpoint.example(scene))
                transaction.set_rollback(True)

    unlink = ENDPOINTS["unlinking:plan"].url(scene.connection.pk)
    payment = str(scene.firm.payments[0].pk)
    visit(admin, "plan of payments", "post", unlink, {"kind": "payments", "pk": [payment]})
    plan = ENDPOINTS["unlinking:plan"]
    visit(admin, "plan option changed", "post", unlink, plan.example(scene), HTMX_PLAN)
    visit(admin, "nothing to plan", "post", unlink, {"kind": "invoices"})
    visit(
        admin,
        "nothing to clean up",
        "post",
        ENDPOINTS["reconciliation:cleanup"].url(scene.connection.pk),
    )
    batch = ENDPOINTS["unlinking:batch"].url(scene.batch.pk)
    visit(admin, "failed steps", "get", batch, {"state": "failed"})
    visit(
        admin,
        "second page",
        "get",
        ENDPOINTS["mirror:invoice_list"].url(scene.connection.pk),
        {"page": "2", "per_page": "25", "sort": "-total"},
    )
    visit(admin, "not found", "get", "/no-such-page/")
    visit(signed_in("anonymous"), "login", "get", ENDPOINTS["login"].url())
    visit(signed_in("viewer"), "not allowed", "get", ENDPOINTS["connections:list"].url())
    visit(signed_in("operator"), "batch for an operator", "get", batch)
    team = ENDPOINTS["connections:team"].url(scene.connection.pk)
    viewer = str(scene.users["viewer"].pk)
    remove = ENDPOINTS["connections:remove_member"].url(scene.connection.pk)
    visit(admin, "remove a member", "get", remove, {"user": viewer})
    new_person = ENDPOINTS["connections:new_person"].url(scene.connection.pk)
    visit(admin, "new person refused", "post", new_person, {"new-username": "<b>x</b>"})
    with transaction.atomic():  # the login is not kept
        newcomer = {"new-username": "newcomer", "new-role": "viewer", "new-password": "temporary"}
        admin.post(new_person, newcomer)
        visit(admin, "team with a temporary password", "get", team)
        transaction.set_rollback(True)
    visit(admin, "change password", "get", ENDPOINTS["password_change"].url())
    link = set_password_link(scene.users["viewer"])
    visit(signed_in("anonymous"), "set password", "get", link, follow=True)
    outsider = signed_in("anonymous")
    outsider.force_login(make_user("outsider", "viewer"))  # a member of no connection
    for name in ("mirror:invoices", "mirror:payments", "reconciliation:report"):
        visit(outsider, f"{name} without a connection", "get", ENDPOINTS[name].url())
    return pages


def set_password_link(user) -> str:
    """The path of the link a set-password email carries (Django's token machinery)."""
    from django.contrib.auth.tokens import default_token_generator
    from django.urls import reverse
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse("set_password", args=[uid, default_token_generator.make_token(user)])


# --- What the parser finds -------------------------------------------------------------------
URL_ATTRIBUTES = ("href", "src", "action", "formaction", "hx-get", "hx-post")


@dataclass
class Form:
    method: str
    action: str
    names: set[str] = field(default_factory=set)
    formactions: list[str] = field(default_factory=list)

    @property
    def targets(self) -> list[str]:
        """Where its fields go: the buttons' own formactions, else the form's action."""
        return self.formactions or [self.action]


class PageParser(HTMLParser):
    """Collects what the CSP forbids (inline script and style, event handler attributes,
    javascript: URLs), the forms with the names of their fields, and every URL the page
    links to."""

    def __init__(self, page_url: str):
        super().__init__(convert_charrefs=True)
        self.page_url = page_url
        self.problems: list[str] = []
        self.forms: list[Form] = []
        self.urls: list[str] = []
        self._open_forms: list[Form] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script":
            self._in_script = True
            if not attributes.get("src"):
                self.problems.append("an inline <script>")
        if tag == "style":
            self.problems.append("a <style> element")
        for name, value in attrs:
            if name == "style":
                self.problems.append(f'style="{value}" on <{tag}>')
            if name.startswith(("on", "hx-on", "data-hx-on")):
                self.problems.append(f"{name}= on <{tag}>")
            if name in URL_ATTRIBUTES and value is not None:
                if value.strip().lower().startswith("javascript:"):
                    self.problems.append(f"a javascript: URL in {name}= on <{tag}>")
                self.urls.append(urljoin(self.page_url, value))
        if tag == "form":
            action = urljoin(self.page_url, attributes.get("action") or self.page_url)
            form = Form((attributes.get("method") or "get").upper(), action)
            self.forms.append(form)
            self._open_forms.append(form)
        elif self._open_forms and tag in ("input", "select", "textarea", "button"):
            if attributes.get("name"):
                self._open_forms[-1].names.add(attributes["name"])
            if attributes.get("formaction"):
                formaction = urljoin(self.page_url, attributes["formaction"])
                self._open_forms[-1].formactions.append(formaction)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag == "script":
            self._in_script = False

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False
        if tag == "form" and self._open_forms:
            self._open_forms.pop()

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.problems.append("a <script> with a body")


def parse(page: Page) -> PageParser:
    parser = PageParser(f"http://testserver{page.url}")
    parser.feed(page.html)
    parser.close()
    return parser


def query_names(url: str) -> set[str]:
    return {name for name, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
