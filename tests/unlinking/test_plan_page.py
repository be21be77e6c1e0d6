"""The plan and confirm page: POST /unlink/<connection>/plan/."""

import re
from html import unescape

import pytest
from django.test import Client
from django.urls import reverse

from unlinker.mirror.models import LinkedInvoice, LinkedPayment, XeroStatus
from unlinker.unlinking.models import UnlinkBatch

from .factories import store_firm

pytestmark = pytest.mark.django_db


@pytest.fixture
def URL(firm):
    return reverse("unlinking:plan", args=[firm.connection.pk])


def selection_of(firm, invoices=None, **extra):
    chosen = firm.invoices if invoices is None else invoices
    return {"kind": "invoices", "pk": [inv.pk for inv in chosen], **extra}


def digest_of(response) -> str:
    return re.search(rb'name="plan_digest" value="([0-9a-f]+)"', response.content)[1].decode()


def confirmed(response) -> dict:
    """The fields a press of "Queue N steps" on this rendering of the plan posts."""
    key = re.search(rb'name="confirm_key" value="([\w-]+)"', response.content)[1].decode()
    return {"plan_digest": digest_of(response), "confirm_key": key, "confirm": "1"}


def test_the_plan_groups_payments_under_their_invoice_and_marks_what_was_added(member, firm, URL):
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
    # counts per kind, the help centre's warning that an unlinked invoice stays in Xero, one button
    assert re.search(r"Unlink payment from Xero</td><td class=\"num\">3</td>", html)
    assert re.search(r"Unlink invoice from Xero</td><td class=\"num\">3</td>", html)
    assert "Unlinked invoices still exist in Xero" in html
    assert "creates it in Xero again — a duplicate" in html
    assert '6 records totalling <span class="money">AUD 480.00</span> stay in Xero' in html
    assert "Xero clean-up not chosen" in html
    assert "Queue 6 steps" in html
    assert not UnlinkBatch.objects.exists()


def test_changing_an_option_re_renders_the_plan(member, firm, URL):
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


def test_reverting_without_removing_payments_is_skipped_with_the_reason(member, firm, URL):
    html = member("operator").post(URL, selection_of(firm, after="revert")).content.decode()
    assert "payments are still applied to it" in html
    assert "Queue 6 steps" in html


def test_the_xero_clean_up_option_is_offered_to_admins_with_what_it_would_do(member, firm, URL):
    html = member("admin").post(URL, selection_of(firm)).content.decode()
    assert 'name="xero_cleanup"' in html
    assert 'Delete payment in Xero: 3, totalling <span class="money">AUD 150.00</span>' in html
    assert 'Void invoice in Xero: 3, totalling <span class="money">AUD 330.00</span>' in html
    assert "Invoice INV-000003 (Smith &amp; Co), AUD 110.00" in html

    html = member("operator").post(URL, selection_of(firm)).content.decode()
    assert 'name="xero_cleanup"' not in html
    assert "needs the admin role" in html


def test_an_operator_cannot_choose_the_xero_clean_up(member, firm, URL):
    response = member("operator").post(URL, selection_of(firm, xero_cleanup="on", confirm="1"))
    assert response.status_code == 400
    assert b"needs the admin role" in response.content
    assert not UnlinkBatch.objects.exists()


def test_queueing_creates_the_batch_and_goes_to_its_page(member, firm, URL):
    client = member("operator")
    shown = client.post(URL, selection_of(firm, remove_payments="reverse"))
    response = client.post(
        URL,
        {**selection_of(firm, remove_payments="reverse"), **confirmed(shown)},
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


def test_queueing_through_htmx_redirects_the_browser(member, firm, URL):
    client = member("admin")
    data = selection_of(firm, xero_cleanup="on")
    shown = client.post(URL, data)
    response = client.post(
        URL,
        {**data, **confirmed(shown)},
        headers={"HX-Request": "true", "HX-Target": "plan"},
    )
    batch = UnlinkBatch.objects.get()
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("unlinking:batch", args=[batch.pk])
    assert batch.options["xero_cleanup"] is True


def test_a_plan_that_changed_since_it_was_shown_is_not_queued(member, firm, URL):
    client = member("operator")
    shown = client.post(URL, selection_of(firm))
    LinkedInvoice.objects.filter(pk=firm.invoices[0].pk).update(link_status="unlinked")
    response = client.post(URL, {**selection_of(firm), **confirmed(shown)})
    assert response.status_code == 200
    assert b"The plan changed since it was shown" in response.content
    assert b"already unlinked" in response.content
    assert not UnlinkBatch.objects.exists()


def test_select_all_matching_plans_what_the_filter_matches(member, firm, URL):
    LinkedInvoice.objects.filter(pk=firm.invoices[1].pk).update(xero_status=XeroStatus.PAID)
    data = {"kind": "invoices", "_all": "1"}
    client = member("operator")
    response = client.post(f"{URL}?xero_status=PAID&page=3", data)
    html = response.content.decode()
    assert "Invoice INV-000002" in html and "Invoice INV-000001" not in html
    assert "Queue 2 steps" in html
    # the confirm form posts the same filter back (paging dropped)
    assert f'action="{URL}?xero_status=PAID"' in html

    client.post(f"{URL}?xero_status=PAID", {**data, **confirmed(response)})
    assert UnlinkBatch.objects.get().selection["filter_query"] == "xero_status=PAID"


@pytest.mark.parametrize("role", ["viewer", None])
def test_only_operators_may_plan_or_queue(client_for, firm, role, URL):
    client = client_for(role)
    firm.connection.members.add(client.user)
    assert client.post(URL, selection_of(firm)).status_code == 403
    assert client.post(URL, selection_of(firm, confirm="1")).status_code == 403
    assert not UnlinkBatch.objects.exists()


def test_the_plan_needs_post(member, URL):
    assert member("operator").get(URL).status_code == 405


def test_csrf_is_enforced(make_user, firm, URL):
    user = make_user("olive", "operator")
    firm.connection.members.add(user)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(URL, selection_of(firm, confirm="1")).status_code == 403
    assert not UnlinkBatch.objects.exists()


def test_ids_of_another_connection_are_refused(member, firm, URL):
    other = store_firm("Other Firm", invoices=2)
    mixed = {**selection_of(firm), "pk": [firm.invoices[0].pk, other.invoices[0].pk]}
    response = member("operator").post(URL, {**mixed, "confirm": "1"})
    assert response.status_code == 400
    assert b"1 of the selected invoices are not in this connection" in response.content
    assert not UnlinkBatch.objects.exists()


def test_a_connection_the_user_may_not_see_is_not_found(client_for, firm, URL):
    client = client_for("operator")  # not a member
    assert client.post(URL, selection_of(firm)).status_code == 404


@pytest.mark.parametrize(
    "change, message",
    [
        ({"pk": ["999999"]}, b"not in this connection"),
        ({"pk": []}, b"No invoices are selected"),
        ({"pk": ["abc"]}, b"No invoices are selected"),
        ({"kind": "bills"}, b"which list it is from"),
        ({"kind": "findings"}, b"which list it is from"),
        ({"remove_payments": "shred"}, b"Select a valid choice"),
        ({"after": "void"}, b"Select a valid choice"),
    ],
)
def test_bad_input_is_a_clear_400_and_creates_nothing(member, firm, change, message, URL):
    response = member("operator").post(URL, {**selection_of(firm), **change, "confirm": "1"})
    assert response.status_code == 400
    assert message in response.content
    assert not UnlinkBatch.objects.exists()


def test_a_plan_with_nothing_to_run_cannot_be_queued(member, firm, URL):
    LinkedInvoice.objects.filter(connection=firm.connection).update(link_status="unlinked")
    LinkedPayment.objects.filter(connection=firm.connection).update(link_status="unlinked")
    client = member("operator")
    shown = client.post(URL, selection_of(firm))
    assert b"Queue 0 steps" in shown.content and b"disabled" in shown.content
    response = client.post(URL, {**selection_of(firm), **confirmed(shown)})
    assert response.status_code == 200
    assert b"every step of the plan is skipped" in response.content
    assert not UnlinkBatch.objects.exists()


def test_a_plan_of_10000_steps_is_summarised(client_for):
    big = store_firm(invoices=5000, payments_each=1)
    client = client_for("operator")
    big.connection.members.add(client.user)
    url = reverse("unlinking:plan", args=[big.connection.pk])
    response = client.post(url, {"kind": "invoices", "_all": "1"})
    html = response.content.decode()
    assert "Queue 10,000 steps" in html
    assert html.count('<section class="plan-group') == 50
    assert "and 4,950 more invoices" in html
    assert '10,000 records totalling <span class="money">AUD 800,000.00</span> stay in Xero' in html
    assert len(response.content) < 200_000


def test_a_payments_selection_plans_only_the_payments(member, firm, URL):
    data = {
        "kind": "payments",
        "pk": [firm.payments[0].pk],
        "remove_payments": "delete",
    }
    html = member("operator").post(URL, data).content.decode()
    assert "Unlink payment from Xero: Payment RCPT-100" in html
    assert "Delete payment in Actionstep: Payment RCPT-100" in html
    assert "Unlink invoice" not in html and 'name="after"' not in html
    assert "Queue 2 steps" in html


@pytest.mark.parametrize("old", ["/history/plan/", "/linked/{pk}/unlink/"])
def test_the_old_addresses_of_the_plan_page_keep_the_post(member, firm, old, URL):
    """308: the browser posts the same selection to the new address."""
    response = member("operator").post(
        old.format(pk=firm.connection.pk) + "?q=INV-00000",
        {"connection": firm.connection.pk, "kind": "invoices", "_all": "1"},
    )
    assert response.status_code == 308
    assert response["Location"] == f"{URL}?q=INV-00000"


def test_the_plan_page_posts_its_selection_back(member, firm, URL):
    html = member("operator").post(f"{URL}?q=INV-00000", {"kind": "invoices", "_all": "1"})
    html = html.content.decode()
    assert "Queue 6 steps" in html
    assert f'action="{URL}?q=INV-00000"' in html
    assert 'name="_all" value="1"' in html and 'name="kind" value="invoices"' in html


# --- one plan, one batch: the ways people submit a confirmation twice ----------------------


def test_a_double_click_queues_one_batch(member, firm, URL):
    client = member("operator")
    shown = client.post(URL, selection_of(firm))
    first = client.post(URL, {**selection_of(firm), **confirmed(shown)})
    second = client.post(URL, {**selection_of(firm), **confirmed(shown)}, follow=True)
    batch = UnlinkBatch.objects.get()
    assert first["Location"] == reverse("unlinking:batch", args=[batch.pk])
    assert second.redirect_chain[-1][0] == first["Location"]
    assert f"already queued as batch {batch.pk}: nothing new was queued" in second.content.decode()


def test_back_and_submit_again_later_lands_on_the_first_batch(member, firm, URL):
    client = member("operator")
    shown = client.post(URL, selection_of(firm))
    client.post(URL, {**selection_of(firm), **confirmed(shown)})
    batch = UnlinkBatch.objects.get()
    # The batch ran meanwhile (the mirror changed: the same plan would now be different).
    batch.steps.update(state="done")
    LinkedInvoice.objects.filter(connection=firm.connection).update(link_status="unlinked")
    again = client.post(URL, {**selection_of(firm), **confirmed(shown)})
    assert again["Location"] == reverse("unlinking:batch", args=[batch.pk])
    assert UnlinkBatch.objects.count() == 1


def test_the_same_plan_open_in_two_tabs_queues_one_batch(member, firm, URL):
    client = member("operator")
    tab_one = client.post(URL, selection_of(firm))
    tab_two = client.post(URL, selection_of(firm))
    assert confirmed(tab_one)["confirm_key"] != confirmed(tab_two)["confirm_key"]
    client.post(URL, {**selection_of(firm), **confirmed(tab_one)})
    batch = UnlinkBatch.objects.get()
    response = client.post(URL, {**selection_of(firm), **confirmed(tab_two)}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("unlinking:batch", args=[batch.pk])
    assert f"already in batch {batch.pk}, still running" in response.content.decode()
    assert UnlinkBatch.objects.count() == 1


def test_two_users_with_overlapping_plans_never_share_a_record(member, make_user, firm, URL):
    first, second = firm.invoices[:2], firm.invoices[1:]
    olive = member("operator")
    shown_olive = olive.post(URL, selection_of(firm, first))
    oscar = Client()
    oscar_user = make_user("oscar", "operator")
    firm.connection.members.add(oscar_user)
    oscar.force_login(oscar_user)
    shown_oscar = oscar.post(URL, selection_of(firm, second))

    olive.post(URL, {**selection_of(firm, first), **confirmed(shown_olive)})
    batch = UnlinkBatch.objects.get()
    # Oscar's plan is shown again: the invoice in Olive's batch is skipped, with a link to it.
    changed = oscar.post(URL, {**selection_of(firm, second), **confirmed(shown_oscar)})
    html = changed.content.decode()
    assert "The plan changed since it was shown" in html
    assert (
        f'in <a href="{reverse("unlinking:batch", args=[batch.pk])}">batch {batch.pk}</a>' in html
    )
    oscar.post(URL, {**selection_of(firm, second), **confirmed(changed)})
    olives, oscars = UnlinkBatch.objects.order_by("pk")
    theirs = set(oscars.steps.exclude(state="skipped").values_list("target_key", flat=True))
    ours = set(olives.steps.exclude(state="skipped").values_list("target_key", flat=True))
    assert theirs and ours and not theirs & ours
    assert f"invoice:{firm.invoices[2].pk}" in theirs


def test_lock_dates_allocations_and_the_calls_to_xero_are_on_the_plan(member, firm, URL):
    from datetime import date

    connection = firm.connection
    connection.xero_period_lock_date = date(2025, 1, 15)
    connection.xero_organisation_read_at = connection.created_at
    connection.save()
    locked, credited, plain = firm.invoices
    LinkedInvoice.objects.filter(pk=locked.pk).update(invoice_date=date(2025, 1, 10))
    LinkedInvoice.objects.filter(pk=credited.pk).update(
        invoice_date=date(2025, 2, 1),
        xero_amount_credited=30,
        xero_credits=[
            {
                "kind": "CREDITNOTE",
                "document_id": "c1",
                "number": "CN-7",
                "amount": "30.00",
                "date": "2025-02-03",
            }
        ],
    )
    LinkedInvoice.objects.filter(pk=plain.pk).update(invoice_date=date(2025, 2, 1))
    LinkedPayment.objects.update(payment_date=date(2025, 2, 2))
    admin = member("admin")
    html = unescape(admin.post(URL, selection_of(firm, xero_cleanup="on")).content.decode())
    assert "Xero's lock dates</strong>: period 15 Jan 2025" in html
    assert "1 change in Xero is dated on or before a lock date" in html
    assert '<span class="badge locked">locked</span>' in html
    assert (
        "blocked by Xero's period lock date 15 Jan 2025: the firm's adviser must move it first"
        in html
    )
    assert "Allocated to it in Xero: credit note CN-7 of 30.00" in html
    assert "choose \u201cremove allocations first\u201d" in html
    assert "Calls to Xero:" in html and "history notes" in html

    html = unescape(
        admin.post(
            URL, selection_of(firm, xero_cleanup="on", remove_allocations="on", free_numbers="on")
        ).content.decode()
    )
    assert "Remove allocation in Xero: Credit note CN-7 of 30.00 allocated to" in html
    assert "Renamed INV-000003-VOID in the call that voids it" in html
    assert "1 allocation removed in Xero" in html  # the warning beside the button


def test_an_operator_cannot_choose_the_clean_up_refinements(member, firm, URL):
    operator = member("operator")
    for option in ("remove_allocations", "free_numbers"):
        response = operator.post(URL, selection_of(firm, **{option: "on"}))
        assert response.status_code == 400
        assert "needs the admin role" in response.content.decode()


def test_the_clean_up_preview_follows_the_options_ticked(member, firm, URL):
    LinkedInvoice.objects.filter(pk=firm.invoices[0].pk).update(
        xero_credits=[{"kind": "PREPAYMENT", "document_id": "p1", "amount": "20.00", "date": None}]
    )
    admin = member("admin")
    ticked = selection_of(firm, xero_cleanup="on", remove_allocations="on")
    html = admin.post(URL, ticked, headers={"HX-Request": "true", "HX-Target": "plan"}).content
    html = html.decode()
    assert html.lstrip().startswith('<div id="plan">')
    preview = html[html.index('<div id="xero-preview" hx-swap-oob="true">') :]
    assert 'Remove allocation in Xero: 1, totalling <span class="money">AUD 20.00</span>' in preview
    # an operator's re-rendered plan carries no preview of the clean-up
    operator = member("operator")
    html = operator.post(
        URL, selection_of(firm), headers={"HX-Request": "true", "HX-Target": "plan"}
    ).content.decode()
    assert "xero-preview" not in html
