"""Time as each API writes it. Stored as integers: epoch seconds for Actionstep (whose
timestamps have one-second resolution), epoch milliseconds for Xero, ISO dates for dates."""

import re
import time
from datetime import UTC, date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from functools import lru_cache

# Actionstep renders timestamps in the org's local time; Brisbane keeps +10:00 all year.
ORG_OFFSET = timedelta(hours=10)
ORG_TZ = timezone(ORG_OFFSET)
_ORG_SUFFIX = "+10:00"
_EPOCH = date(1970, 1, 1)


def now_s() -> int:
    return int(time.time())


def now_ms() -> int:
    return int(time.time() * 1000)


def actionstep_timestamp(epoch_s: int | None) -> str | None:
    if epoch_s is None:
        return None
    # Arithmetic rather than datetime: a page of records renders a thousand and more of these.
    day, seconds = divmod(epoch_s + ORG_OFFSET.seconds, 86400)
    minutes, seconds = divmod(seconds, 60)
    return f"{_day(day)}T{minutes // 60:02d}:{minutes % 60:02d}:{seconds:02d}{_ORG_SUFFIX}"


@lru_cache(maxsize=4096)
def _day(days_since_epoch: int) -> str:
    return (_EPOCH + timedelta(days_since_epoch)).isoformat()


def parse_actionstep_timestamp(text: str) -> int:
    """`2025-03-01T14:23:48+11:00`, a naive time (org time) or a date (its midnight)."""
    text = text.strip().replace(" ", "+")  # a '+' left unescaped in a query string arrives as ' '
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=ORG_TZ)
    return int(value.timestamp())


def xero_date(iso_date: str | None) -> str | None:
    """A calendar date as Xero's `/Date(ms+0000)/` at midnight UTC."""
    if iso_date is None:
        return None
    moment = datetime.combine(date.fromisoformat(iso_date), datetime.min.time(), UTC)
    return f"/Date({int(moment.timestamp()) * 1000}+0000)/"


def xero_datetime(epoch_ms: int) -> str:
    return f"/Date({epoch_ms}+0000)/"


def xero_envelope_time(epoch_ms: int | None = None) -> str:
    """As Xero writes DateTimeUTC and CreatedDateUTC: milliseconds, no offset."""
    return f"/Date({now_ms() if epoch_ms is None else epoch_ms})/"


def xero_connection_time(epoch_ms: int) -> str:
    """As the connections list writes it: UTC, seven decimals, no offset."""
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0")


def utc_iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_if_modified_since(text: str) -> int:
    """Xero documents an ISO timestamp; HTTP clients also send RFC 7231 dates. Epoch ms."""
    text = text.strip()
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        value = parsedate_to_datetime(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def parse_date(text: str) -> str:
    return date.fromisoformat(text.strip()).isoformat()


_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def parse_xero_date(value) -> str:
    """A date as a client sends it to Xero (2025-03-01, 2025-03-01T00:00:00 or
    /Date(1740787200000+0000)/) as an ISO date."""
    text = str(value).strip()
    match = _MS_DATE.match(text)
    if match:
        return datetime.fromtimestamp(int(match[1]) / 1000, UTC).date().isoformat()
    return datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat()
