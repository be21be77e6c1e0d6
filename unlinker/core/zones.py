"""IANA time zones: the names a connection's `timezone` may take, and the grouped choices of
the select that picks one."""

import zoneinfo
from functools import cache
from importlib import resources

from django.conf import settings
from django.core.exceptions import ValidationError


@cache
def zone_names() -> frozenset[str]:
    """Every zone this machine knows, aliases included (what a stored value may be)."""
    # The "posix/" and "right/" copies of the system's database are the same zones again.
    return frozenset(
        name
        for name in zoneinfo.available_timezones()
        if not name.startswith(("posix/", "right/")) and name != "localtime"
    )


@cache
def offered_zones() -> tuple[str, ...]:
    """The zones a person picks from: one or more per country, as the tz database's zone.tab
    lists them (from the tzdata package, so the same on every machine), and UTC. The old
    aliases (Australia/ACT, US/Pacific...) are left out of the list; they stay valid."""
    table = resources.files("tzdata.zoneinfo").joinpath("zone.tab").read_text(encoding="utf-8")
    names = {
        line.split("\t")[2]
        for line in table.splitlines()
        if line and not line.startswith("#") and line.count("\t") >= 2
    }
    return tuple(sorted((names & zone_names()) | {"UTC"}))


def default_zone() -> str:
    return settings.TIME_ZONE


def validate_zone(name: str) -> None:
    if name not in zone_names():
        raise ValidationError(
            "%(name)s is not a time zone: choose one such as Australia/Sydney.",
            params={"name": name},
            code="unknown_zone",
        )


def zone_choices(current: str = "") -> list[tuple[str, list[tuple[str, str]]]]:
    """[(region, [(name, label), ...]), ...] for a select with one group per region: the
    Australian zones are under "Australia" as "Australia/Perth"... `current` is offered too
    when it is not in the list (a zone Xero gave, such as Etc/GMT+2), so that a form shows
    what is stored."""
    names = set(offered_zones()) | ({current} if current in zone_names() else set())
    groups: dict[str, list[tuple[str, str]]] = {}
    for name in sorted(names):
        region, _, place = name.partition("/")
        if not place or region == "Etc":
            region, place = "Other", name
        # the whole name, as the Connections page shows it: the closed select reads the same
        groups.setdefault(region, []).append((name, name.replace("_", " ")))
    return sorted(groups.items(), key=lambda group: (group[0] == "Other", group[0]))
