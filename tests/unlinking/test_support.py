"""The tests' own write counter: a record written twice must show, whatever the kind of write."""

import pytest

from .support import assert_written_at_most_once, upstream_writes

AS = "/actionstep/api/rest"
XERO = "/xero/api/api.xro/2.0"


class Log:
    """Stands in for the sandbox's request log (SandboxControl.requests)."""

    def __init__(self, *entries):
        self.entries = [
            {"status": 200, "fault": None, "replay": False, "body": None, **entry}
            for entry in entries
        ]

    def requests(self, since=None, limit=None):
        return self.entries


def put(path, **extra):
    return {"api": "actionstep", "method": "PUT", "path": f"{AS}/{path}", **extra}


def delete(path, **extra):
    return {"api": "actionstep", "method": "DELETE", "path": f"{AS}/{path}", **extra}


def voids(*ids, **extra):
    body = {"Invoices": [{"InvoiceID": i, "Status": "VOIDED"} for i in ids]}
    return {"api": "xero", "method": "POST", "path": f"{XERO}/Invoices", "body": body, **extra}


@pytest.mark.parametrize(
    "twice",
    [
        [put("xeroinvoicelinks/5"), put("xeroinvoicelinks/5")],
        [put("xeropaymentlinks/6"), put("xeropaymentlinks/6")],
        # a payment reversed and deleted: one record, two writes
        [
            put("billpayments/7"),
            {"api": "actionstep", "method": "DELETE", "path": f"{AS}/billpayments/7"},
        ],
        [put("bills/8"), {"api": "actionstep", "method": "DELETE", "path": f"{AS}/bills/8"}],
        [
            {"api": "xero", "method": "POST", "path": f"{XERO}/Payments/P-1"},
            {"api": "xero", "method": "POST", "path": f"{XERO}/Payments/p-1"},
        ],
        [voids("A", "B"), voids("C", "a")],  # invoice A in two bulk calls
    ],
)
def test_a_record_written_twice_is_caught(twice):
    writes = upstream_writes(Log(*twice), since=0)
    with pytest.raises(AssertionError, match="written more than once"):
        assert_written_at_most_once(writes)


def test_only_writes_that_acted_count():
    log = Log(
        put("xeroinvoicelinks/5", status=500, fault="500"),  # refused before acting
        put("xeroinvoicelinks/5", status=400),  # refused by the API
        voids("A", replay=True),  # an idempotent replay changes nothing
        {"api": "actionstep", "method": "GET", "path": f"{AS}/xeroinvoicelinks/5"},
        {"api": "xero", "method": "POST", "path": "/xero/identity/connect/token"},
        put("xeroinvoicelinks/5"),
        voids("A"),
    )
    writes = upstream_writes(log, since=0)
    assert [(w.target, w.kind) for w in writes] == [
        ("actionstep xeroinvoicelinks/5", "unlink invoice"),
        ("xero Invoices/a", "void"),
    ]
    assert_written_at_most_once(writes)
