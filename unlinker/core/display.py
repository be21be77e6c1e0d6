"""How the product shows dates, times, money and counts: one way, for every page, table, CSV
export and message. Templates use it through the `display` template library
(core/templatetags/display.py); Python code calls these functions.

- A date reads "3 Dec 2026"; a time "3 Dec 2026, 05:03 AEDT": day, month name and a 24-hour
  clock cannot be misread in Perth, London or New York, and the zone is always named.
- Times show in the connection's timezone (`zone_of`), and in settings.TIME_ZONE where no
  connection is concerned; Django's current timezone is the one used when none is given.
- Money carries its ISO currency code (Xero's CurrencyCode): "AUD 3,960.00".
- Counts carry their noun, in the singular or the plural as the number needs: "1 step",
  "3 steps"; recent times read "just now", "1 minute ago", "3 hours ago".
"""

import zoneinfo
from collections.abc import Iterable
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.utils import dateformat, timezone
from django.utils.html import format_html

# Django date-format strings (also FORMAT_MODULE_PATH's, see unlinker/formats/).
DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j M Y, H:i"  # then the zone's name: format_datetime
# What a date field accepts: the format it shows first, then the same day spelt out, an ISO
# date (links written by hand or by another tool) and the day-first numeric form Australian
# users type. Every accepted value is shown back in the first format, so that what was
# understood can be seen.
DATE_INPUT_FORMATS = ["%d %b %Y", "%d %B %Y", "%Y-%m-%d", "%d/%m/%Y"]
DATE_PLACEHOLDER = "e.g. 3 Dec 2026"


# --- zones ----------------------------------------------------------------------------------


def default_zone() -> tzinfo:
    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def zone_of(connection=None) -> tzinfo:
    """The timezone a connection's times show in: its own (an IANA name, where the connection
    has one), else the site's. An unknown name falls back to the site's rather than fail."""
    name = getattr(connection, "timezone", "") or settings.TIME_ZONE
    try:
        return zoneinfo.ZoneInfo(str(name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return default_zone()


def zone_name(zone: tzinfo) -> str:
    """The zone's IANA name ("Australia/Perth"), for a tooltip."""
    return getattr(zone, "key", None) or str(zone)


def zone_abbreviation(moment: datetime) -> str:
    """The zone's short name at that moment ("AEDT", "AWST"); zones without one get their
    offset from UTC ("UTC+08")."""
    name = moment.tzname() or ""
    if not name or name[0] in "+-":
        offset = moment.utcoffset() or timedelta(0)
        minutes = int(offset.total_seconds() // 60)
        sign = "-" if minutes < 0 else "+"
        hours, rest = divmod(abs(minutes), 60)
        return f"UTC{sign}{hours:02d}" + (f":{rest:02d}" if rest else "")
    return name


# --- dates and times ------------------------------------------------------------------------


def local(moment: datetime, zone: tzinfo | None = None) -> datetime:
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, zone or timezone.get_current_timezone())
    return timezone.localtime(moment, zone)


def format_date(value: date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = local(value).date()
    return dateformat.format(value, DATE_FORMAT)


def format_datetime(value: datetime | None, zone: tzinfo | None = None) -> str:
    """ "3 Dec 2026, 05:03 AEDT" in `zone` (the current timezone when None)."""
    if value is None:
        return ""
    moment = local(value, zone)
    return f"{dateformat.format(moment, DATETIME_FORMAT)} {zone_abbreviation(moment)}"


def relative(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago (or how soon) a moment is, as people say it: "just now", "1 minute ago",
    "3 hours ago", "in 5 minutes"; past a week, the date and time themselves."""
    if value is None:
        return ""
    now = now or timezone.now()
    seconds = (now - value).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 45:
        return "just now" if not future else "in a moment"
    for unit, size, limit in (
        ("minute", 60, 60 * 60),
        ("hour", 60 * 60, 24 * 60 * 60),
        ("day", 24 * 60 * 60, 7 * 24 * 60 * 60),
    ):
        if seconds < limit - size / 2:
            amount = plural(max(1, round(seconds / size)), unit)
            return f"in {amount}" if future else f"{amount} ago"
    return format_datetime(value)


# --- money and counts -----------------------------------------------------------------------


def format_amount(amount) -> str:
    """The number alone: thousands separated, two decimals ("3,960.00")."""
    if amount is None or amount == "":
        return ""
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"))
    except InvalidOperation:
        return str(amount)
    return f"{value:,.2f}"


def format_money(amount, currency: str = "") -> str:
    """ "AUD 3,960.00"; without a known currency, the amount alone. (Pages keep the two on one
    line: the `money` filter and the tables' MoneyColumn.)"""
    number = format_amount(amount)
    if not number:
        return ""
    return f"{currency} {number}" if currency else number


def money_html(amount, currency: str = ""):
    """format_money for a page: the code and the amount each kept on one line, so that a
    narrow column puts the code above a large amount rather than cut either."""
    number = format_amount(amount)
    if not number:
        return ""
    if not currency:
        return format_html('<span class="money"><span class="amount">{}</span></span>', number)
    return format_html(
        '<span class="money"><span class="currency">{}</span> <span class="amount">{}</span>'
        "</span>",
        currency,
        number,
    )


def money_totals(items: Iterable, amount: str = "amount", currency: str = "currency") -> str:
    """The sum of several amounts, one sum per currency ("AUD 1,200.00 + NZD 80.00"): adding
    up amounts of different currencies would give a number that means nothing."""
    totals: dict[str, Decimal] = {}
    for item in items:
        code = getattr(item, currency, "") or ""
        totals[code] = totals.get(code, Decimal(0)) + Decimal(getattr(item, amount) or 0)
    if not totals:
        return format_money(Decimal(0))
    return " + ".join(format_money(total, code) for code, total in sorted(totals.items()))


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """ "1 step", "3 steps", "1,204 batches" (plural_form when adding an s is wrong)."""
    noun = singular if count == 1 else (plural_form or f"{singular}s")
    return f"{count:,} {noun}"


def yes_no(value) -> str:
    return "Yes" if value else "No"
