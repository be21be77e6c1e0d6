"""The "Unlink from Xero" bulk button: who may post, to which connection, and that it hands
the selection to the plan page, which changes nothing until confirmed."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from unlinker.mirror.models import LinkedInvoice, LinkStatus
from unlinker.unlinking.models import UnlinkBatch

from . import factories

pytestmark = pytest.mark.django_db


def unlink_url(conn, query: str = "") -> str:
    url = reverse("unlinking:plan", args=[conn.pk])
    return f"{url}?{query}" if query else url


def test_the_selection_goes_to_the_plan_and_nothing_changes(member_of, firm):
    rows = factories.invoices(firm, 3)
    response = member_of("operator").post(
        unlink_url(firm, "contact=Contact&sort=total"),
        {"kind": "invoices", "pk": [str(rows[0].pk), str(rows[1].pk)]},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Nothing has changed yet." in body
    assert rows[0].invoice_number in body and rows[1].invoice_number in body
    assert rows[2].invoice_number not in body
    assert "2 invoices" in body
    assert LinkedInvoice.objects.filter(link_status=LinkStatus.LINKED).count() == 3
    assert not UnlinkBatch.objects.exists()


def test_select_all_matching_plans_the_whole_filter(member_of, firm):
    factories.invoices(firm, 130, contact_name="Acme")
    factories.invoices(firm, 5, contact_name="Else")
    response = member_of("operator").post(
        unlink_url(firm, "contact=acme&page=2"), {"kind": "invoices", "_all": "1"}
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "130 invoices" in body
    assert 'name="_all" value="1"' in body  # the confirmation carries the filter, not ids
    assert not UnlinkBatch.objects.exists()


def test_payments_are_selected_from_the_payments_list(member_of, firm):
    payment = factories.payment(firm, reference="DEP-9")
    body = (
        member_of("admin")
        .post(unlink_url(firm), {"kind": "payments", "pk": [str(payment.pk)]})
        .content.decode()
    )
    assert "DEP-9" in body and "1 payment" in body


def test_nothing_selected_is_a_bad_request_with_the_reason(member_of, firm):
    factories.invoices(firm, 2)
    response = member_of("operator").post(unlink_url(firm), {"kind": "invoices"})
    assert response.status_code == 400
    assert "No invoices are selected" in response.content.decode()


def test_crafted_ids_of_another_connection_select_nothing(member_of, firm, other_firm):
    theirs = LinkedInvoice.objects.filter(connection=other_firm).values_list("pk", flat=True)
    response = member_of("operator").post(
        unlink_url(firm), {"kind": "invoices", "pk": [str(pk) for pk in theirs]}
    )
    assert response.status_code == 400
    assert "OTHER-FIRM-SECRET" not in response.content.decode()
    assert not UnlinkBatch.objects.exists()


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
    assert response.status_code == 400  # past CSRF: told that nothing is selected
