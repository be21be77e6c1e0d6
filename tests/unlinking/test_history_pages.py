"""The task history, a batch's page with its live partial and CSV export, retry and cancel."""

import codecs
import csv
import io

import pytest
from django.urls import reverse

from unlinker.core.display import format_datetime, zone_of
from unlinker.unlinking import selectors, services
from unlinker.unlinking.models import StepState as S
from unlinker.unlinking.models import UnlinkBatch
from unlinker.unlinking.planning import PlanOptions

from .factories import store_firm

pytestmark = pytest.mark.django_db
HTMX_RESULTS = {"HX-Request": "true", "HX-Target": "results"}


def queue(firm, user, **options):
    rows = selectors.PlanRows(firm.invoices, [], firm.payments)
    return services.create_batch(
        connection=firm.connection,
        user=user,
        selection={"connection_id": firm.connection.pk, "kind": "invoices", "ids": [1]},
        plan=rows.plan(PlanOptions(**options)),
    )


@pytest.fixture
def olive(make_user):
    """The operator who queued the batches a viewer looks at."""
    return make_user("olive", "operator")


def set_state(batch, positions, state, **fields):
    batch.steps.filter(position__in=positions).update(state=state, **fields)


def test_the_history_lists_the_batches_the_user_may_see(member, firm, olive):
    client = member("viewer")
    mine = queue(firm, olive)
    set_state(mine, [1, 2], S.DONE)
    set_state(mine, [3], S.FAILED)
    other = store_firm("Other Firm", invoices=1)
    theirs = queue(other, olive)

    response = client.get(reverse("unlinking:history"))
    html = response.content.decode()
    assert response.status_code == 200
    assert reverse("unlinking:batch", args=[mine.pk]) in html
    assert reverse("unlinking:batch", args=[theirs.pk]) not in html
    assert "3 invoices · 6 steps" in html and "Smith Legal" in html and "olive" in html
    assert "3 pending · 2 done · 1 failed" in html
    assert '<progress max="6" value="3">50%</progress> 50%' in html
    assert 'style="' not in html  # the CSP forbids inline styles


def test_the_history_sorts_and_pages(member, firm, olive):
    client = member("viewer")
    for _ in range(3):
        queue(firm, olive)
    response = client.get(reverse("unlinking:history"), {"sort": "created_at", "page": "99"})
    assert response.status_code == 200
    assert response.context["table"].page.number == 1  # a hostile page number: the nearest page

    fragment = client.get(
        reverse("unlinking:history"), {"sort": "-created_at"}, headers=HTMX_RESULTS
    ).content.decode()
    assert fragment.lstrip().startswith('<div class="table-wrap">')
    assert "<html" not in fragment


def test_the_batch_page_shows_every_step_and_filters_by_state(member, firm, olive):
    client = member("viewer")
    batch = queue(firm, olive)
    set_state(batch, [1], S.DONE, last_request="PUT xeropaymentlinks/9100", last_response="200")
    set_state(batch, [2], S.FAILED, attempts=2, error="HTTP 422: payments still linked")

    url = reverse("unlinking:batch", args=[batch.pk])
    html = client.get(url).content.decode()
    assert "Payment RCPT-100 of AUD 50.00 on INV-000001" in html
    assert '<span class="badge added">added</span>' in html
    assert "HTTP 422: payments still linked" in html
    assert "PUT xeropaymentlinks/9100" in html
    assert 'hx-trigger="every 2s"' in html
    assert "Failed: 1" in html and "Pending: 4" in html
    # a viewer gets no actions
    assert "/retry/" not in html and "/cancel/" not in html and "Retry" not in html

    failed = client.get(url, {"state": "failed"})
    assert [step.position for step in failed.context["table"].data] == [2]


def test_operators_get_retry_and_cancel(member, firm):
    client = member("operator")
    batch = queue(firm, client.user)
    set_state(batch, [2], S.FAILED)
    html = client.get(reverse("unlinking:batch", args=[batch.pk])).content.decode()
    assert "Retry 1 failed step" in html
    assert "Cancel 5 steps not started" in html
    assert html.count('name="step"') == 1  # the failed row's own retry


def test_the_live_partial_polls_until_the_batch_is_finished(member, firm, olive):
    client = member("viewer")
    batch = queue(firm, olive)
    url = reverse("unlinking:batch", args=[batch.pk])

    running = client.get(url, {"state": "failed"}, headers=HTMX_RESULTS)
    assert running.status_code == 200
    html = running.content.decode()
    assert html.lstrip().startswith('<div id="results"')
    assert 'hx-trigger="every 2s"' in html and f'hx-get="{url}?state=failed"' in html

    set_state(batch, [1, 2, 3, 4], S.DONE)
    set_state(batch, [5, 6], S.SKIPPED)
    finished = client.get(url, headers=HTMX_RESULTS)
    assert finished.status_code == 286
    assert "hx-trigger" not in finished.content.decode()
    assert b"100%" in finished.content


def test_the_steps_export_as_an_audit_csv(member, firm, olive):
    client = member("viewer")
    batch = queue(firm, olive)
    set_state(
        batch,
        [1],
        S.DONE,
        last_request="PUT xeropaymentlinks/9100 linkStatus=Unlinked",
        last_response="200 unlinked",
    )
    set_state(batch, [2], S.FAILED, error="=HYPERLINK(evil)")
    response = client.get(reverse("unlinking:batch", args=[batch.pk]), {"_export": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    assert f"unlink-batch-{batch.pk}-steps.csv" in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    assert body.startswith(codecs.BOM_UTF8)  # Excel reads it as UTF-8
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert list(rows[0]) == [
        "Batch",
        "#",
        "Step",
        "Target",
        "Added by the plan",
        "Actionstep id",
        "Xero id",
        "State",
        "Attempts",
        "Requested by",
        "Requested at",
        "Started",
        "Finished",
        "Sent",
        "Came back",
        "Error or reason",
    ]
    assert len(rows) == 6
    first = rows[0]
    assert first["Batch"] == str(batch.pk) and first["#"] == "1"
    assert first["Step"] == "Unlink payment from Xero"
    assert first["Target"] == "Payment RCPT-100 of AUD 50.00 on INV-000001"
    assert first["Added by the plan"] == "Yes"
    assert first["Actionstep id"] == str(firm.payments[0].actionstep_id)
    assert first["Xero id"] == firm.payments[0].xero_payment_id
    assert first["State"] == "Done"
    assert first["Requested by"] == "olive"
    # in the connection's timezone, named, as the pages show it
    assert first["Requested at"] == format_datetime(batch.created_at, zone_of(firm.connection))
    assert first["Requested at"].endswith((" AEDT", " AEST"))
    assert first["Started"] == "" and first["Finished"] == ""
    assert first["Sent"] == "PUT xeropaymentlinks/9100 linkStatus=Unlinked"
    assert first["Came back"] == "200 unlinked"
    assert rows[1]["Error or reason"] == "'=HYPERLINK(evil)"  # stays text in a spreadsheet

    failed_only = client.get(
        reverse("unlinking:batch", args=[batch.pk]), {"_export": "csv", "state": "failed"}
    )
    assert b"".join(failed_only.streaming_content).count(b"\n") == 2  # header and one step


def test_a_batch_of_a_connection_the_user_may_not_see_is_not_found(client_for, firm, make_user):
    batch = queue(firm, make_user("ada", "admin"))
    client = client_for("operator")  # not a member
    assert client.get(reverse("unlinking:batch", args=[batch.pk])).status_code == 404
    for name in ("unlinking:retry", "unlinking:cancel"):
        assert client.post(reverse(name, args=[batch.pk])).status_code == 404
    assert client.get(reverse("unlinking:batch", args=[999999])).status_code == 404


def test_retry_and_cancel_from_the_batch_page(member, firm):
    client = member("operator")
    batch = queue(firm, client.user)
    set_state(batch, [1], S.FAILED, error="HTTP 500")
    set_state(batch, [2], S.SKIPPED, error="not run")
    url = reverse("unlinking:batch", args=[batch.pk])

    response = client.post(reverse("unlinking:retry", args=[batch.pk]))
    assert response.status_code == 302 and response["Location"] == url
    assert batch.steps.get(position=1).state == S.PENDING
    assert batch.steps.get(position=2).state == S.PENDING

    set_state(batch, [3], S.FAILED)
    set_state(batch, [4], S.FAILED)
    one = batch.steps.get(position=3)
    client.post(reverse("unlinking:retry", args=[batch.pk]), {"step": [str(one.pk)]})
    assert batch.steps.get(position=3).state == S.PENDING
    assert batch.steps.get(position=4).state == S.FAILED

    response = client.post(reverse("unlinking:cancel", args=[batch.pk]), follow=True)
    assert b"5 steps cancelled; steps already running finish." in response.content
    assert set(batch.steps.values_list("state", flat=True)) == {S.CANCELLED, S.FAILED}
    batch.refresh_from_db()
    assert batch.state == UnlinkBatch.State.FINISHED


@pytest.mark.parametrize("name", ["unlinking:retry", "unlinking:cancel"])
def test_viewers_may_not_retry_or_cancel(member, firm, olive, name):
    client = member("viewer")
    batch = queue(firm, olive)
    set_state(batch, [1], S.FAILED)
    assert client.post(reverse(name, args=[batch.pk])).status_code == 403
    assert client.get(reverse(name, args=[batch.pk])).status_code in (403, 405)
    assert batch.steps.get(position=1).state == S.FAILED
