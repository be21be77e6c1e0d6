"""The report page: /reconciliation/<connection>/, its progress and its run-now button."""

import csv
import io
import re

import pytest
from django.urls import reverse

from tests.mirror import factories
from unlinker.reconciliation.models import Finding, ReconciliationRun

from .support import stored_run

pytestmark = pytest.mark.django_db
K = Finding.Kind


@pytest.fixture
def firm(db):
    return factories.connection("Smith & Co")


@pytest.fixture
def member(client_for, firm):
    """A logged-in client for a user of `role` who may see `firm`."""

    def login(role: str):
        client = client_for(role)
        firm.members.add(client.user)
        return client

    return login


@pytest.fixture
def report(firm):
    previous = stored_run(firm, [(K.ORPHAN, "INV-000009")])
    return stored_run(
        firm,
        [
            (K.ORPHAN, "INV-000001"),
            (K.ORPHAN, '<script>alert("x")</script>'),
            (K.DUPLICATE, "INV-000003"),
            (K.BROKEN_LINK, "INV-000004"),
            (K.BROKEN_LINK, "INV-000005"),
            (K.MISMATCH, "=HYPERLINK(1)"),
        ],
        changes={"new": 6, "resolved": 1, "previous_run": previous.pk},
    )


def url(connection, **query) -> str:
    path = reverse("reconciliation:connection_report", args=[connection.pk])
    return path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def numbers(response) -> list[str]:
    return re.findall(
        r'<td class="number">(?:<span class="truncate" title="[^"]*">)?'
        r"(INV-\d+|&lt;script.*?|=HYPERLINK\(1\))</span></td>",
        response.content.decode(),
    )


def test_the_report_shows_the_counts_per_kind_and_what_changed(member, firm, report):
    response = member("viewer").get(url(firm))
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'<span class="badge orphan">Orphan in Xero</span> 2</a>', html)
    assert re.search(r'<span class="badge duplicate">Duplicate in Xero</span> 1</a>', html)
    assert re.search(r'<span class="badge broken_link">Broken link</span> 2</a>', html)
    assert re.search(r'<span class="badge mismatch">Amounts or contact differ</span> 1</a>', html)
    assert "Since the previous run: <strong>6 new</strong>, 1 resolved." in html
    assert '<span id="list-count" class="count">6 findings</span>' in html


def test_the_report_filters_by_kind(member, firm, report):
    client = member("viewer")
    response = client.get(url(firm, kind="broken_link"))
    assert numbers(response) == ["INV-000004", "INV-000005"]
    assert re.search(r'kind=broken_link" aria-current="true"', response.content.decode())
    assert numbers(client.get(url(firm, q="000003"))) == ["INV-000003"]


def test_a_bad_filter_lists_nothing(member, firm, report):
    response = member("viewer").get(url(firm, kind="everything"))
    assert response.status_code == 200
    assert numbers(response) == []
    assert "Nothing is listed until the filter is corrected" in response.content.decode()


def test_text_from_the_apis_is_escaped(member, firm, report):
    html = member("viewer").get(url(firm)).content.decode()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert '<script>alert("x")' not in html


def test_the_report_sorts_and_pages(member, firm, report):
    client = member("viewer")
    sorted_desc = numbers(client.get(url(firm, sort="-invoice_number", kind="broken_link")))
    assert sorted_desc == ["INV-000005", "INV-000004"]

    stored_run(firm, [(K.MISMATCH, f"INV-{n:06d}") for n in range(1, 31)])
    first = numbers(client.get(url(firm, per_page=25)))
    second = numbers(client.get(url(firm, per_page=25, page=2)))
    assert len(first) == 25 and len(second) == 5
    assert sorted(first + second) == [f"INV-{n:06d}" for n in range(1, 31)]


def test_the_findings_export_as_csv(member, firm, report):
    response = member("viewer").get(url(firm, _export="csv", kind="mismatch"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")  # a BOM: Excel reads UTF-8
    rows = list(csv.reader(io.StringIO(body.removeprefix("\ufeff"))))
    assert rows[0] == [
        "Finding",
        "Invoice",
        "In Xero",
        "Currency",
        "Actionstep total",
        "Xero total",
        "Xero invoice",
        "Detail",
    ]
    assert len(rows) == 2
    assert rows[1][:3] == ["Amounts or contact differ", "'=HYPERLINK(1)", "Authorised"]
    # the invoice's page in Xero, not its bare GUID
    assert rows[1][6].startswith("https://go.xero.com/AccountsReceivable/View.aspx?InvoiceID=")


def test_htmx_gets_only_the_results(member, firm, report):
    response = member("viewer").get(url(firm, kind="orphan"), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "<h1>" not in html and 'id="list-count"' in html
    assert numbers(response) == ["INV-000001", "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"]


def test_viewers_see_the_findings_without_the_clean_up(member, firm, report):
    html = member("viewer").get(url(firm)).content.decode()
    assert 'name="pk"' not in html
    assert "Clean up in Xero" not in html


def test_admins_may_tick_orphans_and_duplicates_only(client_for, firm, report):
    html = client_for("admin").get(url(firm)).content.decode()  # admins see every connection
    assert "Clean up in Xero" in html
    ticked = re.findall(r'<input type="checkbox" name="pk" value="(\d+)"', html)
    cleanable = Finding.objects.filter(run=report, kind__in=[K.ORPHAN, K.DUPLICATE])
    assert sorted(map(int, ticked)) == sorted(cleanable.values_list("pk", flat=True))


def test_before_any_run_the_page_offers_to_run_one(member, firm):
    html = member("operator").get(url(firm)).content.decode()
    assert "No reconciliation has finished for this connection yet" in html
    assert "Run the reconciliation now" in html


def test_a_failed_run_says_why_above_the_last_findings(member, firm, report):
    ReconciliationRun.objects.create(
        connection=firm, state=ReconciliationRun.State.FAILED, error="ValidationFailed: nope"
    )
    html = member("viewer").get(url(firm)).content.decode()
    assert "last run failed" in html and "ValidationFailed: nope" in html
    assert "INV-000001" in html


def test_run_now_queues_one_run(member, firm, django_capture_on_commit_callbacks):
    client = member("operator")
    run_url = reverse("reconciliation:run", args=[firm.pk])
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(run_url)
    assert response.status_code == 200
    (run,) = ReconciliationRun.objects.all()
    assert run.state == ReconciliationRun.State.QUEUED and run.requested_by == client.user
    assert len(queued) == 1
    html = response.content.decode()
    assert 'hx-trigger="every 1s"' in html and "queued" in html

    with django_capture_on_commit_callbacks() as queued_again:
        client.post(run_url)
    assert ReconciliationRun.objects.count() == 1 and queued_again == []


def test_the_progress_poll_stops_with_286_when_the_run_is_done(member, firm):
    client = member("viewer")
    progress_url = reverse("reconciliation:progress", args=[firm.pk])
    run = ReconciliationRun.objects.create(
        connection=firm, state=ReconciliationRun.State.RUNNING, pages_done=3
    )
    running = client.get(progress_url)
    assert running.status_code == 200
    assert "3 Xero reads so far" in running.content.decode()

    ReconciliationRun.objects.filter(pk=run.pk).update(state=ReconciliationRun.State.DONE)
    done = client.get(progress_url)
    assert done.status_code == 286
    assert done["HX-Refresh"] == "true"


def test_a_viewer_may_not_run_it_and_is_not_offered_to(member, firm):
    """A run reads every sales invoice in Xero: viewers browse its findings, operators and
    admins run it. Refused by the view and by the service alike."""
    from django.core.exceptions import PermissionDenied

    from unlinker.reconciliation.services import start_reconciliation

    client = member("viewer")
    assert client.post(reverse("reconciliation:run", args=[firm.pk])).status_code == 403
    with pytest.raises(PermissionDenied):
        start_reconciliation(connection=firm, user=client.user)
    assert not ReconciliationRun.objects.exists()
    html = client.get(url(firm)).content.decode()
    assert "Run the reconciliation now" not in html
    assert "an operator or admin can run it now" in html
    assert "Run the reconciliation now" in member("operator").get(url(firm)).content.decode()


def test_run_now_and_progress_need_their_method(member, firm):
    client = member("operator")
    assert client.get(reverse("reconciliation:run", args=[firm.pk])).status_code == 405
    assert client.post(reverse("reconciliation:progress", args=[firm.pk])).status_code == 405


def test_a_connection_the_user_may_not_see_is_not_found(client_for, firm, report):
    client = client_for("operator")  # not a member
    assert client.get(url(firm)).status_code == 404
    assert client.get(url(firm, _export="csv")).status_code == 404
    assert client.post(reverse("reconciliation:run", args=[firm.pk])).status_code == 404
    assert client.get(reverse("reconciliation:progress", args=[firm.pk])).status_code == 404
    assert not ReconciliationRun.objects.exclude(
        pk__in=[report.pk, report.changes["previous_run"]]
    ).exists()


def test_the_report_opens_on_the_first_connection(member, firm):
    response = member("viewer").get(reverse("reconciliation:report"))
    assert response.status_code == 302 and response["Location"] == url(firm)


def test_without_a_connection_the_report_says_so(client_for):
    response = client_for("viewer").get(reverse("reconciliation:report"))
    assert response.status_code == 200
    assert "There is no connection yet" in response.content.decode()
