from datetime import datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.sandbox.support import exact
from unlinker.sandbox.store import Store

INCLUDE = "bill,bill.action,bill.theirParticipant"


@pytest.fixture
def seeded(sandbox):
    return sandbox.seed(invoices=500)


def test_paging_caps_the_page_size_and_links_pages_absolutely(sandbox, seeded, actionstep):
    api = actionstep()
    answer = api.get("/xeroinvoicelinks", params={"pageSize": 500, "include": INCLUDE})
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/vnd.api+json"
    body = exact(answer)
    paging = body["meta"]["paging"]["xeroinvoicelinks"]
    total = sandbox.actionstep("xeroinvoicelinks")["recordCount"]
    assert paging["pageSize"] == 200 and len(body["xeroinvoicelinks"]) == 200
    assert paging["recordCount"] == total and paging["pageCount"] == -(-total // 200)
    assert paging["page"] == 1 and paging["prevPage"] is None
    next_page = urlsplit(paging["nextPage"])
    assert f"{next_page.scheme}://{next_page.netloc}" == sandbox.base_url
    assert parse_qs(next_page.query)["page"] == ["2"]
    assert parse_qs(next_page.query)["include"] == [INCLUDE]

    seen, url = [], paging["nextPage"]
    seen += [link["id"] for link in body["xeroinvoicelinks"]]
    while url:
        page = exact(api.session.get(url, timeout=30))
        seen += [link["id"] for link in page["xeroinvoicelinks"]]
        url = page["meta"]["paging"]["xeroinvoicelinks"]["nextPage"]
    assert seen == sorted(seen) and len(set(seen)) == total


def test_default_page_size_is_50(seeded, actionstep):
    body = exact(actionstep().get("/bills"))
    assert len(body["bills"]) == 50
    assert body["meta"]["paging"]["bills"]["pageSize"] == 50


def test_includes_side_load_each_related_record_once(seeded, actionstep):
    body = exact(actionstep().get("/xeroinvoicelinks", params={"include": INCLUDE}))
    links = body["xeroinvoicelinks"]
    bills = {bill["id"]: bill for bill in body["linked"]["bills"]}
    assert {link["links"]["bill"] for link in links} == set(bills)
    actions = {action["id"] for action in body["linked"]["actions"]}
    participants = {p["id"] for p in body["linked"]["participants"]}
    assert {bill["links"]["action"][0] for bill in bills.values()} == actions
    assert {bill["links"]["theirParticipant"] for bill in bills.values()} == participants
    assert len(body["linked"]["participants"]) == len(participants)
    bill = next(iter(bills.values()))
    assert bill["totalDue"] == bill["totalInclusive"] - bill["totalPaid"]
    assert isinstance(bill["totalInclusive"], Decimal)
    assert body["links"]["xeroinvoicelinks.bill"].endswith("/rest/bills/{xeroinvoicelinks.bill}")


def test_money_has_two_decimals_on_the_wire(sandbox, actionstep):
    sandbox.build([{"total": "110.00", "tax": "10.00", "payments": [{"amount": "20.50"}]}])
    text = actionstep().get("/bills").text
    assert '"totalInclusive":110.00' in text and '"totalPaid":20.50' in text
    assert '"totalSalesTax":10.00' in text and '"totalDue":89.50' in text


def test_one_match_is_an_object_several_a_list_none_a_204(sandbox, actionstep):
    built = sandbox.build([{"total": "100.00"}, {"total": "200.00"}, {"total": "300.00"}])
    ids = [bill["id"] for bill in built["bills"]]
    api = actionstep()

    one = exact(api.get(f"/bills/{ids[0]}"))
    assert isinstance(one["bills"], dict) and one["bills"]["id"] == ids[0]
    two = exact(api.get(f"/bills/{ids[0]},{ids[2]}"))
    assert [bill["id"] for bill in two["bills"]] == [ids[0], ids[2]]
    filtered = exact(api.get("/bills", params={"totalInclusive_eq": "200.00"}))
    assert filtered["bills"]["id"] == ids[1]

    nothing = api.get("/bills", params={"ourReference_eq": "INV-NOPE"})
    assert nothing.status_code == 204 and nothing.content == b""
    missing = api.get("/bills/999999")
    assert missing.status_code == 404
    assert exact(missing)["errors"][0]["status"] == "404"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"totalInclusive_gt": "200.00"}, [300]),
        ({"totalInclusive_gte": "200.00"}, [200, 300]),
        ({"totalInclusive_lt": "200.00"}, [100]),
        ({"totalInclusive_lte": "200.00"}, [100, 200]),
        ({"totalInclusive_nteq": "200.00"}, [100, 300]),
        ({"ourReference_ilike": "inv-*2"}, [200]),
        ({"theirReference_ilike": "*smith*"}, [100, 300]),
        ({"status_eq": "Draft"}, [300]),
        ({"invoiceDate_gte": "2025-02-01"}, [200, 300]),
    ],
)
def test_filters(sandbox, actionstep, query, expected):
    sandbox.build(
        [
            {
                "total": "100.00",
                "number": "INV-1",
                "reference": "Smith fees",
                "invoice_date": "2025-01-01",
            },
            {"total": "200.00", "number": "INV-2", "invoice_date": "2025-02-01"},
            {
                "total": "300.00",
                "number": "INV-3",
                "status": "Draft",
                "reference": "MR SMITH",
                "invoice_date": "2025-03-01",
            },
        ]
    )
    body = exact(actionstep().get("/bills", params={**query, "sort": "id"}))
    bills = body["bills"] if isinstance(body["bills"], list) else [body["bills"]]
    assert [int(bill["totalInclusive"]) for bill in bills] == expected


def test_sort_descending_with_ties_broken_by_id(sandbox, actionstep):
    sandbox.build([{"total": "50.00"}, {"total": "70.00"}, {"total": "50.00"}])
    bills = exact(actionstep().get("/bills", params={"sort": "-totalInclusive"}))["bills"]
    assert [int(bill["totalInclusive"]) for bill in bills] == [70, 50, 50]
    assert bills[1]["id"] < bills[2]["id"]


def test_incremental_sync_by_modified_timestamp(sandbox, actionstep):
    built = sandbox.build([{"total": "10.00"}, {"total": "20.00"}])
    api = actionstep()
    links = exact(api.get("/xeroinvoicelinks", params={"sort": "modifiedTimestamp"}))
    newest = max(link["modifiedTimestamp"] for link in links["xeroinvoicelinks"])
    assert datetime.fromisoformat(newest).utcoffset().total_seconds() == 36000
    assert api.get("/xeroinvoicelinks", params={"modifiedTimestamp_gt": newest}).status_code == 204

    link_id = built["bills"][1]["link_id"]
    changed = api.put(
        f"/xeroinvoicelinks/{link_id}", {"xeroinvoicelinks": {"linkStatus": "Unlinked"}}
    )
    assert changed.status_code == 200
    since = exact(api.get("/xeroinvoicelinks", params={"modifiedTimestamp_gt": newest}))
    assert since["xeroinvoicelinks"]["id"] == link_id
    assert since["xeroinvoicelinks"]["modifiedTimestamp"] > newest


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"colour_eq": "red"}, "Unknown filter 'colour_eq'"),
        ({"status_like": "Open"}, "Unknown filter 'status_like'"),
        ({"totalInclusive_ilike": "1*"}, "ilike applies to text fields only"),
        ({"totalInclusive_gt": "abc"}, "not a valid money"),
        ({"sort": "colour"}, "Cannot sort bills by 'colour'"),
        ({"include": "owner"}, "Cannot include 'owner'"),
        ({"page": "0"}, "page and pageSize start at 1"),
    ],
)
def test_bad_requests_answer_errors(sandbox, actionstep, params, detail):
    sandbox.build([{"total": "10.00"}])
    answer = actionstep().get("/bills", params=params)
    assert answer.status_code == 400
    (error,) = exact(answer)["errors"]
    assert error["status"] == "400" and detail in error["detail"]


def test_headers_are_checked_like_the_real_api(sandbox, actionstep):
    built = sandbox.build([{"total": "10.00"}])
    api = actionstep()
    wrong_accept = api.get("/bills", headers={"Accept": "application/xml"})
    assert wrong_accept.status_code == 406
    link_id = built["bills"][0]["link_id"]
    wrong_type = api.put(
        f"/xeroinvoicelinks/{link_id}",
        {"xeroinvoicelinks": {"linkStatus": "Unlinked"}},
        headers={"Content-Type": "application/json"},
    )
    assert wrong_type.status_code == 415
    assert api.get("/Bills").status_code == 404  # the API is case-sensitive


def test_each_firm_sees_only_its_own_records(sandbox, actionstep):
    first = sandbox.build([{"total": "10.00"}], name="First")
    second = sandbox.build([{"total": "20.00"}], name="Second")
    api = actionstep(second["firm"]["orgkey"])
    assert api.get(f"/bills/{first['bills'][0]['id']}").status_code == 404
    assert exact(api.get("/bills"))["bills"]["id"] == second["bills"][0]["id"]


def test_records_written_by_another_process_are_counted_at_once(
    sandbox, sandbox_server, actionstep
):
    sandbox.build([{"total": "10.00"}])
    api = actionstep()
    assert exact(api.get("/bills"))["meta"]["paging"]["bills"]["recordCount"] == 1
    store = Store(sandbox_server.db_path)  # this test's process, as `unlinker sandbox seed` is
    with store.write() as conn:
        conn.execute(
            "INSERT INTO bills SELECT id + 1000, firm_id, status, 'INV-X', their_reference, "
            "currency, invoice_date, due_date, total_exclusive, total_sales_tax, "
            "total_inclusive, total_paid, created, modified, deleted, division_id, action_id, "
            "participant_id FROM bills"
        )
    assert exact(api.get("/bills"))["meta"]["paging"]["bills"]["recordCount"] == 2
