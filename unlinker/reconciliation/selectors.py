"""Reads for the reconciliation report: its runs, their findings, and what a clean-up of some
findings acts on."""

import hashlib
from dataclasses import dataclass

from django.db.models import QuerySet
from django.http import QueryDict

from unlinker.mirror.models import LinkedInvoice, LinkedPayment, LinkStatus
from unlinker.unlinking.planning import (
    Plan,
    PlanOptions,
    XeroDuplicate,
    plan_unlink,
    plan_xero_cleanup,
)

from .filters import FindingFilterSet
from .models import CLEANABLE, Finding, ReconciliationRun, XeroInvoiceCopy

MAX_ID = 2**63 - 1


def latest_run(connection) -> ReconciliationRun | None:
    return ReconciliationRun.objects.filter(connection=connection).first()


def latest_finished_run(connection) -> ReconciliationRun | None:
    return (
        ReconciliationRun.objects.filter(connection=connection, state=ReconciliationRun.State.DONE)
        .order_by("-finished_at")
        .first()
    )


def findings_of(run: ReconciliationRun | None) -> QuerySet[Finding]:
    if run is None:
        return Finding.objects.none()
    # the invoice's Actionstep id, matter and contact: its link and the search box read them
    return Finding.objects.filter(run=run).select_related("invoice")


# --- clean-up -----------------------------------------------------------------------------


class InvalidSelection(ValueError):
    """The selection does not name findings that can be cleaned up: nothing can be planned."""


@dataclass(frozen=True)
class FindingSelection:
    """The findings of a clean-up: the ticked ones (`ids`), or with `filter_query` all those of
    the latest report that the filter matches ("select all N matching")."""

    ids: list[int] | None = None
    filter_query: str | None = None

    @classmethod
    def from_request(cls, request) -> "FindingSelection":
        """The report's bulk form posts the ticked `pk`s, or `_all=1` with the filter in the
        URL's query string."""
        if request.POST.get("_all") == "1":
            kept = QueryDict(mutable=True)
            for name in FindingFilterSet.base_filters:
                if values := [value for value in request.GET.getlist(name) if value]:
                    kept.setlist(name, values)
            return cls(filter_query=kept.urlencode())
        return cls(ids=_ids(request.POST.getlist("pk")))

    def to_dict(self, run: ReconciliationRun) -> dict:
        """For the batch's record (unlinking.selectors.describe_selection reads it)."""
        chosen = {"ids": self.ids} if self.ids is not None else {"filter_query": self.filter_query}
        return {"source": "reconciliation", "kind": "findings", "run_id": run.pk, **chosen}


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

    def plan(self) -> Plan:
        """Orphans are unlinked already: their plan's Actionstep steps are skipped as done, and
        its Xero steps remove the copy their link pointed at. Duplicates get Xero steps only."""
        plan = plan_unlink(
            self.orphans,
            [],
            PlanOptions(xero_cleanup=True),
            invoice_payments=self.orphan_payments,
        )
        return plan_xero_cleanup(self.duplicates, self.duplicate_payments, plan=plan)


def cleanup_for(connection, selection: FindingSelection) -> Cleanup:
    """What cleaning up the selected findings of the connection's latest report acts on. Ticked
    ids that are not orphans or duplicates of that report make the whole selection invalid:
    acting on the rest would not be what the user confirmed."""
    run = latest_finished_run(connection)
    cleanable = findings_of(run).filter(kind__in=CLEANABLE).select_related("invoice")
    if selection.ids is not None:
        findings = list(cleanable.filter(pk__in=selection.ids))
        if len(findings) != len(selection.ids):
            missing = len(selection.ids) - len(findings)
            raise InvalidSelection(
                f"{missing} of the selected findings are not orphans or duplicates of this "
                "connection's latest report. Go back to the report and select again."
            )
    else:
        query = QueryDict(selection.filter_query)
        findings = list(FindingFilterSet(query, queryset=cleanable).qs)
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


def cleanup_digest(plan: Plan) -> str:
    """Fingerprint of the clean-up shown on the confirm page, which the confirmation carries:
    Plan.digest names each step's record, and the record of a duplicate's step is the invoice
    it duplicates, so the Xero ids are added to tell two duplicates of one invoice apart."""
    h = hashlib.sha256(plan.digest().encode())
    for step in plan.steps:
        target = step.target
        xero_id = target.xero_payment_id if step.payment else target.xero_invoice_id
        h.update(f"{xero_id}\n".encode())
    return h.hexdigest()[:32]


def _ids(values: list[str]) -> list[int]:
    """Posted ids as integers, in order, once each. What cannot be a row id is dropped: it
    selects nothing either way."""
    ids = {}
    for value in values:
        try:
            pk = int(value)  # ValueError too for a number of more than 4,300 digits
        except ValueError:
            continue
        if 0 < pk <= MAX_ID:
            ids[pk] = None
    return list(ids)


def _unique(invoices: list[LinkedInvoice]) -> list[LinkedInvoice]:
    return list({invoice.pk: invoice for invoice in invoices}.values())
