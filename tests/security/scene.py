"""The data the security tests run against: a firm with mirror rows, a batch with steps, a sync
and a reconciliation; another firm whose rows carry MARKER and must never reach the first firm's
users; a disconnected connection; and one user per role, each a member of the first firm."""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from tests.unlinking.factories import Firm, store_firm
from unlinker.connections.models import Connection, OAuthCredential, Provider
from unlinker.core.selection import Selection
from unlinker.mirror.models import LinkedInvoice, LinkedPayment, LinkStatus, SyncRun
from unlinker.reconciliation.models import Finding, ReconciliationRun
from unlinker.unlinking.models import StepState, UnlinkBatch, UnlinkStep
from unlinker.unlinking.planning import PlanOptions
from unlinker.unlinking.selectors import PlanRows
from unlinker.unlinking.services import create_batch

MARKER = "OTHER-FIRM-SECRET"
# No role at all, then each role in increasing privilege (see unlinker/accounts/roles.py).
ROLES = (None, "viewer", "operator", "admin")


@dataclass
class Scene:
    firm: Firm
    batch: UnlinkBatch
    other: Firm
    other_batch: UnlinkBatch
    gone: Connection  # disconnected: nobody may act on it any more
    users: dict[str | None, AbstractBaseUser]

    @property
    def connection(self) -> Connection:
        return self.firm.connection

    def foreign_ids(self) -> list[int]:
        """Every id of the other firm's records, and of the disconnected connection: the ids a
        crafted request would try to reach."""
        other = self.other.connection
        return sorted(
            {
                other.pk,
                self.gone.pk,
                self.other_batch.pk,
                *(row.pk for row in self.other.invoices),
                *(row.pk for row in self.other.payments),
                *self.other_batch.steps.values_list("pk", flat=True),
                *Finding.objects.filter(run__connection=other).values_list("pk", flat=True),
            }
        )

    def retriable_step_ids(self) -> set[int]:
        """The steps of the firm's batch that a retry would put back (see retry_failed_steps)."""
        retriable = (StepState.FAILED, StepState.SKIPPED)
        return set(self.batch.steps.filter(state__in=retriable).values_list("pk", flat=True))


def queue_batch(firm: Firm, invoices: int = 2) -> UnlinkBatch:
    """A batch unlinking the firm's first invoices and their payments: step 1 done, step 2
    failed, the others pending."""
    chosen = firm.invoices[:invoices]
    rows = PlanRows(chosen, [], [p for inv in chosen for p in firm.payments_of(inv)])
    selection = Selection(firm.connection.pk, "invoices", ids=[inv.pk for inv in chosen])
    batch = create_batch(
        connection=firm.connection,
        user=None,
        selection=selection.to_dict(),
        planner=lambda busy: rows.plan(PlanOptions(), busy=busy),
    ).batch
    now = timezone.now()
    batch.steps.filter(position=1).update(
        state=StepState.DONE, attempts=1, finished_at=now, result="200"
    )
    batch.steps.filter(position=2).update(
        state=StepState.FAILED, attempts=3, finished_at=now, error="HTTP 422: still linked"
    )
    return batch


def finished_reconciliation(
    connection: Connection, detail: str, number: str, invoice: LinkedInvoice | None = None
) -> Finding:
    """A finished run with one orphan: `invoice` unlinked in Actionstep, still live in Xero."""
    now = timezone.now()
    run = ReconciliationRun.objects.create(
        connection=connection,
        state=ReconciliationRun.State.DONE,
        started_at=now,
        finished_at=now,
        reads_made=1,
        counts={Finding.Kind.ORPHAN: 1},
    )
    return Finding.objects.create(
        run=run,
        kind=Finding.Kind.ORPHAN,
        invoice=invoice,
        invoice_number=number,
        xero_invoice_id="00000000-0000-0000-0000-000000000001",
        xero_status="AUTHORISED",
        detail=detail,
        key=f"orphan:{number}",
    )


def build_scene(make_user) -> Scene:
    now = timezone.now()
    # 30 invoices and 30 payments: more than a page at the smallest page size (25)
    firm = store_firm("Smith & Co Legal", invoices=30, payments_each=1)
    batch = queue_batch(firm)
    SyncRun.objects.create(
        connection=firm.connection,
        state=SyncRun.State.DONE,
        started_at=now,
        finished_at=now,
        records_upserted=60,
    )
    orphan = firm.invoices[-1]
    LinkedInvoice.objects.filter(pk=orphan.pk).update(
        link_status=LinkStatus.UNLINKED, linked_payment_count=0
    )
    LinkedPayment.objects.filter(invoice=orphan).update(link_status=LinkStatus.UNLINKED)
    finished_reconciliation(
        firm.connection, "Unlinked, still AUTHORISED in Xero", orphan.invoice_number, orphan
    )

    other = store_firm("Jones Legal", invoices=3)
    secret = {"contact_name": MARKER, "matter_name": MARKER, "reference": MARKER}
    LinkedInvoice.objects.filter(connection=other.connection).update(**secret)
    LinkedPayment.objects.filter(connection=other.connection).update(**secret)
    other_batch = queue_batch(other)
    UnlinkBatch.objects.filter(pk=other_batch.pk).update(summary=MARKER, pause_reason=MARKER)
    UnlinkStep.objects.filter(batch=other_batch).update(target_label=MARKER, error=MARKER)
    SyncRun.objects.create(
        connection=other.connection, state=SyncRun.State.FAILED, finished_at=now, error=MARKER
    )
    finished_reconciliation(other.connection, MARKER, MARKER)

    Connection.objects.filter(pk=firm.connection.pk).update(
        actionstep_org_key="smithco", xero_tenant_id="t-smith", xero_tenant_name="Smith Xero"
    )
    OAuthCredential.objects.create(
        connection=firm.connection,
        provider=Provider.ACTIONSTEP,
        access_token="at",
        refresh_token="rt",
        last_error="invalid_grant: the refresh token expired",
        last_error_at=now,
    )
    gone = Connection.objects.create(name="Gone Legal", disconnected_at=now)
    users = {role: make_user(role or "norole", role) for role in ROLES}
    firm.connection.members.add(*users.values())
    gone.members.add(*users.values())
    return Scene(firm, batch, other, other_batch, gone, users)
