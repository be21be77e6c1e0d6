"""The "Unlink from Xero" bulk button: who may post, to which connection, and what the
confirmation shows (until the plan step exists it changes nothing)."""

import re

import pytest
from django.db import connection as db
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from unlinker.mirror.models import LinkedInvoice, LinkStatus

from . import factories

pytestmark = pytest.mark.django_db


def unlink_url(conn, query: str = "") -> str:
    url = reverse("mirror:unlink", args=[conn.pk])
    return f"{url}?{query}" if query else url


def test_operator_sees_what_was_selected_and_nothing_changes(member_of, firm):
    rows = factories.invoices(firm, 3)
    response = member_of("operator").post(
        unlink_url(firm, "contact=Contact&sort=total"),
        {"kind": "invoices", "pk": [str(rows[0].pk), str(rows[1].pk)]},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Nothing has been changed." in body
    assert "2 linked invoices selected." in body
    assert rows[0].invoice_number in body and rows[1].invoice_number in body
    assert rows[2].invoice_number not in body
    back = reverse("mirror:invoice_list", args=[firm.pk]) + "?contact=Contact&amp;sort=total"
    assert f'href="{back}"' in body
    assert LinkedInvoice.objects.filter(link_status=LinkStatus.LINKED).count() == 3


def test_select_all_matching_counts_the_filter_and_shows_the_first_rows(member_of, firm):
    factories.invoices(firm, 130, contact_name="Acme")
    factories.invoices(firm, 5, contact_name="Else")
    client = member_of("operator")
    with CaptureQueriesContext(db) as captured:
        response = client.post(
            unlink_url(firm, "contact=acme&page=2"), {"kind": "invoices", "_all": "1"}
        )
    body = response.content.decode()
    assert "All 130 linked invoices matching the filter are selected." in body
    assert "The first 20 are shown." in body
    assert body.count("<tr>") == 1 + 20
    mirror = [q["sql"] for q in captured.captured_queries if "mirror_linkedinvoice" in q["sql"]]
    assert len(mirror) == 2 and all("COUNT(" in sql or "LIMIT 20" in sql for sql in mirror)


def test_payments_are_selected_from_the_payments_list(member_of, firm):
    payment = factories.payment(firm, reference="DEP-9")
    body = (
        member_of("admin")
        .post(unlink_url(firm), {"kind": "payments", "pk": [str(payment.pk)]})
        .content.decode()
    )
    assert "1 linked payment selected." in body and "DEP-9" in body


def test_nothing_selected(member_of, firm):
    factories.invoices(firm, 2)
    body = member_of("operator").post(unlink_url(firm), {"kind": "invoices"}).content.decode()
    assert "Nothing is selected" in body


def test_crafted_ids_of_another_connection_select_nothing(member_of, firm, other_firm):
    theirs = LinkedInvoice.objects.filter(connection=other_firm).values_list("pk", flat=True)
    response = member_of("operator").post(
        unlink_url(firm), {"kind": "invoices", "pk": [str(pk) for pk in theirs]}
    )
    assert response.status_code == 200
    assert "Nothing is selected" in response.content.decode()
    assert "OTHER-FIRM-SECRET" not in response.content.decode()


def test_posting_to_a_connection_the_user_may_not_see_is_not_found(member_of, firm, other_firm):
    response = member_of("operator").post(unlink_url(other_firm), {"kind": "invoices", "_all": "1"})
    assert response.status_code == 404


@pytest.mark.parametrize("role", [None, "viewer"])
def test_users_without_queue_unlink_are_refused(client_for, firm, role):
    client = client_for(role)
    firm.members.add(client.user)
    response = client.post(unlink_url(firm), {"kind": "invoices", "_all": "1"})
    assert response.status_code == 403


def test_viewers_get_no_unlink_button_to_press(member_of, firm):
    factories.invoices(firm, 2)
    assert (
        b"Unlink from Xero"
        not in member_of("viewer").get(reverse("mirror:invoice_list", args=[firm.pk])).content
    )


@pytest.mark.parametrize("kind", ["", "bills", "<script>"])
def test_an_unknown_kind_is_a_bad_request(member_of, firm, kind):
    response = member_of("operator").post(unlink_url(firm), {"kind": kind, "_all": "1"})
    assert response.status_code == 400


def test_unlink_needs_post(member_of, firm):
    assert member_of("operator").get(unlink_url(firm)).status_code == 405


def test_csrf_is_enforced_and_the_page_token_passes(make_user, firm):
    firm.members.add(user := make_user("csrf-op", "operator"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    factories.invoices(firm, 1)
    assert client.post(unlink_url(firm), {"kind": "invoices"}).status_code == 403
    page = client.get(reverse("mirror:invoice_list", args=[firm.pk])).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(unlink_url(firm), {"kind": "invoices", "csrfmiddlewaretoken": token})
    assert response.status_code == 200
