"""Xero's names of time zones (the `TimeZone` enum of xero_accounting.yaml, read from
`GET /Organisation`'s `Timezone`) as IANA names.

Xero names a zone by its Windows zone id, upper-cased, with spaces, dots and hyphens dropped
(but not parentheses or "+"): "AUS Eastern Standard Time" is AUSEASTERNSTANDARDTIME, "UTC-02"
is UTC02, "Central Standard Time (Mexico)" is CENTRALSTANDARDTIME(MEXICO). The Windows ids are
mapped to IANA names by Unicode CLDR's windowsZones table (the zone of territory "001" of
each), which tzlocal ships and keeps current; we only spell its keys the way Xero does.
"""

import re
import zoneinfo
from functools import cache

from tzlocal.windows_tz import win_tz

# Windows ids that Xero still lists but CLDR's current table dropped when Windows retired them;
# CLDR's last mappings of them.
RETIRED = {
    "KAMCHATKASTANDARDTIME": "Asia/Kamchatka",
    "MIDATLANTICSTANDARDTIME": "Etc/GMT+2",
}


def xero_spelling(windows_id: str) -> str:
    return re.sub(r"[ .\-]", "", windows_id).upper()


@cache
def _table() -> dict[str, str]:
    return {**RETIRED, **{xero_spelling(name): iana for name, iana in win_tz.items()}}


def iana_timezone(xero_name: str | None) -> str | None:
    """The IANA zone of a Xero `Timezone` value, or None when there is none or it is unknown
    (the connection then keeps the zone chosen when connecting)."""
    if not xero_name:
        return None
    iana = _table().get(xero_spelling(xero_name))
    return iana if iana in zoneinfo.available_timezones() else None
