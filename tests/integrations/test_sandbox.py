"""Every client method over real HTTP against the project's sandbox (docs/api-contract.md):
paging, side-loads, the unlink order, Xero's status rules, faults, rate limits and tokens.

The sandbox's control API (/_sandbox/...) builds the data and reads the request log and the
upstream state, so that assertions do not go through the clients under test."""

import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from unlinker.connections.models import Connection, OAuthCredential, Provider
from unlinker.connections.tokens import CredentialTokenSource
from unlinker.integrations.actionstep import ActionstepClient
from unlinker.integrations.errors import (
    AuthExpired,
    NotFound,
    RateLimited,
    ServerError,
    Unreachable,
    ValidationFailed,
)
from unlinker.integrations.throttle import Throttle
from unlinker.integrations.tokens import StaticTokenSource
from unlinker.integrations.xero import XeroClient, connections


@pytest.fixture
def make_clients(sandbox, settings):
    """Clients for the sandbox's (only) firm, with tokens issued by its control API."""
    settings.XERO_CONNECTIONS_URL = sandbox.xero_connections_url

    def make(timeout=5):
        as_token = sandbox.issue_tokens("actionstep")
        xero_token = sandbox.issue_tokens("xero")["access_token"]
        (tenant,) = connections(xero_token)
        actionstep = ActionstepClient(
            as_token["api_endpoint"], StaticTokenSource(as_token["access_token"]), timeout=timeout
        )
        xero = XeroClient(
            tenant.tenant_id,
            StaticTokenSource(xero_token),
            api_url=sandbox.xero_api_url,
            timeout=timeout,
        )
        return actionstep, xero

    return make


@pytest.fixture
def firm(sandbox):
    """A: 1,100.00 with 300.00 paid (AUTHORISED); B: 220.00 unpaid (AUTHORISED);
    C: 550.00 paid in full by a Xero batch payment (PAID); D: unlinked, its Xero copy live."""
    built = sandbox.build(
        name="Smith & Jones",
        bills=[
            {
                "total": "1100.00",
                "matter": "Estate of Smith",
                "contact": "Ann Smith",
                "payments": [{"amount": "300.00"}],
            },
            {"total": "220.00", "contact": "Bob Jones"},
            {
                "total": "550.00",
                "contact": "Bob Jones",
                "payments": [{"amount": "550.00", "batch": "B1"}],
            },
            {"total": "330.00", "contact": "Cy Brown", "link": "Unlinked"},
        ],
    )
    return dict(zip("ABCD", built["bills"], strict=True))


@pytest.fixture
def clients(firm, make_clients):
    return make_clients()


def test_connections_lists_the_tenant(sandbox, firm, make_clients):
    (tenant,) = connections(sandbox.issue_tokens("xero")["access_token"])
    assert tenant.name == "Smith & Jones" and tenant.type == "ORGANISATION"


# --- Actionstep -----------------------------------------------------------------------------


def test_listings_carry_every_record_and_its_side_loads(firm, clients):
    actionstep, _ = clients
    links = [
        (link, page) for page in actionstep.iter_invoice_links(page_size=2) for link in page.records
    ]
    assert {link.bill_id for link, _ in links} == {b["id"] for b in firm.values()}
    for link, page in links:
        bill = page.bills[link.bill_id]
        assert bill.number == link.xero_invoice_number
        assert page.matters[bill.matter_id].name and page.contacts[bill.contact_id].name
    (a_link,) = [link for link, _ in links if link.bill_id == firm["A"]["id"]]
    assert a_link.xero_invoice_id == firm["A"]["xero_invoice_id"]

    payment_pages = list(actionstep.iter_payment_links(page_size=1))
    assert len(payment_pages) == 2 and payment_pages[0].record_count == 2
    for page in payment_pages:
        (link,) = page.records
        payment = page.payments[link.bill_payment_id]
        assert payment.bill_id == link.bill_id and link.bill_id in page.bills

    bills = [(bill, page) for page in actionstep.iter_bills() for bill in page.records]
    assert sorted(str(bill.total) for bill, _ in bills) == [
        "1100.00",
        "220.00",
        "330.00",
        "550.00",
    ]
    assert all(bill.contact_id in page.contacts for bill, page in bills)
    payments = [(p, page) for page in actionstep.iter_bill_payments() for p in page.records]
    assert len(payments) == 2 and all(p.bill_id in page.bills for p, page in payments)


def test_incremental_listing_returns_what_changed(firm, clients):
    actionstep, _ = clients

    def newest(pages):
        return max(record.modified_at for page in pages for record in page.records)

    payments_seen = newest(actionstep.iter_payment_links())
    invoices_seen = newest(actionstep.iter_invoice_links())
    time.sleep(1)  # Actionstep's timestamps have one-second resolution
    changed = firm["A"]["payments"][0]["link_id"]
    actionstep.unlink_payment(changed)
    (page,) = actionstep.iter_payment_links(modified_after=payments_seen)
    assert [(link.id, link.link_status) for link in page.records] == [(changed, "Unlinked")]
    assert list(actionstep.iter_invoice_links(modified_after=invoices_seen)) == []


def test_single_reads(firm, clients):
    actionstep, _ = clients
    a, payment = firm["A"], firm["A"]["payments"][0]
    assert actionstep.get_invoice_link(a["link_id"]).bill_id == a["id"]
    assert (
        actionstep.get_payment_link(payment["link_id"]).xero_payment_id
        == (payment["xero_payment_id"])
    )
    assert actionstep.get_bill(a["id"]).number == a["number"]
    assert actionstep.get_bill_payment(payment["id"]).status == "Active"
    (link,) = actionstep.payment_links_for_bill(a["id"])
    assert link.id == payment["link_id"] and link.link_status == "Linked"
    assert actionstep.payment_links_for_bill(firm["B"]["id"]) == []
    with pytest.raises(NotFound):
        actionstep.get_bill(999_999)


def test_unlink_in_order_then_clean_up_in_actionstep(sandbox, firm, clients):
    actionstep, _ = clients
    a, payment = firm["A"], firm["A"]["payments"][0]
    with pytest.raises(ValidationFailed) as refused:
        actionstep.unlink_invoice(a["link_id"])
    assert "unlink the payments first" in refused.value.messages[0]
    with pytest.raises(ValidationFailed):
        actionstep.delete_payment(payment["id"], "entered twice")

    assert actionstep.unlink_payment(payment["link_id"]).link_status == "Unlinked"
    assert actionstep.unlink_invoice(a["link_id"]).link_status == "Unlinked"
    with pytest.raises(ValidationFailed) as still_paid:
        actionstep.revert_invoice_to_draft(a["id"])
    assert "payment or credit note allocated" in still_paid.value.messages[0]

    assert actionstep.reverse_payment(payment["id"], "bounced").status == "Reversed"
    assert actionstep.revert_invoice_to_draft(a["id"]).status == "Draft"
    assert actionstep.delete_invoice(a["id"]) is None
    assert sandbox.actionstep("bills", a["id"])["status"] == "Deleted"

    c_payment = firm["C"]["payments"][0]
    actionstep.unlink_payment(c_payment["link_id"])
    assert actionstep.delete_payment(c_payment["id"], "entered twice") is None
    state = sandbox.actionstep("billpayments", c_payment["id"])
    assert state["status"] == "Deleted" and state["reason"] == "entered twice"


# --- Xero -----------------------------------------------------------------------------------


def test_xero_reads(firm, clients):
    _, xero = clients
    ids = [bill["xero_invoice_id"] for bill in firm.values()]
    found = {invoice.invoice_id: invoice for invoice in xero.get_invoices_by_ids(ids)}
    a, c = found[firm["A"]["xero_invoice_id"]], found[firm["C"]["xero_invoice_id"]]
    assert (a.status, str(a.amount_paid), str(a.amount_due)) == ("AUTHORISED", "300.00", "800.00")
    assert c.status == "PAID" and a.payment_ids == (firm["A"]["payments"][0]["xero_payment_id"],)
    assert [i.number for i in xero.get_invoices(numbers=[firm["B"]["number"]])] == [
        firm["B"]["number"]
    ]
    assert {i.invoice_id for i in xero.iter_invoices(statuses=["PAID"])} == {c.invoice_id}
    assert [
        i.invoice_id for i in xero.get_invoices(where=f'InvoiceID==Guid("{c.invoice_id}")')
    ] == [c.invoice_id]
    summaries = xero.get_invoices(summary_only=True, page=1)
    assert len(summaries) == 4 and all(i.total for i in summaries)
    assert xero.get_invoices(modified_since=timezone.now() + timedelta(days=1)) == []
    assert len(xero.get_invoices(modified_since=timezone.now() - timedelta(days=3650))) == 4
    batch = xero.get_payment(firm["C"]["payments"][0]["xero_payment_id"])
    assert batch.batch_payment_id and batch.invoice_id == c.invoice_id
    assert len(list(xero.iter_payments(where='Status=="AUTHORISED"'))) == 2
    with pytest.raises(NotFound):
        xero.get_payment(str(uuid.uuid4()))
    assert xero.last_limits.minute_remaining is not None


def test_xero_paging_and_id_chunks(sandbox, make_clients):
    sandbox.seed(invoices=120, seed=7)
    _, xero = make_clients()
    since = sandbox.last_request_id()
    in_xero = sum(sandbox.summary()["xero_invoices"].values())
    invoices = list(xero.iter_invoices())
    assert len(invoices) == in_xero > 100 and xero.requests_made == 2
    found = xero.get_invoices_by_ids([invoice.invoice_id for invoice in invoices])
    assert len(found) == in_xero
    reads = sandbox.requests(since=since, api="xero", method="GET")
    id_lists = [entry["query"].count("%2C") + 1 for entry in reads if "IDs=" in entry["query"]]
    assert id_lists == [50, 50, in_xero - 100] and all(e["status"] == 200 for e in reads)


def test_xero_changes_follow_xeros_rules(sandbox, firm, clients):
    _, xero = clients
    a, b, c = (firm[k]["xero_invoice_id"] for k in "ABC")
    since = sandbox.last_request_id()
    (voided,) = xero.update_invoice_statuses([(b, "VOIDED")], idempotency_key="void-b")
    assert voided.ok and voided.status == "VOIDED"
    (allocated,) = xero.update_invoice_statuses([(a, "VOIDED")], idempotency_key="void-a-1")
    assert not allocated.ok and "payment or credit note allocated" in allocated.messages[0]

    deleted = xero.delete_payment(firm["A"]["payments"][0]["xero_payment_id"], "del-a")
    assert deleted.status == "DELETED"
    assert sandbox.xero_invoice(a)["AmountPaid"] == 0

    results = xero.update_invoice_statuses([(a, "VOIDED"), (c, "VOIDED")], "bulk-1")
    assert [(r.invoice_id, r.ok) for r in results] == [(a, True), (c, False)]
    assert results[1].messages
    assert sandbox.xero_invoice(a)["Status"] == "VOIDED"

    with pytest.raises(ValidationFailed) as batch:
        xero.delete_payment(firm["C"]["payments"][0]["xero_payment_id"], "del-c")
    assert "batch payment" in batch.value.messages[0]
    writes = sandbox.requests(since=since, api="xero", method="POST")
    assert [w["idempotency_key"] for w in writes] == [
        "void-b",
        "void-a-1",
        "del-a",
        "bulk-1",
        "del-c",
    ]


# --- faults, limits, tokens -----------------------------------------------------------------


def no_waiting(*clients):
    for client in clients:
        client.sleep = lambda seconds: None


def test_faults_on_reads_are_retried_and_on_writes_are_not(sandbox, firm, clients):
    actionstep, xero = clients
    no_waiting(actionstep, xero)
    sandbox.set_faults(
        "xero",
        rules=[
            {"method": "GET", "path_contains": "/Invoices", "status": 503, "times": 1},
            {"method": "GET", "path_contains": "/Invoices", "status": "drop", "times": 1},
            {"method": "POST", "path_contains": "/Payments/", "status": 500, "times": 1},
        ],
    )
    sandbox.set_faults(
        "actionstep",
        rules=[{"method": "PUT", "path_contains": "/xeropaymentlinks/", "status": 503}],
    )
    assert len(xero.get_invoices_by_ids([firm["A"]["xero_invoice_id"]])) == 1
    assert xero.requests_made == 3
    with pytest.raises(ServerError):
        xero.delete_payment(firm["A"]["payments"][0]["xero_payment_id"], "del-a")
    with pytest.raises(ServerError):
        actionstep.unlink_payment(firm["A"]["payments"][0]["link_id"])
    assert xero.requests_made == 4 and actionstep.requests_made == 1


def test_a_timeout_is_unreachable(sandbox, firm, make_clients):
    actionstep, _ = make_clients(timeout=0.3)
    no_waiting(actionstep)
    sandbox.set_faults(
        "actionstep",
        rules=[{"path_contains": "/bills/", "status": "timeout", "times": 4}],
        timeout_seconds=1,
    )
    with pytest.raises(Unreachable):
        actionstep.get_bill(firm["A"]["id"])
    assert actionstep.requests_made == 4


def test_the_throttle_keeps_a_burst_under_xeros_limits(sandbox, firm, make_clients):
    sandbox.set_limits("xero", per_minute=10, concurrent=2, time_scale=60, latency=0.02)
    # Configured at the API's own limits: a call keeps its place until a minute after its
    # answer, so however late the API counts it, it never sees one call too many.
    gate = Throttle(f"xero:{uuid.uuid4().hex}", 10, 2, scale=60, max_wait=10, redis_url="")
    workers = [make_clients()[1] for _ in range(4)]
    since = sandbox.last_request_id()
    started = time.monotonic()

    def burst(xero):
        xero.throttle = gate
        for _ in range(6):
            xero.get_invoices(ids=[firm["A"]["xero_invoice_id"]])

    threads = [threading.Thread(target=burst, args=(xero,)) for xero in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = [e["status"] for e in sandbox.requests(since=since, method="GET")]
    assert statuses.count(200) == 24 and 429 not in statuses
    assert time.monotonic() - started >= 2.0  # 24 calls at 10 a (scaled) minute


def test_without_the_throttle_a_minute_429_is_waited_out(sandbox, firm, clients):
    _, xero = clients
    sandbox.set_limits("xero", per_minute=2, time_scale=60)
    waits = []
    xero.sleep = lambda seconds: (waits.append(seconds), time.sleep(seconds))
    for _ in range(3):
        xero.get_invoices(ids=[firm["B"]["xero_invoice_id"]])
    assert waits and waits[0] == 1.0  # the sandbox's Retry-After
    assert xero.requests_made == 3 + len(waits)


def test_a_day_limit_429_is_raised_at_once(sandbox, firm, clients):
    _, xero = clients
    sandbox.set_limits("xero", per_day=1)
    xero.get_invoices(ids=[firm["B"]["xero_invoice_id"]])
    with pytest.raises(RateLimited) as caught:
        xero.get_invoices(ids=[firm["B"]["xero_invoice_id"]])
    assert caught.value.is_daily and xero.requests_made == 2


@pytest.mark.django_db
def test_an_expired_token_is_refreshed_and_rotated(sandbox, firm, settings):
    settings.XERO_TOKEN_URL = sandbox.xero_token_url
    settings.XERO_CONNECTIONS_URL = sandbox.xero_connections_url
    pair = sandbox.issue_tokens("xero")
    (tenant,) = connections(pair["access_token"])
    credential = OAuthCredential.objects.create(
        connection=Connection.objects.create(name="Smith & Jones"),
        provider=Provider.XERO,
        access_token=pair["access_token"],
        refresh_token=pair["refresh_token"],
        expires_at=timezone.now() + timedelta(minutes=30),
    )
    xero = XeroClient(
        tenant.tenant_id,
        CredentialTokenSource(credential.pk),
        api_url=sandbox.xero_api_url,
    )
    sandbox.expire_tokens("xero")
    assert len(xero.get_invoices(ids=[firm["A"]["xero_invoice_id"]])) == 1
    assert xero.requests_made == 2  # the 401, then the call with the new token
    credential.refresh_from_db()
    assert credential.refresh_token != pair["refresh_token"]

    # the refresh token that was rotated away is refused: the connection needs an admin
    credential.refresh_token = pair["refresh_token"]
    credential.expires_at = timezone.now()
    credential.save()
    with pytest.raises(AuthExpired):
        CredentialTokenSource(credential.pk).access_token()
    credential.refresh_from_db()
    assert "invalid_grant" in credential.last_error
