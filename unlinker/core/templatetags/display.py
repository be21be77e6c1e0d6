"""The template side of unlinker.core.display: the only filters the templates use for dates,
times, money and counts.

    {% load display %}
    {{ invoice.invoice_date|day }}              3 Dec 2026
    {{ run.finished_at|moment }}                <time ...>3 Dec 2026, 05:03 AEDT</time>
    {{ step.started_at|moment:connection }}     the same, in that connection's timezone
    {{ run.finished_at|ago }}                   <time ...>5 minutes ago</time>
    {{ invoice.total|money:invoice.currency }}  AUD 3,960.00
    {{ plan.stays_in_xero|money_total }}        one sum per currency
    {{ count|counted:"step" }}                  1 step, 3 steps
    {{ count|counted:"batch,batches" }}
    {% timezone connection|zone %}...{% endtimezone %}   (Django's tz library) times inside
                                                         show in the connection's timezone
"""

from django import template
from django.utils import timezone
from django.utils.html import format_html

from unlinker.core import display

register = template.Library()


def _zone(connection):
    return timezone.get_current_timezone() if connection is None else display.zone_of(connection)


@register.filter
def zone(connection):
    """The connection's timezone, for Django's {% timezone %} tag."""
    return display.zone_of(connection)


@register.filter
def day(value):
    return display.format_date(value)


def _time(value, zone_, title: str, text: str):
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        display.local(value, zone_).isoformat(timespec="seconds"),
        title,
        text,
    )


@register.filter
def moment(value, connection=None):
    """A date and time with its zone named, in a <time> whose tooltip names the zone in full."""
    if not value:
        return ""
    zone_ = _zone(connection)
    return _time(value, zone_, display.zone_name(zone_), display.format_datetime(value, zone_))


@register.filter
def ago(value, connection=None):
    """How long ago, with the date and time itself in the tooltip."""
    if not value:
        return ""
    zone_ = _zone(connection)
    return _time(value, zone_, display.format_datetime(value, zone_), display.relative(value))


@register.filter
def money(amount, currency=""):
    return display.money_html(amount, currency or "")


@register.filter
def money_total(items):
    return format_html('<span class="money">{}</span>', display.money_totals(items))


@register.filter
def counted(count, nouns):
    """`nouns` is "singular" or "singular,plural"."""
    singular, _, plural_form = str(nouns).partition(",")
    try:
        number = int(count)
    except (TypeError, ValueError):
        number = len(count)
    return display.plural(number, singular, plural_form or None)
