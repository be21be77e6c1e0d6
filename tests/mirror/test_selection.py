"""Selection: by ids or by filter, always inside its connection, JSON-safe, and never loading
"all matching" into memory."""

import json

import pytest
from django.test import RequestFactory

from unlinker.core.selection import Selection

from . import factories

pytestmark = pytest.mark.django_db


def posted(data: dict, query: str = ""):
    return RequestFactory().post(f"/linked/1/unlink/?{query}", data)


def test_selection_by_ids_keeps_order_drops_junk_and_duplicates(firm):
    rows = factories.invoices(firm, 3)
    ids = [str(rows[2].pk), "abc", str(rows[0].pk), str(rows[2].pk), "-4", "0", "9" * 30, ""]
    selection = Selection.from_request(posted({"pk": ids}), firm, "invoices")
    assert selection.ids == [rows[2].pk, rows[0].pk]
    assert selection.filter_query is None
    assert selection.count() == 2
    assert set(selection.queryset()) == {rows[0], rows[2]}


def test_ids_of_another_connection_select_nothing(firm, other_firm):
    mine = factories.invoice(firm)
    theirs = factories.invoices(other_firm, 2)
    crafted = [str(mine.pk), *(str(row.pk) for row in theirs)]
    selection = Selection.from_request(posted({"pk": crafted}), firm, "invoices")
    assert list(selection.queryset()) == [mine]
    only_theirs = Selection.from_request(posted({"pk": crafted[1:]}), firm, "invoices")
    assert only_theirs.count() == 0


def test_select_all_is_the_filter_not_a_list_of_ids(firm, other_firm):
    factories.invoices(firm, 4, contact_name="Acme")
    factories.invoices(firm, 2, contact_name="Else")
    query = "contact=acme&sort=-total&page=3&per_page=25&_export=csv&q=&bogus=1"
    selection = Selection.from_request(posted({"_all": "1", "pk": ["1"]}, query), firm, "invoices")
    assert selection.ids is None
    assert selection.filter_query == "contact=acme"  # paging, sorting and noise dropped
    assert selection.count() == 4
    factories.invoices(firm, 1, contact_name="ACME new")  # a filter also selects later rows
    assert selection.count() == 5


def test_select_all_without_a_filter_is_the_whole_connection(firm, other_firm):
    factories.payments(firm, 3)
    selection = Selection.from_request(posted({"_all": "1"}), firm, "payments")
    assert selection.filter_query == ""
    assert selection.count() == 3


def test_select_all_with_an_invalid_filter_selects_nothing(firm):
    factories.invoices(firm, 3)
    selection = Selection.from_request(
        posted({"_all": "1"}, "date_from=2024-13-45&contact=Contact"), firm, "invoices"
    )
    assert selection.count() == 0


def test_a_crafted_filter_cannot_reach_another_connection(firm, other_firm):
    factories.invoices(firm, 1)
    query = f"contact=OTHER-FIRM-SECRET&connection={other_firm.pk}&connection_id={other_firm.pk}"
    selection = Selection.from_request(posted({"_all": "1"}, query), firm, "invoices")
    assert selection.count() == 0


def test_only_the_flag_value_1_selects_all(firm):
    row = factories.invoice(firm)
    selection = Selection.from_request(posted({"_all": "0", "pk": [str(row.pk)]}), firm, "invoices")
    assert selection.ids == [row.pk]


def test_dict_round_trip_through_json(firm):
    for selection in (
        Selection(firm.pk, "invoices", ids=[3, 1, 2]),
        Selection(firm.pk, "payments", filter_query="contact=a%26b&amount_min=10"),
    ):
        data = json.loads(json.dumps(selection.to_dict()))
        assert Selection.from_dict(data) == selection


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "bills", "ids": [1]},
        {"kind": "invoices"},
        {"kind": "invoices", "ids": [1], "filter_query": "q=1"},
    ],
)
def test_a_selection_is_either_ids_or_a_filter_of_a_known_kind(fields):
    with pytest.raises(ValueError):
        Selection(connection_id=1, **fields)
