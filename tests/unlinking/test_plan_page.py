"""The plan and confirm page: POST /history/plan/."""

import re

import pytest
from django.test import Client
from django.urls import reverse
from django_htmx.middleware import HtmxDetails

from unlinker.mirror.models import LinkedInvoice, LinkedPayment, XeroStatus
from unlinker.mirror.selection import Selection
from unlinker.unlinking.models import UnlinkBatch
from unlinker.unlinking.views import plan_view

from .factories import store_firm

pytestmark = pytest.mark.django_db
URL = reverse("unlinking:plan")


def selection_of(firm, invoices=None, **extra):
    chosen = firm.invoices if invoices is None else invoices
    return {
        "connection": firm.connection.pk,
        "kind": "invoices",
        "pk": [inv.pk for inv in chosen],
        **extra,
    }


def digest_of(response) -> str:
    return re.search(rb'name="plan_digest" value="([0-9a-f]+)"', response.content)[1].decode()


def test_the_plan_groups_payments_under_their_invoice_and_marks_what_was_added(member, firm):
    response = member("operator").post(URL, selection_of(firm))
    assert response.status_code == 200
    html = response.content.decode()
    # grouped by invoice, the added payment first
    groups = re.findall(r'<section class="plan-group.*?</section>', html, re.S)
    assert len(groups) == 3
    (group,) = [g for g in groups if "<h3>Invoice INV-000001" in g]
    assert group.index("Unlink payment from Xero: Payment RCPT-100") < group.index(
        "Unlink invoice from Xero: Invoice INV-000001"
    )
    assert '<span class="badge added">added</span>' in group
    # counts per kind, the seed's warning, what stays in Xero, one button
    assert re.search(r"Unlink payment from Xero</td><td class=\"num\">3</td>", html)
    assert re.search(r"Unlink invoice from Xero</td><td class=\"num\">3</td>", html)
    assert "Unlinked invoices still exist in Xero" in html
    assert "creates it in Xero again — a duplicate" in html
    assert '6 records totalling <span class="money">AUD 480.00</span> stay in Xero' in html
    assert "Xero clean-up not chosen" in html
    assert "Queue 6 steps" in html
    assert not UnlinkBatch.objects.exists()


def test_changing_an_option_re_renders_the_plan(member, firm):
    response = member("operator").post(
        URL,
        selection_of(firm, remove_payments="delete", after="revert"),
        headers={"HX-Request": "true", "HX-Target": "plan"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="plan">')  # the partial only
    assert "Delete payment in Actionstep: Payment RCPT-100" in html
    assert "Revert invoice to draft in Actionstep: Invoice INV-000001" in html
    assert "Queue 12 steps" in html


def test_reverting_without_removing_payments_is_skipped_with_the_reason(member, firm):
    html = member("operator").post(URL, selection_of(firm, after="revert")).content.decode()
    assert "payments are still applied to it" in html
    assert "Queue 6 steps" in html


def test_the_xero_clean_up_option_is_offered_to_admins_with_what_it_would_do(member, firm):
    html = member("admin").post(URL, selection_of(firm)).content.decode()
    assert 'name="xero_cleanup"' in html
    assert 'Delete payment in Xero: 3, totalling <span class="money">AUD 150.00</span>' in html
    assert 'Void invoice in Xero: 3, totalling <span class="money">AUD 330.00</span>' in html
    assert "Invoice INV-000003 (Smith &amp; Co), AUD 110.00" in html

    html = member("operator").post(URL, selection_of(firm)).content.decode()
    assert 'name="xero_cleanup"' not in html
    assert "needs the admin role" in html


def test_an_operator_cannot_choose_the_xero_clean_up(member, firm):
    response = member("operator").post(URL, selection_of(firm, xero_cleanup="on", confirm="1"))
    assert response.status_code == 400
    assert b"needs the admin role" in response.content
    assert not UnlinkBatch.objects.exists()


def test_queueing_creates_the_batch_and_goes_to_its_page(member, firm):
    client = member("operator")
    shown = client.post(URL, selection_of(firm, remove_payments="reverse"))
    response = client.post(
        URL,
        selection_of(firm, remove_payments="reverse", plan_digest=digest_of(shown), confirm="1"),
    )
    batch = UnlinkBatch.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("unlinking:batch", args=[batch.pk])
    assert batch.created_by == client.user and batch.steps.count() == 9
    assert batch.options["remove_payments"] == "reverse"
    assert batch.selection == {
        "connection_id": firm.connection.pk,
        "kind": "invoices",
        "ids": [inv.pk for inv in firm.invoices],
        "filter_query": None,
    }


def test_queueing_through_htmx_redirects_the_browser(member, firm):
    client = member("admin")
    data = selection_of(firm, xero_cleanup="on")
    shown = client.post(URL, data)
    response = client.post(
        URL,
        {**data, "plan_digest": digest_of(shown), "confirm": "1"},
        headers={"HX-Request": "true", "HX-Target": "plan"},
    )
    batch = UnlinkBatch.objects.get()
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("unlinking:batch", args=[batch.pk])
    assert batch.options["xero_cleanup"] is True


def test_a_plan_that_changed_since_it_was_shown_is_not_queued(member, firm):
    client = member("operator")
    shown = client.post(URL, selection_of(firm))
    LinkedInvoice.objects.filter(pk=firm.invoices[0].pk).update(link_status="unlinked")
    response = client.post(URL, selection_of(firm, plan_digest=digest_of(shown), confirm="1"))
    assert response.status_code == 200
    assert b"The plan changed since it was shown" in response.content
    assert b"already unlinked" in response.content
    assert not UnlinkBatch.objects.exists()


def test_select_all_matching_plans_what_the_filter_matches(member, firm):
    LinkedInvoice.objects.filter(pk=firm.invoices[1].pk).update(xero_status=XeroStatus.PAID)
    data = {"connection": firm.connection.pk, "kind": "invoices", "_all": "1"}
    client = member("operator")
    response = client.post(f"{URL}?xero_status=PAID&page=3", data)
    html = response.content.decode()
    assert "Invoice INV-000002" in html and "Invoice INV-000001" not in html
    assert "Queue 2 steps" in html
    # the confirm form posts the same filter back (paging dropped)
    assert f'action="{URL}?xero_status=PAID"' in html

    client.post(
        f"{URL}?xero_status=PAID", {**data, "plan_digest": digest_of(response), "confirm": "1"}
    )
    assert UnlinkBatch.objects.get().selection["filter_query"] == "xero_status=PAID"


@pytest.mark.parametrize("role", ["viewer", None])
def test_only_operators_may_plan_or_queue(client_for, firm, role):
    client = client_for(role)
    firm.connection.members.add(client.user)
    assert client.post(URL, selection_of(firm)).status_code == 403
    assert client.post(URL, selection_of(firm, confirm="1")).status_code == 403
    assert not UnlinkBatch.objects.exists()


def test_the_plan_needs_post(member):
    assert member("operator").get(URL).status_code == 405


def test_csrf_is_enforced(make_user, firm):
    user = make_user("olive", "operator")
    firm.connection.members.add(user)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(URL, selection_of(firm, confirm="1")).status_code == 403
    assert not UnlinkBatch.objects.exists()


def test_ids_of_another_connection_are_refused(member, firm):
    other = store_firm("Other Firm", invoices=2)
    mixed = {**selection_of(firm), "pk": [firm.invoices[0].pk, other.invoices[0].pk]}
    response = member("operator").post(URL, {**mixed, "confirm": "1"})
    assert response.status_code == 400
    assert b"1 of the selected invoices are not in this connection" in response.content
    assert not UnlinkBatch.objects.exists()


def test_a_connection_the_user_may_not_see_is_not_found(client_for, firm):
    client = client_for("operator")  # not a member
    assert client.post(URL, selection_of(firm)).status_code == 404


@pytest.mark.parametrize(
    "change, message",
    [
        ({"pk": ["999999"]}, b"not in this connection"),
        ({"pk": []}, b"No invoices are selected"),
        ({"pk": ["abc"]}, b"No invoices are selected"),
        ({"kind": "bills"}, b"which connection and which list"),
        ({"connection": "x"}, b"which connection and which list"),
        ({"remove_payments": "shred"}, b"Select a valid choice"),
        ({"after": "void"}, b"Select a valid choice"),
    ],
)
def test_bad_input_is_a_clear_400_and_creates_nothing(member, firm, change, message):
    response = member("operator").post(URL, {**selection_of(firm), **change, "confirm": "1"})
    assert response.status_code == 400
    assert message in response.content
    assert not UnlinkBatch.objects.exists()


def test_a_plan_with_nothing_to_run_cannot_be_queued(member, firm):
    LinkedInvoice.objects.filter(connection=firm.connection).update(link_status="unlinked")
    LinkedPayment.objects.filter(connection=firm.connection).update(link_status="unlinked")
    client = member("operator")
    shown = client.post(URL, selection_of(firm))
    assert b"Queue 0 steps" in shown.content and b"disabled" in shown.content
    response = client.post(URL, selection_of(firm, plan_digest=digest_of(shown), confirm="1"))
    assert response.status_code == 400
    assert b"every step of the plan is skipped" in response.content


def test_a_plan_of_10000_steps_is_summarised(client_for):
    big = store_firm(invoices=5000, payments_each=1)
    client = client_for("operator")
    big.connection.members.add(client.user)
    response = client.post(URL, {"connection": big.connection.pk, "kind": "invoices", "_all": "1"})
    html = response.content.decode()
    assert "Queue 10,000 steps" in html
    assert html.count('<section class="plan-group') == 50
    assert "and 4,950 more invoices" in html
    assert '10,000 records totalling <span class="money">AUD 800,000.00</span> stay in Xero' in html
    assert len(response.content) < 200_000


def test_a_payments_selection_plans_only_the_payments(member, firm):
    data = {
        "connection": firm.connection.pk,
        "kind": "payments",
        "pk": [firm.payments[0].pk],
        "remove_payments": "delete",
    }
    html = member("operator").post(URL, data).content.decode()
    assert "Unlink payment from Xero: Payment RCPT-100" in html
    assert "Delete payment in Actionstep: Payment RCPT-100" in html
    assert "Unlink invoice" not in html and 'name="after"' not in html
    assert "Queue 2 steps" in html


def test_the_lists_hand_off_calls_plan_view_with_their_selection(rf, make_user, firm):
    """What the mirror's "Unlink from Xero" does: its own URL, the same function."""
    request = rf.post("/linked/1/unlink/?q=INV-00000", {"kind": "invoices", "_all": "1"})
    request.user = make_user("olive", "operator")
    request.htmx = HtmxDetails(request)
    selection = Selection.from_request(request, firm.connection, "invoices")
    response = plan_view(request, firm.connection, selection)
    html = response.content.decode()
    assert response.status_code == 200
    assert "Queue 6 steps" in html
    assert f'action="{URL}?q=INV-00000"' in html
    assert f'name="connection" value="{firm.connection.pk}"' in html
    assert 'name="_all" value="1"' in html
