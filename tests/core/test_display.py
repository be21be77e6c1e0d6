"""Dates, times, money and counts, one way everywhere (unlinker.core.display and its template
library), and the guard that keeps the templates and messages on it."""

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.template import Context, Template
from django.utils import timezone

from unlinker.core import display
from unlinker.core.listviews import page_number
from unlinker.mirror.filters import LinkedInvoiceFilterSet
from unlinker.mirror.models import LinkedInvoice

ROOT = Path(__file__).resolve().parents[2]
MOMENT = datetime(2026, 12, 2, 18, 3, tzinfo=UTC)  # 3 Dec 2026 05:03 in Sydney (AEDT)


def render(source: str, **context) -> str:
    return Template("{% load display %}" + source).render(Context(context))


# --- zones and times ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "zone, shown",
    [
        ("Australia/Sydney", "3 Dec 2026, 05:03 AEDT"),
        ("Australia/Perth", "3 Dec 2026, 02:03 AWST"),
        ("Europe/London", "2 Dec 2026, 18:03 GMT"),
        ("Asia/Kolkata", "2 Dec 2026, 23:33 IST"),
        ("America/Sao_Paulo", "2 Dec 2026, 15:03 UTC-03"),  # a zone without a name: its offset
        ("Asia/Kathmandu", "2 Dec 2026, 23:48 UTC+05:45"),
    ],
)
def test_a_time_shows_in_its_zone_with_the_zone_named(zone, shown):
    assert display.format_datetime(MOMENT, ZoneInfo(zone)) == shown


def test_a_connections_zone_or_the_sites(settings):
    settings.TIME_ZONE = "Australia/Sydney"
    assert display.zone_of(SimpleNamespace(timezone="Australia/Perth")).key == "Australia/Perth"
    assert display.zone_of(SimpleNamespace(timezone="")).key == "Australia/Sydney"
    assert display.zone_of(SimpleNamespace()).key == "Australia/Sydney"  # before the field
    assert display.zone_of(SimpleNamespace(timezone="Mars/Olympus")).key == "Australia/Sydney"
    assert display.zone_of(None).key == "Australia/Sydney"


def test_without_a_zone_the_current_one_is_used():
    with timezone.override(ZoneInfo("Australia/Perth")):
        assert display.format_datetime(MOMENT) == "3 Dec 2026, 02:03 AWST"
        assert display.format_date(MOMENT) == "3 Dec 2026"
    assert display.format_date(date(2026, 12, 3)) == "3 Dec 2026"
    assert display.format_date(None) == display.format_datetime(None) == ""


@pytest.mark.parametrize(
    "ago, said",
    [
        (timedelta(seconds=0), "just now"),
        (timedelta(seconds=44), "just now"),
        (timedelta(seconds=45), "1 minute ago"),
        (timedelta(seconds=89), "1 minute ago"),
        (timedelta(minutes=2), "2 minutes ago"),
        (timedelta(minutes=59), "59 minutes ago"),
        (timedelta(minutes=61), "1 hour ago"),
        (timedelta(hours=5), "5 hours ago"),
        (timedelta(hours=23), "23 hours ago"),
        (timedelta(days=1), "1 day ago"),
        (timedelta(days=6), "6 days ago"),
        (-timedelta(minutes=5), "in 5 minutes"),
        (-timedelta(seconds=10), "in a moment"),
    ],
)
def test_relative_times_read_naturally(ago, said):
    assert display.relative(MOMENT - ago, now=MOMENT) == said


def test_past_a_week_a_relative_time_is_the_time_itself():
    with timezone.override(ZoneInfo("Australia/Sydney")):
        assert display.relative(MOMENT - timedelta(days=8), now=MOMENT) == (
            "25 Nov 2026, 05:03 AEDT"
        )


def test_the_template_filters_name_the_zone_in_a_time_element(settings):
    connection = SimpleNamespace(timezone="Australia/Perth")
    html = render("{{ when|moment:connection }}", when=MOMENT, connection=connection)
    assert html == (
        '<time datetime="2026-12-03T02:03:00+08:00" title="Australia/Perth">'
        "3 Dec 2026, 02:03 AWST</time>"
    )
    html = render("{{ when|ago:connection }}", when=timezone.now(), connection=connection)
    assert ">just now</time>" in html and "AWST" in html
    assert render("{{ day|day }}", day=date(2026, 1, 9)) == "9 Jan 2026"
    with timezone.override(ZoneInfo("Europe/London")):
        assert "18:03 GMT" in render("{{ when|moment }}", when=MOMENT)
    assert render("{{ nothing|moment }}{{ nothing|ago }}", nothing=None) == ""


# --- money and counts ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount, currency, shown",
    [
        (Decimal("3960"), "AUD", "AUD 3,960.00"),
        (Decimal("1234567.891"), "NZD", "NZD 1,234,567.89"),
        (Decimal("-5"), "AUD", "AUD -5.00"),
        ("3960.00", "", "3,960.00"),  # SQLite's subqueries hand amounts back as text
        (Decimal("0"), "GBP", "GBP 0.00"),
        (None, "AUD", ""),
    ],
)
def test_money_carries_its_currency(amount, currency, shown):
    assert display.format_money(amount, currency) == shown


def test_money_on_a_page_keeps_the_code_and_the_amount_whole():
    assert render("{{ a|money:'AUD' }}", a=Decimal("12.5")) == (
        '<span class="money"><span class="currency">AUD</span> '
        '<span class="amount">12.50</span></span>'
    )
    assert render("{{ a|money:code }}", a=1, code="<b>") == (
        '<span class="money"><span class="currency">&lt;b&gt;</span> '
        '<span class="amount">1.00</span></span>'
    )


def test_a_total_of_several_currencies_is_one_sum_per_currency():
    items = [
        SimpleNamespace(amount=Decimal("100"), currency="AUD"),
        SimpleNamespace(amount=Decimal("50.5"), currency="NZD"),
        SimpleNamespace(amount=Decimal("1000"), currency="AUD"),
    ]
    assert display.money_totals(items) == "AUD 1,100.00 + NZD 50.50"
    assert display.money_totals([]) == "0.00"


@pytest.mark.parametrize(
    "count, nouns, said",
    [
        (0, "step", "0 steps"),
        (1, "step", "1 step"),
        (3, "step", "3 steps"),
        (1204, "batch,batches", "1,204 batches"),
        (1, "batch,batches", "1 batch"),
    ],
)
def test_counts_carry_their_noun_in_the_right_number(count, nouns, said):
    assert render("{{ n|counted:nouns }}", n=count, nouns=nouns) == said


def test_a_list_counts_as_its_length():
    assert render('{{ items|counted:"record" }}', items=[1, 2]) == "2 records"


# --- dates in filters, paging -------------------------------------------------------------


@pytest.mark.parametrize("typed", ["3 Dec 2026", "3 December 2026", "2026-12-03", "3/12/2026"])
def test_a_date_filter_accepts_the_lists_format_and_shows_it_back(typed):
    filterset = LinkedInvoiceFilterSet({"date_from": typed}, LinkedInvoice.objects.none())
    assert filterset.is_valid()
    assert filterset.form.cleaned_data["date_from"] == date(2026, 12, 3)
    assert 'value="3 Dec 2026"' in str(filterset.form["date_from"])
    assert 'type="text"' in str(filterset.form["date_from"])  # not the browser's date picker


def test_a_bad_date_is_shown_as_typed_and_marked():
    filterset = LinkedInvoiceFilterSet({"date_from": "31 Feb 2026"}, LinkedInvoice.objects.none())
    assert not filterset.is_valid()
    field = str(filterset.form["date_from"])
    assert 'value="31 Feb 2026"' in field
    assert 'aria-invalid="true"' in field and 'aria-describedby="id_date_from_error"' in field


@pytest.mark.parametrize(
    "asked, shown",
    [
        ("1", 1),
        ("3", 3),
        ("4", 4),
        ("99", 4),  # a list that has since shrunk: its last page
        ("0", 1),
        ("-1", 1),
        ("-99", 1),
        ("abc", 1),
        ("", 1),
        (None, 1),
        ("9" * 5000, 1),  # int() refuses more than 4,300 digits
    ],
)
def test_a_page_number_is_a_page_of_the_list(asked, shown):
    assert page_number(asked, num_pages=4) == shown
    assert page_number(asked, num_pages=0) == 1


# --- one way, everywhere ------------------------------------------------------------------

# Django's own ways to show a date, a time or an amount, and the wording they lead to.
OTHER_WAYS = re.compile(
    r"\|\s*(date|time|timesince|timeuntil|naturaltime|naturalday|floatformat)\b"
)


def test_templates_show_dates_times_and_money_only_through_the_display_filters():
    offenders = []
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        for number, line in enumerate(text.splitlines(), start=1):
            if OTHER_WAYS.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
            # a `{# ... #}` comment is one line in Django: a second line would be shown
            if "{#" in line and "#}" not in line:
                offenders.append(f"{path.relative_to(ROOT)}:{number}: unclosed {{#")
    assert not offenders, "\n".join(offenders)


def test_no_message_hedges_its_plural():
    """ "3 step(s) queued again": messages, reasons and pages say "3 steps" (display.plural,
    the `counted` filter)."""
    hedged = re.compile(r"\w\(s\)")
    messages = re.compile(r"""\bf?["'][^"']*\w\(s\)""")  # in a string literal of the code
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in [*(ROOT / "unlinker").rglob("*.py"), *(ROOT / "templates").rglob("*.html")]
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if (hedged if path.suffix == ".html" else messages).search(line)
        and not line.lstrip().startswith(('"""', "#"))
    ]
    assert not offenders, "\n".join(offenders)
