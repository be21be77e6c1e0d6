"""Cleaning up in Xero from the report: POST /reconciliation/<connection>/cleanup/ shows exactly
what would be deleted or voided, then queues it as a batch that the executor runs."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from tests.mirror import factories
from tests.unlinking.support import assert_written_at_most_once, run_all, synced, upstream_writes
from unlinker.core.display import format_date
from unlinker.mirror.models import LinkedInvoice, XeroStatus
from unlinker.reconciliation.models import Finding
from unlinker.unlinking.models import StepKind, StepState, UnlinkBatch, UnlinkStep

from .support import reconcile, stored_run

pytestmark = pytest.mark.django_db
K = Finding.Kind


@pytest.fixture
def reported(upstream, connect):
    """A firm with two orphans (one AUTHORISED, one PAID with two payments), a duplicate, an
    orphan with a batch payment and a broken link, synced and reconciled."""
    built = upstream.build(
        [
            {"total": "220.00", "link": "Unlinked"},
            {
                "total": "100.00",
                "link": "Unlinked",
                "payments": [
                    {"amount": "30.00", "reference": "R30"},
                    {"amount": "70.00", "reference": "R70"},
                ],
            },
            {"total": "550.00", "duplicate": True},
            {
                "total": "300.00",
                "link": "Unlinked",
                "payments": [
                    {"amount": "100.00", "reference": "BATCH", "batch": "B1"},
                    {"amount": "200.00", "reference": "R200"},
                ],
            },
            {"total": "400.00", "xero_status": "VOIDED"},
        ]
    )
    connection = synced(connect, built)
    run = reconcile(connection)
    assert run.counts == {"orphan": 3, "duplicate": 1, "broken_link": 1, "mismatch": 0}
    return connection, built, run


def cleanup_url(connection, query: str = "") -> str:
    return reverse("reconciliation:cleanup", args=[connection.pk]) + query


def cleanable(run) -> list[int]:
    findings = Finding.objects.filter(run=run, kind__in=[K.ORPHAN, K.DUPLICATE])
    return list(findings.order_by("pk").values_list("pk", flat=True))


def digest_of(response) -> str:
    return re.search(rb'name="plan_digest" value="([0-9a-f]+)"', response.content)[1].decode()


def confirmed(response) -> dict:
    """What pressing "Queue N steps" on this rendering of the clean-up posts."""
    key = re.search(rb'name="confirm_key" value="([\w-]+)"', response.content)[1].decode()
    return {"plan_digest": digest_of(response), "confirm_key": key, "confirm": "1"}


def totals(html: str) -> dict[str, tuple[str, str]]:
    table = re.search(r'<table class="plan-counts cleanup-totals">.*?</table>', html, re.S)[0]
    rows = re.findall(
        r'<tr><td>(.*?)</td><td class="num">(.*?)</td><td class="num">'
        r'<span class="money">(.*?)</span></td>',
        table,
    )
    return {label: (count, total) for label, count, total in rows}


def listed(html: str, heading: str) -> list[str]:
    section = re.search(rf"<h2>{heading}.*?</ul>", html, re.S)[0]
    return re.findall(r"<li>(.*?)(?: <span|</li>)", section)


def test_the_confirm_page_lists_exactly_what_would_change_in_xero(client_for, reported):
    connection, built, run = reported
    n = [b["number"] for b in built["bills"]]
    response = client_for("admin").post(cleanup_url(connection), {"pk": cleanable(run)})

    assert response.status_code == 200
    html = response.content.decode()
    assert totals(html) == {
        "Delete payment in Xero": ("3", "AUD 300.00"),
        "Void invoice in Xero": ("3", "AUD 870.00"),
        "Left to a person": ("2", "AUD 400.00"),
    }
    assert sorted(listed(html, "Delete payment in Xero")) == [
        f"Payment R200 of AUD 200.00 on {n[3]}",
        f"Payment R30 of AUD 30.00 on {n[1]}",
        f"Payment R70 of AUD 70.00 on {n[1]}",
    ]
    assert listed(html, "Void invoice in Xero") == [
        f"Invoice {n[0]} (Test Client), AUD 220.00",
        f"Invoice {n[1]} (Test Client), AUD 100.00",
        f"Duplicate {n[2]} in Xero (Test Client), AUD 550.00",
    ]
    assert sorted(listed(html, "Left to a person")) == [
        f"Invoice {n[3]} (Test Client), AUD 300.00",
        f"Payment BATCH of AUD 100.00 on {n[3]}",
    ]
    assert "part of a Xero batch payment: remove it in Xero by hand" in html
    assert "Queue 6 steps" in html
    assert not UnlinkBatch.objects.exists()


def test_queueing_the_clean_up_and_running_it_empties_xero(client_for, upstream, reported):
    connection, built, run = reported
    client = client_for("admin")
    chosen = {"pk": cleanable(run)}
    shown = client.post(cleanup_url(connection), chosen)
    response = client.post(cleanup_url(connection), {**chosen, **confirmed(shown)})

    batch = UnlinkBatch.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("unlinking:batch", args=[batch.pk])
    assert batch.created_by == client.user and batch.options["xero_cleanup"] is True
    assert batch.selection["source"] == "reconciliation" and batch.selection["run_id"] == run.pk
    steps = UnlinkStep.objects.filter(batch=batch)
    pending = steps.filter(state=StepState.PENDING)
    assert pending.count() == 6
    assert not pending.exclude(kind__startswith="xero_").exists()  # nothing in Actionstep
    orphan, paid, duplicated, batched, _ = built["bills"]
    duplicate_step = steps.get(xero_id=duplicated["duplicate_xero_invoice_id"].lower())
    assert duplicate_step.kind == StepKind.XERO_VOID_INVOICE
    assert duplicate_step.invoice.actionstep_id == duplicated["id"]

    since = upstream.last_request_id()
    batch = run_all(batch)
    assert batch.state == UnlinkBatch.State.FINISHED
    assert not steps.filter(state=StepState.FAILED).exists()
    for bill in (orphan, paid):
        assert upstream.xero_invoice(bill["xero_invoice_id"])["Status"] == "VOIDED"
    for payment in paid["payments"]:
        assert upstream.xero_payment(payment["xero_payment_id"])["Status"] == "DELETED"
    assert upstream.xero_invoice(duplicated["duplicate_xero_invoice_id"])["Status"] == "VOIDED"
    assert upstream.xero_invoice(duplicated["xero_invoice_id"])["Status"] == "AUTHORISED"
    batch_payment, other = batched["payments"]
    assert upstream.xero_payment(batch_payment["xero_payment_id"])["Status"] == "AUTHORISED"
    assert upstream.xero_payment(other["xero_payment_id"])["Status"] == "DELETED"
    assert upstream.xero_invoice(batched["xero_invoice_id"])["Status"] == "AUTHORISED"
    assert upstream.requests(since=since, api="actionstep", method="PUT") == []
    assert_written_at_most_once(upstream_writes(upstream, since))

    # re-running the finished clean-up re-reads Xero and writes nothing
    since = upstream.last_request_id()
    steps.filter(state=StepState.DONE).update(state=StepState.PENDING)
    run_all(batch)
    assert upstream.requests(since=since, api="xero", method="POST") == []
    assert steps.filter(result__contains="already").count() == 6

    # the next report finds only the orphan held back by its batch payment
    again = reconcile(connection)
    assert again.counts == {"orphan": 1, "duplicate": 0, "broken_link": 1, "mismatch": 0}
    assert again.changes["resolved"] == 3


def test_voiding_a_duplicate_leaves_the_linked_copy_status_in_the_mirror(client_for, reported):
    connection, built, run = reported
    duplicate = Finding.objects.get(run=run, kind=K.DUPLICATE)
    client = client_for("admin")
    shown = client.post(cleanup_url(connection), {"pk": [duplicate.pk]})
    client.post(
        cleanup_url(connection),
        {"pk": [duplicate.pk], **confirmed(shown)},
    )
    run_all(UnlinkBatch.objects.get())
    linked = LinkedInvoice.objects.get(actionstep_id=built["bills"][2]["id"])
    assert linked.xero_status == XeroStatus.AUTHORISED


def test_select_all_matching_cleans_up_what_the_filter_matches(client_for, reported):
    connection, built, run = reported
    response = client_for("admin").post(cleanup_url(connection, "?kind=duplicate"), {"_all": "1"})
    html = response.content.decode()
    assert totals(html) == {
        "Void invoice in Xero": ("1", "AUD 550.00"),
        "Left to a person": ("0", "0.00"),
    }
    assert 'name="_all" value="1"' in html
    assert f'action="{cleanup_url(connection, "?kind=duplicate")}"' in html


def test_a_clean_up_that_changed_since_it_was_shown_is_not_queued(client_for, reported):
    connection, built, run = reported
    client = client_for("admin")
    chosen = {"pk": cleanable(run)}
    shown = confirmed(client.post(cleanup_url(connection), chosen))
    # the report runs again, and meanwhile someone voided an orphan in Xero
    newer = {"pk": cleanable(reconcile(connection))}
    LinkedInvoice.objects.filter(actionstep_id=built["bills"][0]["id"]).update(
        xero_status=XeroStatus.VOIDED
    )
    response = client.post(cleanup_url(connection), {**newer, **shown})
    assert response.status_code == 200
    assert "The plan changed since it was shown" in response.content.decode()
    assert not UnlinkBatch.objects.exists()


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_admins_may_clean_up(client_for, reported, role):
    connection, built, run = reported
    client = client_for(role)
    connection.members.add(client.user)
    chosen = {"pk": cleanable(run)}
    assert client.post(cleanup_url(connection), chosen).status_code == 403
    assert client.post(cleanup_url(connection), {**chosen, "confirm": "1"}).status_code == 403
    assert not UnlinkBatch.objects.exists()


def test_the_clean_up_needs_post(client_for, reported):
    connection, _, _ = reported
    assert client_for("admin").get(cleanup_url(connection)).status_code == 405


def test_csrf_is_enforced(make_user, reported):
    connection, built, run = reported
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("ada", "admin"))
    response = client.post(cleanup_url(connection), {"pk": cleanable(run), "confirm": "1"})
    assert response.status_code == 403
    assert not UnlinkBatch.objects.exists()


def test_a_finding_of_another_connection_is_refused(client_for, reported):
    connection, built, run = reported
    other = factories.connection("Jones Legal")
    foreign = stored_run(other, [(K.ORPHAN, "INV-999999")]).findings.get()
    client = client_for("admin")
    for chosen in ([foreign.pk], [*cleanable(run), foreign.pk]):
        response = client.post(cleanup_url(connection), {"pk": chosen, "confirm": "1"})
        assert response.status_code == 400
        assert b"1 of the selected findings are not orphans or duplicates" in response.content
    assert not UnlinkBatch.objects.exists()


@pytest.mark.parametrize(
    "chosen, message",
    [
        ("broken", b"1 of the selected findings are not orphans or duplicates"),
        ([], b"No orphan or duplicate is selected"),
        (["abc", "-1", "9" * 5000], b"No orphan or duplicate is selected"),
    ],
)
def test_bad_selections_are_a_clear_400(client_for, reported, chosen, message):
    connection, built, run = reported
    if chosen == "broken":
        chosen = [Finding.objects.get(run=run, kind=K.BROKEN_LINK).pk]
    response = client_for("admin").post(cleanup_url(connection), {"pk": chosen, "confirm": "1"})
    assert response.status_code == 400
    assert message in response.content
    assert not UnlinkBatch.objects.exists()


def test_an_orphan_linked_again_since_the_report_is_left_out(client_for, reported):
    connection, built, run = reported
    orphan = Finding.objects.get(run=run, invoice__actionstep_id=built["bills"][0]["id"])
    LinkedInvoice.objects.filter(pk=orphan.invoice_id).update(link_status="linked")
    response = client_for("admin").post(cleanup_url(connection), {"pk": [orphan.pk]})
    html = response.content.decode()
    assert "left out: linked again in Actionstep since the report" in html
    assert "Queue 0 steps" in html and " disabled>" in html


def test_a_connection_the_admin_may_see_is_required(client_for, reported):
    connection, built, run = reported
    connection.disconnected_at = connection.created_at
    connection.save()
    response = client_for("admin").post(cleanup_url(connection), {"pk": cleanable(run)})
    assert response.status_code == 404


def test_the_clean_up_leaves_what_a_lock_date_keeps_and_counts_its_calls(client_for, reported):
    from datetime import date
    from html import unescape

    connection, built, run = reported
    client = client_for("admin")
    html = client.post(cleanup_url(connection), {"pk": cleanable(run)}).content.decode()
    assert "Calls to Xero:" in html and "history notes" in html

    # the organisation's books closed today (as the next refresh from Xero reads it)
    connection.xero_period_lock_date = date.today()
    connection.save()
    html = unescape(client.post(cleanup_url(connection), {"pk": cleanable(run)}).content.decode())
    shown = format_date(date.today())
    assert (
        f"blocked by Xero's period lock date {shown}: the firm's adviser must move it first" in html
    )
    assert "Queue 0 steps" in html
    assert "Calls to Xero:" not in html
