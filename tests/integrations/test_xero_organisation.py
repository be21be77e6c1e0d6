"""GET /Organisation and Xero's time-zone names: every name of the `TimeZone` enum of Xero's
OpenAPI description has an IANA zone, and the organisation's zone reaches the connection."""

import zoneinfo
from functools import cache

import pytest

from tests.sandbox.test_xero_schemas import REFERENCE
from unlinker.integrations.errors import NotFound
from unlinker.integrations.xero_timezones import iana_timezone, xero_spelling

from .conftest import XERO_API


@cache
def xero_timezone_names() -> list[str]:
    path = REFERENCE / "xero_accounting.yaml"
    if not path.exists():
        pytest.skip(f"Xero's OpenAPI description is not here ({path}): names not checked")
    yaml = pytest.importorskip("yaml", reason="PyYAML reads Xero's OpenAPI description")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = yaml.load(path.read_text(), Loader=loader)  # noqa: S506
    names = spec["components"]["schemas"]["TimeZone"]["enum"]
    # Organisation.Timezone is that enum
    assert spec["components"]["schemas"]["Organisation"]["properties"]["Timezone"]["$ref"] == (
        "#/components/schemas/TimeZone"
    )
    return names


def test_every_xero_time_zone_name_has_an_iana_zone():
    names = xero_timezone_names()
    assert len(names) > 130
    unmapped = [name for name in names if iana_timezone(name) is None]
    assert unmapped == []
    for name in names:
        zoneinfo.ZoneInfo(iana_timezone(name))  # loads


@pytest.mark.parametrize(
    ("xero", "iana"),
    [
        ("AUSEASTERNSTANDARDTIME", "Australia/Sydney"),
        ("EAUSTRALIASTANDARDTIME", "Australia/Brisbane"),
        ("WAUSTRALIASTANDARDTIME", "Australia/Perth"),
        ("CENAUSTRALIASTANDARDTIME", "Australia/Adelaide"),
        ("AUSCENTRALSTANDARDTIME", "Australia/Darwin"),
        ("TASMANIASTANDARDTIME", "Australia/Hobart"),
        ("LORDHOWESTANDARDTIME", "Australia/Lord_Howe"),
        ("NEWZEALANDSTANDARDTIME", "Pacific/Auckland"),
        ("CHATHAMISLANDSSTANDARDTIME", "Pacific/Chatham"),
        ("GMTSTANDARDTIME", "Europe/London"),
        ("SINGAPORESTANDARDTIME", "Asia/Singapore"),
        ("CENTRALSTANDARDTIME(MEXICO)", "America/Mexico_City"),
        ("UTC", "Etc/UTC"),
        ("UTC02", "Etc/GMT+2"),  # Windows' "UTC-02": two hours behind, POSIX-signed
        ("UTC+12", "Etc/GMT-12"),
        ("KAMCHATKASTANDARDTIME", "Asia/Kamchatka"),  # retired by Windows, still in Xero's list
    ],
)
def test_names_map_to_the_zone_people_there_use(xero, iana):
    assert iana_timezone(xero) == iana


def test_unknown_or_missing_names_give_no_zone():
    assert iana_timezone("") is None
    assert iana_timezone(None) is None
    assert iana_timezone("MARSSTANDARDTIME") is None


def test_the_spelling_is_xero_s():
    assert xero_spelling("AUS Eastern Standard Time") == "AUSEASTERNSTANDARDTIME"
    assert xero_spelling("W. Australia Standard Time") == "WAUSTRALIASTANDARDTIME"
    assert xero_spelling("UTC-02") == "UTC02"
    assert xero_spelling("Central Standard Time (Mexico)") == "CENTRALSTANDARDTIME(MEXICO)"


def test_get_organisation_reads_the_name_and_zone(xero, mocked):
    # the shape of Xero's example answer for GET /Organisation (xero_accounting.yaml)
    mocked.get(
        f"{XERO_API}/Organisation",
        json={
            "Id": "27b7a645-a3ee-43c8-b2c6-a2fa7b84c8c5",
            "Status": "OK",
            "Organisations": [
                {
                    "OrganisationID": "b2c885a9-4bb9-4a00-9b6e-6c2bf60b1a2b",
                    "Name": "Dev Evangelist - Sid Test 3 (NZ-2016-02)",
                    "BaseCurrency": "NZD",
                    "Timezone": "NEWZEALANDSTANDARDTIME",
                }
            ],
        },
    )
    organisation = xero.get_organisation()
    assert organisation.name == "Dev Evangelist - Sid Test 3 (NZ-2016-02)"
    assert organisation.timezone == "NEWZEALANDSTANDARDTIME"
    assert mocked.calls[0].request.headers["Xero-tenant-id"] == xero.tenant_id


def test_an_answer_without_an_organisation_is_not_found(xero, mocked):
    mocked.get(f"{XERO_API}/Organisation", json={"Organisations": []})
    with pytest.raises(NotFound):
        xero.get_organisation()
