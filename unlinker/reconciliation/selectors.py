"""Reads for the reconciliation report: its runs, their findings, and what a clean-up of some
findings acts on."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from django.db.models import QuerySet

from unlinker.core.selection import Selection
from unlinker.mirror.models import LinkedInvoice, LinkedPayment, LinkStatus
from unlinker.unlinking.planning import (
    XERO_KINDS,
    Plan,
    PlanOptions,
    XeroContext,
    XeroDuplicate,
    plan_unlink,
    plan_xero_cleanup,
)
from unlinker.unlinking.selectors import xero_context

from .models import CLEANABLE, Finding, ReconciliationRun, XeroInvoiceCopy


def latest_run(connection) -> ReconciliationRun | None:
    return ReconciliationRun.objects.filter(connection=connection).first()


def latest_finished_run(connection) -> ReconciliationRun | None:
    return (
        ReconciliationRun.objects.filter(connection=connection, state=ReconciliationRun.State.DONE)
        .order_by("-finished_at")
        .first()
    )


def findings_of(run: ReconciliationRun | None) -> QuerySet[Finding]:
    """The run's findings that are still so: one a clean-up resolved since is gone at once."""
    if run is None:
        return Finding.objects.none()
    # the invoice's Actionstep id, matter and contact: its link and the search box read them
    return Finding.objects.filter(run=run, resolved_at__isnull=True).select_related("invoice")


def resolved_since(run: ReconciliationRun | None) -> int:
    return Finding.objects.filter(run=run, resolved_at__isnull=False).count() if run else 0


# --- clean-up -----------------------------------------------------------------------------


class InvalidSelection(ValueError):
    """The selection does not name findings that can be cleaned up: nothing can be planned."""


@dataclass(frozen=True)
class Cleanup:
    """The orphans and duplicates of a selection, as the mirror and the Xero copies hold them
    now, and the findings left out with why."""

    run: ReconciliationRun
    orphans: list[LinkedInvoice]
    orphan_payments: list[LinkedPayment]  # every payment of the orphans
    duplicates: list[XeroDuplicate]
    duplicate_payments: list[LinkedPayment]  # those the duplicates carry in Xero
    left_out: list[tuple[Finding, str]]
    xero: XeroContext = field(default_factory=XeroContext)

    def plan(self, busy: Mapping[str, int] | None = None) -> Plan:
        """Orphans are unlinked already: their plan's Actionstep steps are skipped as done, and
        its Xero steps remove the copy their link pointed at. Duplicates get Xero steps only.
        A clean-up changes Xero only: a plan that would change Actionstep is refused."""
        plan = plan_unlink(
            self.orphans,
            [],
            PlanOptions(xero_cleanup=True),
            invoice_payments=self.orphan_payments,
            busy=busy,
            xero=self.xero,
        )
        plan = plan_xero_cleanup(self.duplicates, self.duplicate_payments, plan=plan, busy=busy)
        in_actionstep = [s for s in plan.steps if not s.skipped and s.kind not in XERO_KINDS]
        if in_actionstep:
            raise ValueError(f"A clean-up changes Xero only, not: {in_actionstep[0].kind.label}")
        return plan


def cleanable_findings(connection) -> QuerySet[Finding]:
    """The findings a clean-up may act on: the orphans and duplicates of the connection's latest
    report not resolved since (the "findings" list's rows, for core.selection)."""
    run = latest_finished_run(connection)
    return findings_of(run).filter(kind__in=CLEANABLE).select_related("invoice")


def cleanup_for(connection, selection: Selection) -> Cleanup:
    """What cleaning up the selected findings of the connection's latest report acts on. Ticked
    ids that are not orphans or duplicates of that report make the whole selection invalid:
    acting on the rest would not be what the user confirmed."""
    run = latest_finished_run(connection)
    findings = list(selection.queryset())
    if selection.ids is not None and len(findings) != len(selection.ids):
        missing = len(selection.ids) - len(findings)
        raise InvalidSelection(
            f"{missing} of the selected findings are not orphans or duplicates of this "
            "connection's latest report. Go back to the report and select again."
        )
    if not findings:
        raise InvalidSelection("No orphan or duplicate is selected.")

    chosen, left_out = [], []
    for finding in findings:
        if why := _left_out_because(finding):
            left_out.append((finding, why))
        else:
            chosen.append(finding)
    orphans = _unique([f.invoice for f in chosen if f.kind == Finding.Kind.ORPHAN])
    orphan_payments = LinkedPayment.objects.filter(
        connection=connection, invoice__in=[i.pk for i in orphans]
    ).order_by("payment_date", "pk")

    duplicate_findings = [f for f in chosen if f.kind == Finding.Kind.DUPLICATE]
    copies = {
        copy.invoice_id: copy
        for copy in XeroInvoiceCopy.objects.filter(
            connection=connection, invoice_id__in=[f.xero_invoice_id for f in duplicate_findings]
        )
    }
    duplicates = []
    for finding in duplicate_findings:
        copy = copies[finding.xero_invoice_id]  # copies are updated, never deleted
        duplicates.append(
            XeroDuplicate(
                invoice=finding.invoice,
                xero_invoice_id=copy.invoice_id,
                status=copy.status,
                total=copy.total,
                payment_ids=tuple(copy.payment_ids),
                xero_date=copy.date,
                credits=tuple(copy.credits),
            )
        )
    on_duplicates = [pid for d in duplicates for pid in d.payment_ids]
    duplicate_payments = LinkedPayment.objects.filter(
        connection=connection, xero_payment_id__in=on_duplicates
    )
    return Cleanup(
        run=run,
        orphans=orphans,
        orphan_payments=list(orphan_payments),
        duplicates=duplicates,
        duplicate_payments=list(duplicate_payments),
        left_out=left_out,
        xero=xero_context(connection),
    )


def _left_out_because(finding: Finding) -> str:
    """Why a finding has nothing to clean up any more (empty: it has). The mirror may have moved
    on since the report: what was an orphan or a duplicate then must be one still."""
    invoice = finding.invoice
    if invoice is None:
        return "no longer in the linked lists"
    if finding.kind == Finding.Kind.ORPHAN:
        if invoice.link_status == LinkStatus.LINKED:
            return "linked again in Actionstep since the report: run it again"
        if invoice.linked_payment_count:
            return "payments on it are still linked in Actionstep: unlink them first"
    elif finding.xero_invoice_id == invoice.xero_invoice_id.lower():
        return "its invoice now links to this copy: run the report again"
    return ""


def _unique(invoices: list[LinkedInvoice]) -> list[LinkedInvoice]:
    return list({invoice.pk: invoice for invoice in invoices}.values())
