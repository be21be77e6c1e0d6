"""The sandbox's JSON schemas of Xero's answers are sound, and name nothing Xero does not."""

from functools import cache
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from tests.sandbox.support import schema
from unlinker.sandbox.config import ROOT

# Xero's descriptions, vendored with their licence (tests/contract/xero/README.md).
REFERENCE = ROOT / "tests" / "contract" / "xero"
NAMES = ("invoices", "payments", "connections", "validation_error")
# Fields of Xero's answers that its description shows in examples only.
FROM_EXAMPLES = {"Id", "Status", "ProviderName", "DateTimeUTC", "DateString", "DueDateString"}
# Which official schema each of ours describes: (our file, JSON pointer) → official name.
OFFICIAL = {
    ("invoices", ""): "Invoices",
    ("invoices", "/$defs/Invoice"): "Invoice",
    ("invoices", "/$defs/InvoicePayment"): "Payment",
    ("invoices", "/$defs/Contact"): "Contact",
    ("invoices", "/$defs/LineItem"): "LineItem",
    ("invoices", "/$defs/Pagination"): "Pagination",
    ("payments", ""): "Payments",
    ("payments", "/$defs/Payment"): "Payment",
    ("payments", "/$defs/PaymentInvoice"): "Invoice",
    ("payments", "/$defs/PaymentInvoice/properties/Contact"): "Contact",
    ("payments", "/$defs/Account"): "Account",
    ("validation_error", ""): "Error",
    ("validation_error", "/properties/Elements/items"): "Element",
}


@pytest.mark.parametrize("name", NAMES)
def test_schemas_are_valid_json_schema(name):
    Draft202012Validator.check_schema(schema(name))


def _official(filename: str) -> dict:
    return _schemas_in(REFERENCE / filename)


@cache
def _schemas_in(path: Path) -> dict:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(path.read_text(), Loader=loader)["components"]["schemas"]  # noqa: S506


def _at(document: dict, pointer: str) -> dict:
    for part in filter(None, pointer.split("/")):
        document = document[part]
    return document


@pytest.mark.parametrize(("ours", "official"), OFFICIAL.items(), ids=lambda v: str(v))
def test_every_field_and_value_exists_in_xero_s_description(ours, official):
    described = _official("xero_accounting.yaml")[official]
    mine = _at(schema(ours[0]), ours[1])
    extra = set(mine.get("properties", {})) - set(described.get("properties", {})) - FROM_EXAMPLES
    assert extra == set(), f"{ours} names fields that {official} does not have"
    for field, rule in mine.get("properties", {}).items():
        official_rule = described.get("properties", {}).get(field, {})
        if "enum" in rule and "enum" in official_rule:
            assert set(rule["enum"]) <= set(official_rule["enum"]), field


def test_connections_match_the_identity_description():
    described = _official("xero-identity.yaml")["Connection"]
    mine = schema("connections")["items"]
    assert set(mine["properties"]) <= set(described["properties"])
