"""Names and texts come from Actionstep, Xero and the workers' error messages: markup in any of
them shows as text on every page that shows it, never as markup."""

import pytest
from django.utils import timezone
from django.utils.html import escape

from unlinker.connections.models import Connection, OAuthCredential
from unlinker.mirror.models import LinkedInvoice, LinkedPayment, SyncRun
from unlinker.reconciliation.models import Finding, ReconciliationRun
from unlinker.unlinking.models import StepState, UnlinkBatch, UnlinkStep

from .pages import crawl, parse

pytestmark = pytest.mark.django_db

# What each text is: mirror rows, a batch and its steps, findings, the connection, the errors
# of a sync, a reconciliation and a token refresh.
TAGS = (
    *("contact", "matter", "ref", "number"),
    *("summary", "pause", "select", "error", "target"),
    *("detail", "finding"),
    *("conn", "tenant", "cred", "sync", "recon"),
)


def payload(tag: str) -> str:
    """Markup as text and as an attribute breaker (57 characters and the tag: invoice numbers
    hold 64)."""
    return f'<script>alert("{tag}")</script>\'"><img src=x onerror=alert(1)>'


@pytest.fixture
def hostile_names(scene) -> dict[str, str]:
    """Every text the pages show from outside the product, set to markup; by what it is."""
    values = {tag: payload(tag) for tag in TAGS}
    firm = scene.connection
    for model in (LinkedInvoice, LinkedPayment):
        model.objects.filter(connection=firm).update(
            contact_name=values["contact"],
            matter_name=values["matter"],
            reference=values["ref"],
            invoice_number=values["number"],
        )
    UnlinkBatch.objects.filter(pk=scene.batch.pk).update(
        summary=values["summary"],
        state=UnlinkBatch.State.PAUSED,  # the reason is shown while it is paused
        pause_reason=values["pause"],
        selection={"connection_id": firm.pk, "kind": "invoices", "filter_query": values["select"]},
    )
    UnlinkStep.objects.filter(batch=scene.batch, state=StepState.FAILED).update(
        error=values["error"], target_label=values["target"]
    )
    Finding.objects.filter(run__connection=firm).update(
        detail=values["detail"], invoice_number=values["finding"]
    )
    Connection.objects.filter(pk=firm.pk).update(
        name=values["conn"], xero_tenant_name=values["tenant"]
    )
    OAuthCredential.objects.filter(connection=firm).update(last_error=values["cred"])
    now = timezone.now()
    SyncRun.objects.create(
        connection=firm, state=SyncRun.State.FAILED, finished_at=now, error=values["sync"]
    )
    ReconciliationRun.objects.create(
        connection=firm,
        state=ReconciliationRun.State.FAILED,
        finished_at=now,
        error=values["recon"],
    )
    return values


def test_markup_from_outside_shows_as_text_on_every_page(
    scene, signed_in, make_user, hostile_names
):
    pages = crawl(scene, signed_in, make_user)
    for page in pages:
        assert "<script>alert(" not in page.html, page.label
        assert "<img src=x" not in page.html, page.label
        assert parse(page).problems == [], page.label

    shown = {
        tag: [page.label for page in pages if escape(value) in page.html]
        for tag, value in hostile_names.items()
    }
    assert {tag: where for tag, where in shown.items() if not where} == {}, (
        "every text above is shown, escaped, on some page"
    )
