"""ActionstepClient against recorded answers: conventions, paging, includes, writes, errors."""

import json
from datetime import datetime, timedelta
from decimal import Decimal
from math import ceil
from urllib.parse import parse_qs, urlsplit

import pytest
from responses import matchers

from unlinker.integrations.errors import NotFound, ValidationFailed

from .conftest import AS_REST

T0 = datetime.fromisoformat("2025-03-01T09:00:00+11:00")


def link(record_id, seconds, bill=None):
    return {
        "id": record_id,
        "linkStatus": "Linked",
        "xeroInvoiceId": f"x-{record_id}",
        "xeroInvoiceNumber": f"INV-{record_id}",
        "modifiedTimestamp": (T0 + timedelta(seconds=seconds)).isoformat(),
        "links": {"bill": bill or record_id + 1000},
    }


class FakeListing:
    """The listing side of Actionstep's conventions: filters on modifiedTimestamp, sort with
    ties broken by id, page/pageSize (capped at 200), an object for one record, 204 for none."""

    def __init__(self, resource, records):
        self.resource = resource
        self.records = records
        self.queries = []
        self.after_request = None

    def __call__(self, request):
        query = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        self.queries.append(query)
        rows = sorted(
            self.records,
            key=lambda r: (datetime.fromisoformat(r["modifiedTimestamp"]), r["id"]),
        )
        for op, keep in (("gt", lambda a, b: a > b), ("gte", lambda a, b: a >= b)):
            if f"modifiedTimestamp_{op}" in query:
                bound = datetime.fromisoformat(query[f"modifiedTimestamp_{op}"])
                rows = [
                    r for r in rows if keep(datetime.fromisoformat(r["modifiedTimestamp"]), bound)
                ]
        size, page = min(int(query.get("pageSize", 50)), 200), int(query.get("page", 1))
        chunk = rows[(page - 1) * size : page * size]
        if callable(self.after_request):
            self.after_request(len(self.queries))
        if not chunk:
            return 204, {}, ""
        body = {
            self.resource: chunk[0] if len(chunk) == 1 else chunk,
            "meta": {
                "paging": {
                    self.resource: {
                        "recordCount": len(rows),
                        "pageCount": ceil(len(rows) / size),
                        "page": page,
                        "pageSize": size,
                    }
                }
            },
        }
        return 200, {}, json.dumps(body)


def serve(mocked, listing):
    mocked.add_callback("GET", f"{AS_REST}/{listing.resource}", callback=listing)
    return listing


def test_headers_on_every_call(mocked, actionstep):
    mocked.get(
        f"{AS_REST}/bills/7",
        json={"bills": {"id": 7}},
        match=[
            matchers.header_matcher(
                {
                    "Accept": "application/vnd.api+json",
                    "Content-Type": "application/vnd.api+json",
                    "Authorization": "Bearer token-1",
                }
            )
        ],
    )
    mocked.put(
        f"{AS_REST}/bills/7",
        json={"bills": {"id": 7, "status": "Draft"}},
        match=[matchers.header_matcher({"Content-Type": "application/vnd.api+json"})],
    )
    assert actionstep.get_bill(7).id == 7
    assert actionstep.revert_invoice_to_draft(7).status == "Draft"


def test_pages_to_the_end_with_sort_page_size_and_incremental_filter(mocked, actionstep):
    listing = serve(mocked, FakeListing("xeroinvoicelinks", [link(i, i) for i in range(1, 8)]))
    since = T0
    pages = list(actionstep.iter_invoice_links(modified_after=since, page_size=3))
    assert [r.id for p in pages for r in p.records] == [1, 2, 3, 4, 5, 6, 7]
    assert [(p.page, p.page_count, p.record_count) for p in pages] == [
        (1, 3, 7),
        (2, 3, 7),
        (3, 3, 7),
    ]
    first = listing.queries[0]
    assert first["sort"] == "modifiedTimestamp" and first["pageSize"] == "3"
    assert first["modifiedTimestamp_gt"] == since.isoformat() and first["page"] == "1"
    assert first["include"] == "bill,bill.action,bill.theirParticipant"
    # later pages start at the last timestamp seen rather than at a page offset
    assert (
        listing.queries[1]["modifiedTimestamp_gte"] == pages[0].records[-1].modified_at.isoformat()
    )
    assert "modifiedTimestamp_gt" not in listing.queries[1]


def test_page_size_is_capped_at_200(mocked, actionstep):
    listing = serve(mocked, FakeListing("bills", []))
    assert list(actionstep.iter_bills(page_size=1000)) == []
    assert listing.queries[0]["pageSize"] == "200"


def test_one_timestamp_shared_by_more_records_than_a_page(mocked, actionstep):
    records = [link(i, 0) for i in range(1, 8)] + [link(8, 5), link(9, 5), link(10, 9)]
    serve(mocked, FakeListing("xeroinvoicelinks", records))
    ids = [r.id for p in actionstep.iter_invoice_links(page_size=3) for r in p.records]
    assert ids == list(range(1, 11))


def test_a_record_modified_during_the_listing_skips_nothing(mocked, actionstep):
    records = [link(i, i) for i in range(1, 11)]
    listing = serve(mocked, FakeListing("xeroinvoicelinks", records))

    def unlink_first_record(requests_so_far):
        if requests_so_far == 1:  # someone unlinks record 1 while page 1 is being read
            records[0]["linkStatus"] = "Unlinked"
            records[0]["modifiedTimestamp"] = (T0 + timedelta(hours=1)).isoformat()

    listing.after_request = unlink_first_record
    seen = [r.id for p in actionstep.iter_invoice_links(page_size=3) for r in p.records]
    assert set(seen) == set(range(1, 11))
    assert seen[-1] == 1  # and the change itself arrives at the end


def test_single_object_and_no_content(mocked, actionstep):
    serve(mocked, FakeListing("xeroinvoicelinks", [link(1, 1)]))
    pages = list(actionstep.iter_invoice_links())
    assert [r.id for r in pages[0].records] == [1] and pages[0].record_count == 1
    empty = serve(mocked, FakeListing("xeropaymentlinks", []))
    assert list(actionstep.iter_payment_links(modified_after=T0)) == []
    assert len(empty.queries) == 1


def test_side_loaded_records_are_keyed_by_id(mocked, actionstep):
    mocked.get(
        f"{AS_REST}/xeropaymentlinks",
        body=json.dumps(
            {
                "xeropaymentlinks": {
                    "id": 9,
                    "linkStatus": "Linked",
                    "xeroPaymentId": "p-9",
                    "links": {"billpayment": 77, "bill": 101},
                },
                "linked": {
                    "billpayments": [
                        {"id": 77, "amount": 12.30, "status": "Active", "links": {"bill": 101}}
                    ],
                    "bills": {
                        "id": 101,
                        "ourReference": "INV-101",
                        "totalInclusive": 12.30,
                        "links": {"action": [12], "theirParticipant": 34},
                    },
                    "actions": [{"id": 12, "name": "Smith v Jones"}],
                    "participants": [{"id": 34, "displayName": "Ann Smith"}],
                },
                "meta": {"paging": {"xeropaymentlinks": {"recordCount": 1, "pageCount": 1}}},
            }
        ),
        match=[
            matchers.query_param_matcher(
                {"include": "billpayment,bill,bill.action,bill.theirParticipant"},
                strict_match=False,
            )
        ],
    )
    (page,) = actionstep.iter_payment_links()
    (payment_link,) = page.records
    assert page.payments[77].amount == Decimal("12.30")
    bill = page.bills[payment_link.bill_id]
    assert bill.number == "INV-101" and bill.total == Decimal("12.30")
    assert page.matters[bill.matter_id].name == "Smith v Jones"
    assert page.contacts[bill.contact_id].name == "Ann Smith"


def test_bills_and_bill_payments_listings_include_their_relations(mocked, actionstep):
    bills = serve(mocked, FakeListing("bills", []))
    payments = serve(mocked, FakeListing("billpayments", []))
    list(actionstep.iter_bills())
    list(actionstep.iter_bill_payments())
    assert bills.queries[0]["include"] == "action,theirParticipant"
    assert payments.queries[0]["include"] == "bill"


def test_payment_links_for_bill(mocked, actionstep):
    mocked.get(
        f"{AS_REST}/xeropaymentlinks",
        json={
            "xeropaymentlinks": [
                {"id": 1, "linkStatus": "Linked", "links": {"billpayment": 7, "bill": 5}},
                {"id": 2, "linkStatus": "Unlinked", "links": {"billpayment": 8, "bill": 5}},
            ],
            "meta": {"paging": {"xeropaymentlinks": {"recordCount": 2, "pageCount": 1}}},
        },
        match=[matchers.query_param_matcher({"bill_eq": "5"}, strict_match=False)],
    )
    links = actionstep.payment_links_for_bill(5)
    assert [(pl.id, pl.link_status) for pl in links] == [(1, "Linked"), (2, "Unlinked")]


def test_single_reads(mocked, actionstep):
    mocked.get(f"{AS_REST}/xeroinvoicelinks/5", json={"xeroinvoicelinks": link(5, 0)})
    mocked.get(
        f"{AS_REST}/xeropaymentlinks/6",
        json={"xeropaymentlinks": [{"id": 6, "linkStatus": "Linked", "xeroPaymentId": "p"}]},
    )
    mocked.get(
        f"{AS_REST}/billpayments/77",
        json={"billpayments": {"id": 77, "status": "Reversed", "amount": 5}},
    )
    assert actionstep.get_invoice_link(5).xero_invoice_number == "INV-5"
    assert actionstep.get_payment_link(6).xero_payment_id == "p"
    assert actionstep.get_bill_payment(77).status == "Reversed"


def test_not_found(mocked, actionstep):
    mocked.get(
        f"{AS_REST}/bills/404",
        status=404,
        json={"errors": [{"status": "404", "title": "Not Found", "detail": "No such bill"}]},
    )
    with pytest.raises(NotFound) as caught:
        actionstep.get_bill(404)
    assert caught.value.message == "No such bill" and caught.value.api == "actionstep"


def test_unlink_invoice_and_payment(mocked, actionstep):
    mocked.put(
        f"{AS_REST}/xeroinvoicelinks/5",
        json={"xeroinvoicelinks": {**link(5, 0), "linkStatus": "Unlinked"}},
        match=[matchers.json_params_matcher({"xeroinvoicelinks": {"linkStatus": "Unlinked"}})],
    )
    mocked.put(
        f"{AS_REST}/xeropaymentlinks/6",
        json={"xeropaymentlinks": {"id": 6, "linkStatus": "Unlinked"}},
        match=[matchers.json_params_matcher({"xeropaymentlinks": {"linkStatus": "Unlinked"}})],
    )
    assert actionstep.unlink_invoice(5).link_status == "Unlinked"
    assert actionstep.unlink_payment(6).link_status == "Unlinked"


def test_unlink_refused_is_validation_failed(mocked, actionstep, sleeps):
    detail = "Invoice has payments linked to Xero; unlink the payments first"
    mocked.put(
        f"{AS_REST}/xeroinvoicelinks/5",
        status=422,
        json={"errors": [{"status": "422", "title": "Unprocessable", "detail": detail}]},
    )
    with pytest.raises(ValidationFailed) as caught:
        actionstep.unlink_invoice(5)
    assert caught.value.messages == [detail] and caught.value.status == 422
    assert sleeps == [] and actionstep.requests_made == 1


def test_payment_and_invoice_changes(mocked, actionstep):
    mocked.delete(
        f"{AS_REST}/billpayments/77",
        status=204,
        match=[matchers.query_param_matcher({"reason": "entered twice"})],
    )
    mocked.put(
        f"{AS_REST}/billpayments/78",
        json={"billpayments": {"id": 78, "status": "Reversed"}},
        match=[
            matchers.json_params_matcher(
                {"billpayments": {"status": "Reversed", "reason": "bounced"}}
            )
        ],
    )
    mocked.put(
        f"{AS_REST}/bills/101",
        json={"bills": {"id": 101, "status": "Draft"}},
        match=[matchers.json_params_matcher({"bills": {"status": "Draft"}})],
    )
    mocked.delete(f"{AS_REST}/bills/102", status=204)
    assert actionstep.delete_payment(77, "entered twice") is None
    assert actionstep.reverse_payment(78, "bounced").status == "Reversed"
    assert actionstep.revert_invoice_to_draft(101).status == "Draft"
    assert actionstep.delete_invoice(102) is None
    assert actionstep.requests_made == 4
