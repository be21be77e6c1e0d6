"""The task history, a batch's page with its live partial and CSV export, retry and cancel."""

import codecs
import csv
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from unlinker.core.display import format_datetime, zone_of
from unlinker.unlinking import executor, selectors, services
from unlinker.unlinking.models import StepAttempt, StepRequest, UnlinkBatch
from unlinker.unlinking.models import StepState as S
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
        planner=lambda busy: rows.plan(PlanOptions(**options), busy=busy),
    ).batch


@pytest.fixture
def olive(make_user):
    """The operator who queued the batches a viewer looks at."""
    return make_user("olive", "operator")


def set_state(batch, positions, state, **fields):
    batch.steps.filter(position__in=positions).update(state=state, **fields)


def attempted(step, requests, number=1):
    """Record an attempt of `step` that sent `requests` ((method, path, status or None))."""
    attempt = StepAttempt.objects.create(step=step, number=number, started_at=timezone.now())
    for sequence, (method, path, status) in enumerate(requests, 1):
        StepRequest.objects.create(
            attempt=attempt,
            sequence=sequence,
            api="actionstep",
            method=method,
            path=path,
            is_write=method != "GET",
            sent_at=timezone.now(),
            status=status,
            sent='{"linkStatus":"Unlinked"}',
            came_back="" if status is None else '{"ok":true}',
            error="" if status else "ReadTimeout",
        )
    return attempt


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
    # one segment per finished state, sized by CSS classes (the CSP forbids inline styles)
    assert '<span class="segment done w-33" title="2 done">' in html
    assert '<span class="segment failed w-17" title="1 failed">' in html
    assert "3 of 6 steps finished" in html and "50%" in html
    assert 'style="' not in html


def test_the_history_sorts_and_pages(member, firm, olive):
    client = member("viewer")
    for _ in range(3):
        batch = queue(firm, olive)
        set_state(batch, [1, 2, 3, 4, 5, 6], S.DONE)
        executor.finish_batch_if_settled(batch.pk)  # gives its records back for the next one
    response = client.get(reverse("unlinking:history"), {"sort": "created_at", "page": "99"})
    assert response.status_code == 200
    assert response.context["table"].page.number == 1  # a hostile page number: the nearest page

    fragment = client.get(
        reverse("unlinking:history"), {"sort": "-created_at"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert '<div class="table-wrap">' in fragment and "3 batches" in fragment
    assert "<html" not in fragment


def test_the_history_lists_the_newest_first_and_filters(member, firm, olive, make_user):
    client = member("viewer")
    older = queue(firm, olive)
    set_state(older, [1, 2, 3, 4, 5, 6], S.DONE)
    executor.finish_batch_if_settled(older.pk)
    oscar = make_user("oscar", "operator")
    newer = queue(firm, oscar)
    url = reverse("unlinking:history")
    table = client.get(url).context["table"]
    assert [row.record.pk for row in table.paginated_rows] == [newer.pk, older.pk]
    by_state = client.get(url, {"state": "unfinished"}).context["table"]
    assert [row.record.pk for row in by_state.paginated_rows] == [newer.pk]
    by_person = client.get(url, {"created_by": str(olive.pk)}).context["table"]
    assert [row.record.pk for row in by_person.paginated_rows] == [older.pk]
    sorted_up = client.get(url, {"sort": "created_at"}).context["table"]
    assert [row.record.pk for row in sorted_up.paginated_rows] == [older.pk, newer.pk]
    today = timezone.localdate().isoformat()
    assert client.get(url, {"date_from": today}).context["count"] == 2
    other = client.get(url, {"connection": "999999"})
    assert other.status_code == 200 and other.context["count"] == 0  # an error: nothing listed


def test_the_batch_page_shows_every_step_and_filters_by_state(member, firm, olive):
    client = member("viewer")
    batch = queue(firm, olive)
    set_state(batch, [1], S.DONE, result="payment link 9100 unlinked")
    attempted(batch.steps.get(position=1), [("PUT", "/rest/xeropaymentlinks/9100", 200)])
    set_state(batch, [2], S.FAILED, attempts=2, error="HTTP 422: payments still linked")
    attempted(batch.steps.get(position=2), [("PUT", "/rest/xeroinvoicelinks/7", None)], number=1)
    attempted(batch.steps.get(position=2), [("PUT", "/rest/xeroinvoicelinks/7", 422)], number=2)

    url = reverse("unlinking:batch", args=[batch.pk])
    html = client.get(url).content.decode()
    assert "Payment RCPT-100 of AUD 50.00 on INV-000001" in html
    assert '<span class="badge added">added</span>' in html
    assert "HTTP 422: payments still linked" in html
    assert "<code>PUT /rest/xeropaymentlinks/9100</code> → 200" in html
    # every attempt stays, the one whose answer never came included
    assert "2 attempts" in html and "sent, answer lost" in html and "→ 422" in html
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


def test_the_steps_export_as_an_audit_csv_with_every_attempt(member, firm, olive):
    client = member("viewer")
    batch = queue(firm, olive)
    set_state(batch, [1], S.DONE, result="payment link 9100 unlinked")
    first = batch.steps.get(position=1)
    attempted(first, [("PUT", "/rest/xeropaymentlinks/9100", None)], number=1)
    attempted(
        first,
        [("GET", "/rest/xeropaymentlinks/9100", 200)],
        number=2,
    )
    set_state(batch, [2], S.FAILED, error="=HYPERLINK(evil)")
    response = client.get(reverse("unlinking:batch", args=[batch.pk]), {"_export": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    assert f"unlink-batch-{batch.pk}-steps.csv" in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    assert body.startswith(codecs.BOM_UTF8)  # Excel reads it as UTF-8
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert list(rows[0])[:12] == [
        "Batch",
        "#",
        "Step",
        "Target",
        "Added by the plan",
        "Actionstep id",
        "Xero id",
        "State",
        "Result or reason",
        "Requested by",
        "Requested at",
        "Attempt",
    ]
    assert len(rows) == 7  # step 1's two attempts, and one row for each other step
    lost, reread = rows[0], rows[1]
    assert lost["Batch"] == str(batch.pk) and lost["#"] == "1"
    assert lost["Step"] == "Unlink payment from Xero"
    assert lost["Target"] == "Payment RCPT-100 of AUD 50.00 on INV-000001"
    assert lost["Added by the plan"] == "Yes"
    assert lost["Actionstep id"] == str(firm.payments[0].actionstep_id)
    assert lost["Xero id"] == firm.payments[0].xero_payment_id
    assert lost["State"] == "Done"
    assert lost["Requested by"] == "olive"
    # in the connection's timezone, named, as the pages show it
    assert lost["Requested at"] == format_datetime(batch.created_at, zone_of(firm.connection))
    assert lost["Requested at"].endswith((" AEDT", " AEST"))
    assert (lost["Attempt"], lost["Method"], lost["Path"]) == (
        "1",
        "PUT",
        "/rest/xeropaymentlinks/9100",
    )
    assert lost["Answer"] == "sent, answer lost (ReadTimeout)"
    assert (reread["Attempt"], reread["Method"], reread["Answer"]) == ("2", "GET", "200")
    assert rows[2]["Result or reason"] == "'=HYPERLINK(evil)"  # stays text in a spreadsheet
    assert rows[2]["Attempt"] == ""

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

    # Cancel asks first; nothing changes until it is confirmed.
    asked = client.get(reverse("unlinking:cancel", args=[batch.pk]))
    assert b"Cancel batch" in asked.content and b"can be queued again" in asked.content
    client.post(reverse("unlinking:cancel", args=[batch.pk]))
    assert not batch.steps.filter(state=S.CANCELLED).exists()
    response = client.post(
        reverse("unlinking:cancel", args=[batch.pk]), {"confirm": "1"}, follow=True
    )
    assert b"5 steps cancelled" in response.content
    assert set(batch.steps.values_list("state", flat=True)) == {S.CANCELLED, S.FAILED}
    batch.refresh_from_db()
    assert batch.state == UnlinkBatch.State.CANCELLED
    assert b"Cancelled (5 of 6 not run)" in client.get(url).content

    # ...and cancelled steps can be queued again.
    response = client.post(reverse("unlinking:resume", args=[batch.pk]), follow=True)
    assert b"5 steps queued again" in response.content
    assert batch.steps.filter(state=S.PENDING).count() == 5


@pytest.mark.parametrize("name", ["unlinking:retry", "unlinking:cancel"])
def test_viewers_may_not_retry_or_cancel(member, firm, olive, name):
    client = member("viewer")
    batch = queue(firm, olive)
    set_state(batch, [1], S.FAILED)
    assert client.post(reverse(name, args=[batch.pk])).status_code == 403
    assert client.get(reverse(name, args=[batch.pk])).status_code in (403, 405)
    assert batch.steps.get(position=1).state == S.FAILED
