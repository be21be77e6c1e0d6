"""Hypothesis strategies for what a hostile or careless client sends: wrong types, huge and
negative numbers, unicode, SQL, HTML and template fragments, path traversal, other firms' ids,
empty and very long values, and junk parameter names."""

from django.http import QueryDict
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# The scene is made once per test; each example only reads it, or must leave it unchanged.
HOSTILE = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

FRAGMENTS = [
    # SQL
    "' OR 1=1 --",
    '" OR ""="',
    "1; DROP TABLE mirror_linkedinvoice; --",
    "1 UNION SELECT username, password FROM auth_user",
    "%' AND 1=1 AND '%'='",
    # HTML, JS, templates
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(1)",
    "{{ 7|add:7 }}{% debug %}",
    "${7*7}",
    # paths and redirects
    "../../../../etc/passwd",
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "//evil.example/",
    "https://evil.example/",
    "/\\evil.example",
    # numbers that are not
    "-1",
    "0",
    "-0",
    "1e999",
    "NaN",
    "-Infinity",
    "0x1F",
    "1_000",
    "٣",  # an Arabic-Indic digit: str.isdecimal() says yes
    str(2**63),
    str(-(2**63) - 1),
    "9" * 400,
    "9" * 4301,  # past int()'s limit on the digits of a string (ValueError)
    # dates that are not
    "2024-13-45",
    "0000-00-00",
    "9999-12-31",
    # control characters and odd text
    "\x00",
    "%00",
    "\r\nSet-Cookie: x=1",
    "\u202egnp.exe",
    "🦄" * 50,
    " ",
    "",
    # names the code compares against
    "csv",
    "xlsx",
    "1",
    "true",
    "on",
    "invoices",
    "payments",
    "__class__",
    "-pk",
    "connection__name",
]


def values(foreign_ids: list[int]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=40),
        st.integers(min_value=-(10**40), max_value=10**40).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(str),
        st.decimals(allow_nan=True, allow_infinity=True).map(str),
        st.dates().map(str),
        st.sampled_from(FRAGMENTS),
        st.sampled_from(foreign_ids).map(str),
        # very long values: a megabyte-sized field must not reach the database as a filter
        st.builds(
            str.__mul__, st.sampled_from(["x", "9", "<", "é", "'"]), st.integers(250, 20_000)
        ),
    )


def parameters(
    fields: tuple[str, ...], all_fields: tuple[str, ...], foreign_ids: list[int]
) -> st.SearchStrategy[dict[str, list[str]]]:
    """A query string or a form: mostly the endpoint's own fields, some of every other page's,
    some junk names; each with one to three values."""
    names = st.one_of(
        *([st.sampled_from(fields)] * 3 if fields else []),
        st.sampled_from(all_fields),
        st.text(max_size=10),
    )
    return st.dictionaries(names, st.lists(values(foreign_ids), min_size=1, max_size=3), max_size=8)


HTMX_HEADERS = st.sampled_from(
    [
        {},
        {"HX-Request": "true"},
        {"HX-Request": "true", "HX-Target": "results"},
        {"HX-Request": "true", "HX-Target": "plan"},
        {"HX-Request": "true", "HX-Boosted": "true"},
        {"HX-Request": "true", "HX-History-Restore-Request": "true"},
    ]
)


def encode(params: dict[str, list[str]]) -> str:
    encoded = QueryDict(mutable=True)
    for name, values_ in params.items():
        encoded.setlist(name, values_)
    return encoded.urlencode()
