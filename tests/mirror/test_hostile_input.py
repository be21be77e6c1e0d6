"""Whatever a query string or a post carries (wrong types, huge numbers, SQL and HTML fragments,
another connection's ids), the answer is a page, never a 500, and never another connection's
rows."""

import re

import pytest
from django.http import QueryDict
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st

from unlinker.core.selection import Selection
from unlinker.mirror.models import LinkedInvoice, LinkedPayment
from unlinker.unlinking.models import UnlinkBatch

from . import factories

pytestmark = pytest.mark.django_db

# Each test makes its rows and logs in once; its examples only read them, inside the test's
# transaction.
HOSTILE = settings(max_examples=50, deadline=None)

PARAMETERS = [
    "date_from",
    "date_to",
    "q",
    "matter",
    "contact",
    "amount_min",
    "amount_max",
    "link_status",
    "xero_status",
    "has_payments",
    "sort",
    "page",
    "per_page",
    "_export",
    "connection",
    "connection_id",
    "pk",
    "_all",
]
FRAGMENTS = [
    "' OR 1=1 --",
    "1; DROP TABLE mirror_linkedinvoice",
    '"><script>alert(1)</script>',
    "<img src=x onerror=alert(1)>",
    "%00",
    "\x00",
    "2024-13-45",
    "0000-00-00",
    "9" * 400,
    "-1",
    "1e999",
    "NaN",
    "-Infinity",
    "0x1F",
    "__class__",
    "connection__name",
    "-pk",
    "total,-id",
    "csv",
    "xlsx",
    "unchecked",
    "AUTHORISED",
]


def values(other_ids: list[int]):
    return st.one_of(
        st.text(max_size=30),
        st.integers(min_value=-(10**30), max_value=10**30).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(str),
        st.dates().map(str),
        st.sampled_from(FRAGMENTS),
        st.sampled_from(other_ids).map(str),
    )


def queries(other_ids: list[int]):
    keys = st.one_of(st.sampled_from(PARAMETERS), st.text(max_size=8))
    return st.dictionaries(keys, st.lists(values(other_ids), min_size=1, max_size=3), max_size=8)


@pytest.fixture
def scene(member_of, firm, other_firm):
    factories.invoices(firm, 30, linked_payment_count=1)
    factories.payments(firm, 30)
    theirs = [
        *LinkedInvoice.objects.filter(connection=other_firm).values_list("pk", flat=True),
        *LinkedPayment.objects.filter(connection=other_firm).values_list("pk", flat=True),
        other_firm.pk,
    ]
    mine = {
        "invoices": {
            str(pk)
            for pk in LinkedInvoice.objects.filter(connection=firm).values_list("pk", flat=True)
        },
        "payments": {
            str(pk)
            for pk in LinkedPayment.objects.filter(connection=firm).values_list("pk", flat=True)
        },
    }
    return member_of("operator"), theirs, mine


def listed(body: str) -> set[str]:
    return set(re.findall(r'name="pk" value="(\d+)"', body))


@pytest.mark.parametrize("kind, name", [("invoices", "invoice_list"), ("payments", "payment_list")])
@pytest.mark.parametrize("headers", [{}, {"HX-Request": "true"}], ids=["page", "htmx"])
def test_list_pages_survive_hostile_query_strings(scene, firm, kind, name, headers):
    client, theirs, mine = scene
    url = reverse(f"mirror:{name}", args=[firm.pk])

    @HOSTILE
    @given(query=queries(theirs))
    def check(query):
        response = client.get(url, query, headers=headers)
        assert response.status_code == 200, query
        if response.streaming:
            body = b"".join(response.streaming_content).decode()
        else:
            body = response.content.decode()
        assert "OTHER-FIRM-SECRET" not in body
        if response["Content-Type"].startswith("text/html"):
            assert listed(body) <= mine[kind]

    check()


def test_unlink_survives_hostile_posts(scene, firm):
    client, theirs, _mine = scene
    posts = st.fixed_dictionaries(
        {"kind": st.sampled_from(["invoices", "payments"])},
        optional={
            "pk": st.lists(values(theirs), max_size=10),
            "_all": st.sampled_from(["1", "0", "", "true", "<b>"]),
        },
    )

    @HOSTILE
    @given(query=queries(theirs), post=posts)
    def check(query, post):
        response = client.post(
            reverse("unlinking:plan", args=[firm.pk]) + "?" + _encode(query), post
        )
        # a plan to confirm, or a 400 saying why there is none: never a 500, never a change
        assert response.status_code in (200, 400), (query, post)
        assert "OTHER-FIRM-SECRET" not in response.content.decode()
        assert not UnlinkBatch.objects.exists()

    check()


def test_selection_never_leaves_its_connection(scene, firm, rf):
    _client, theirs, _mine = scene

    @HOSTILE
    @given(
        query=queries(theirs),
        ids=st.lists(values(theirs), max_size=10),
        kind=st.sampled_from(["invoices", "payments"]),
        everything=st.booleans(),
    )
    def check(query, ids, kind, everything):
        request = rf.post(
            "/?" + _encode(query), {"pk": ids, **({"_all": "1"} if everything else {})}
        )
        selection = Selection.from_request(request, firm, kind)
        assert set(selection.queryset().values_list("connection_id", flat=True)) <= {firm.pk}
        assert Selection.from_dict(selection.to_dict()) == selection

    check()


def _encode(query: dict) -> str:
    encoded = QueryDict(mutable=True)
    for key, value in query.items():
        encoded.setlist(key, value)
    return encoded.urlencode()
