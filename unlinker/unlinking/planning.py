"""The plan of an unlink: which steps, in which order, for a selection of linked records.

`plan_unlink` is pure: the caller loads the rows (`selectors.plan_rows`) and nothing here queries
or writes. The same plan is shown on the confirm page, printed by `manage.py unlink --dry-run`
and stored by `services.create_batch`, and the rules of the seed live here once:

- a payment applied to an invoice is unlinked before that invoice, so selecting an invoice adds
  the unlinking of its still-linked payments (marked as added, never hidden);
- payments are deleted or reversed in Actionstep only once unlinked, and the invoice is reverted
  or deleted only once it is unlinked and its payments are removed;
- in Xero, payments are deleted once unlinked, and the invoice is voided (or deleted, when DRAFT
  or SUBMITTED) only once it is unlinked and all its payments are deleted there: Xero refuses to
  void an invoice that still has a payment, and a batch payment's part goes to a person.

A record that an unfinished batch already holds (`busy`: record key -> batch) is planned as
skipped, "in batch N, still running": a record has one writer at a time.

Steps of different invoices never depend on each other, so one failure blocks one invoice only.
A step that cannot or need not run is planned as skipped with its reason. Nothing depends on such
a step: one whose work is already done upstream satisfies its dependents, and one that is blocked
skips its dependents at planning time. So a dependency always points at a step that will run.

Xero refuses more than payments, and the plan knows it (`XeroContext`, the organisation as last
read): nothing dated on or before a lock date is voided, deleted or has a payment or an allocation
removed; an invoice with a credit note, prepayment or overpayment allocated is voided only after
those allocations are removed ("remove allocations first"), else skipped. Each such step is
planned as skipped with the reason, never as a step that will fail.

`plan_xero_cleanup` plans, with the same rules, the removal of duplicates in Xero: invoices that
carry an Actionstep invoice's number beside the copy its link points at (the reconciliation
report finds them). Nothing is planned in Actionstep for them.
"""

import copy
import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal

from django.db import models

from unlinker.core.display import format_date, format_money, plural
from unlinker.integrations import actionstep_resources
from unlinker.integrations.records import XeroLocks
from unlinker.integrations.xero import XERO_INVOICES_PER_CALL
from unlinker.mirror.models import LinkedInvoice, LinkedPayment, LinkStatus, XeroStatus

from .models import StepKind


# The labels are the consequences, shown beside each choice on the plan page.
class PaymentRemoval(models.TextChoices):
    NONE = "none", "Leave them applied: the invoice cannot be reverted or deleted while they are"
    DELETE = "delete", "Delete them: each payment is removed completely"
    REVERSE = "reverse", "Reverse them: each payment comes off the invoice, a record of it is kept"


class InvoiceAfter(models.TextChoices):
    NONE = "none", "Leave it approved: it is only unlinked, to edit or delete by hand"
    REVERT = "revert", "Revert it to draft, to edit it (approving it again re-creates it in Xero)"
    DELETE = "delete", "Delete it in Actionstep"


class InvalidOptions(ValueError):
    """Options that do not describe a plan (unknown keys or values)."""


# The options that refine the clean-up in Xero (PlanOptions), valid only with it.
XERO_CLEANUP_OPTIONS = ("remove_allocations", "free_numbers")


@dataclass(frozen=True)
class PlanOptions:
    """What to do besides unlinking. Stored with the batch as `to_dict()`."""

    remove_payments: PaymentRemoval = PaymentRemoval.NONE
    after: InvoiceAfter = InvoiceAfter.NONE
    xero_cleanup: bool = False
    # With the clean-up in Xero: delete the allocations of credit notes, prepayments and
    # overpayments to an invoice before voiding it (without, such an invoice is not voided) ...
    remove_allocations: bool = False
    # ... and rename each Xero copy (its number + XERO_VOID_NUMBER_SUFFIX) in the call that
    # voids it, so that the invoice approved again in Actionstep can take its number.
    free_numbers: bool = False

    def __post_init__(self):
        # Coerce plain strings (from a form, JSON or the command line) and refuse anything else.
        for name, choices in (("remove_payments", PaymentRemoval), ("after", InvoiceAfter)):
            value = getattr(self, name)
            if value not in choices.values:
                raise InvalidOptions(f"{name} must be one of {', '.join(choices.values)}")
            object.__setattr__(self, name, choices(value))
        for name in ("xero_cleanup", *XERO_CLEANUP_OPTIONS):
            if not isinstance(getattr(self, name), bool):
                raise InvalidOptions(f"{name} must be true or false")
        for name in XERO_CLEANUP_OPTIONS:
            if getattr(self, name) and not self.xero_cleanup:
                raise InvalidOptions(f"{name} is part of the clean-up in Xero: choose it too")

    def to_dict(self) -> dict:
        return {
            "remove_payments": str(self.remove_payments),
            "after": str(self.after),
            "xero_cleanup": self.xero_cleanup,
            "remove_allocations": self.remove_allocations,
            "free_numbers": self.free_numbers,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "PlanOptions":
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise InvalidOptions(f"unknown options: {', '.join(sorted(unknown))}")
        return cls(**data)


# Why a step is skipped. Shown to the user as is.
ALREADY_UNLINKED = "already unlinked"
GONE_UPSTREAM = "no longer in Actionstep: refresh the linked lists"
NOT_APPLIED = "not applied to the invoice any more ({status} in Actionstep)"
ALREADY_DRAFT = "already a draft in Actionstep"
ALREADY_DELETED = "already deleted in Actionstep"
STILL_APPLIED = (
    "payments are still applied to it: choose to delete or reverse them to revert or delete it"
)
UNKNOWN_LINKED_PAYMENTS = (
    "Actionstep counts {linked} on it but the linked lists show {known}: refresh them and plan "
    "again"
)
STALE_LINKED_PAYMENT = (
    "{payment} was linked when last seen but is no longer in Actionstep: refresh the linked "
    "lists and plan again"
)
INVOICE_STAYS_LINKED = "the invoice stays linked ({reason})"
XERO_GONE = "already {status} in Xero"
XERO_NOT_FOUND = "not found in Xero"
NO_XERO_ID = "its Xero id is not known"
BATCH_PAYMENT = "part of a Xero batch payment: remove it in Xero by hand"
BATCH_PAYMENT_SHARED = (
    "part of a Xero batch payment that also pays {others}: deleting the batch would un-pay "
    "them too, so remove it in Xero by hand"
)
LOCKED = "blocked by Xero's {lock} lock date {date}: the firm's adviser must move it first"
LOCKED_PREFIX = LOCKED.split("{", 1)[0]
ALLOCATED = (
    "{credits} allocated to it in Xero: choose \u201cremove allocations first\u201d, or remove "
    "{them} in Xero"
)
ALLOCATED_BY_HAND = "{credits} allocated to it in Xero: remove {them} in Xero first"
UNKNOWN_CREDITS = (
    "{amount} of credit notes, prepayments or overpayments is allocated to it in Xero: refresh "
    "from Xero to see which, or remove them in Xero"
)
ALLOCATION_LEFT = "{credit} stays allocated ({reason})"
FREES_NUMBER = (
    "renamed {new} in the call that {verb} it: {old} is free for the invoice approved again "
    "in Actionstep"
)
PAYMENT_LEFT_IN_XERO = "{payment} stays in Xero ({reason}); void the invoice once it is removed"
CLEANUP_NOT_CHOSEN = "Xero clean-up not chosen"
BUSY = "in batch {batch}, still running"

XERO_GONE_STATUSES = {XeroStatus.VOIDED, XeroStatus.DELETED, XeroStatus.MISSING}
# Xero deletes a DRAFT or SUBMITTED invoice and voids an approved one. An invoice not checked in
# Xero yet came from an approved Actionstep invoice: AUTHORISED (or PAID), so it is voided.
XERO_DELETED_INVOICE_STATUSES = {XeroStatus.DRAFT, XeroStatus.SUBMITTED, XeroStatus.DELETED}
PAYMENT_NOT_APPLIED_STATUSES = {
    actionstep_resources.PAYMENT_REVERSED,
    actionstep_resources.PAYMENT_DELETED,
}

Record = LinkedInvoice | LinkedPayment


def record_key(record: Record) -> str:
    """How a record is named in the rule "one writer per record" (targets.py): a mirror row."""
    kind = "payment" if isinstance(record, LinkedPayment) else "invoice"
    return f"{kind}:{record.pk}"


def xero_invoice_key(xero_invoice_id: str) -> str:
    """A Xero invoice that is not the copy its Actionstep invoice links to (a duplicate)."""
    return f"xero-invoice:{xero_invoice_id.lower()}"


@dataclass
class PlannedStep:
    position: int
    kind: StepKind
    invoice: LinkedInvoice | None
    payment: LinkedPayment | None
    target_label: str
    depends_on: tuple[int, ...] = ()
    added_automatically: bool = False
    skip_reason: str = ""
    xero_id: str = ""  # the Xero record it acts on, when it acts in Xero
    record_key: str = ""  # the record it writes (record_key, xero_invoice_key, credit_key)
    busy_batch: int | None = None  # skipped because this unfinished batch holds the record
    # What else the person should know of this step: what is allocated to the invoice, the
    # number it frees, the other invoices of a batch payment.
    details: tuple[str, ...] = ()
    amount: Decimal | None = None  # what it moves, when not its target's amount (allocations)

    @property
    def skipped(self) -> bool:
        return bool(self.skip_reason)

    @property
    def locked(self) -> bool:
        """Skipped because Xero's lock dates keep its record (see LOCKED)."""
        return self.skip_reason.startswith(LOCKED_PREFIX)

    @property
    def target(self) -> Record:
        return self.payment if self.payment is not None else self.invoice

    @property
    def currency(self) -> str:
        return self.target.currency_code

    @property
    def moved(self) -> Decimal:
        return self.amount if self.amount is not None else _amount(self.target)


@dataclass
class PlanGroup:
    """The steps of one selected invoice (with its payments' steps), or of one payment selected
    without its invoice."""

    invoice: LinkedInvoice | None
    payment: LinkedPayment | None = None
    steps: list[PlannedStep] = field(default_factory=list)


@dataclass(frozen=True)
class XeroLeftover:
    """A Xero record the plan leaves in place, and why."""

    record: Record
    label: str
    reason: str

    @property
    def amount(self) -> Decimal:
        return _amount(self.record)

    @property
    def currency(self) -> str:
        return self.record.currency_code


@dataclass(frozen=True)
class KindCount:
    kind: StepKind
    planned: int
    skipped: int

    @property
    def label(self) -> str:
        return self.kind.label


XERO_KINDS = (
    StepKind.XERO_DELETE_PAYMENT,
    StepKind.XERO_DELETE_ALLOCATION,
    StepKind.XERO_VOID_INVOICE,
    StepKind.XERO_DELETE_INVOICE,
)
# What Xero refuses for a document dated in a locked period.
LOCKABLE_KINDS = XERO_KINDS


@dataclass(frozen=True)
class XeroContext:
    """What a plan knows of the connection's Xero organisation besides its records: the lock
    dates as last read, whether each change adds a history note, and the suffix a freed
    number takes (selectors.xero_context builds it from the connection and the settings)."""

    locks: XeroLocks = field(default_factory=XeroLocks)
    locks_read_at: datetime | None = None
    history_notes: bool = True
    void_suffix: str = "-VOID"
    calls_per_day: int = 5000

    def lock_reason(self, document_date: date | None) -> str:
        """Why a change of a document of that date is refused (empty: it is not)."""
        return lock_reason(self.locks, document_date)


def lock_reason(locks: XeroLocks, document_date: date | None) -> str:
    """The skip reason, or the refusal, for a Xero change of a document dated in a locked
    period: the plan and the step at run time say the same."""
    found = locks.lock_for(document_date)
    if found is None:
        return ""
    kind, locked_until = found
    return LOCKED.format(lock=kind.replace(" ", "-"), date=format_date(locked_until))


def freed_number(number: str, suffix: str) -> str:
    """The number a voided copy takes so that its own is free again."""
    return number if number.endswith(suffix) else f"{number}{suffix}"


CREDIT_NAMES = {
    "CREDITNOTE": "credit note",
    "PREPAYMENT": "prepayment",
    "OVERPAYMENT": "overpayment",
}


@dataclass(frozen=True)
class XeroCredit:
    """A credit note, prepayment or overpayment allocated to a Xero invoice, as the mirror
    last read it (LinkedInvoice.xero_credits): one per document, its allocations summed."""

    kind: str
    document_id: str
    number: str
    amount: Decimal
    allocated_on: date | None  # the earliest of its allocations' dates

    @property
    def label(self) -> str:
        number = f" {self.number}" if self.number else ""
        return f"{CREDIT_NAMES.get(self.kind, self.kind.lower())}{number} of {self.amount:,.2f}"

    @property
    def record_key(self) -> str:
        """The record its allocation step writes: the credit note, prepayment or overpayment."""
        return credit_key(self.kind, self.document_id)


def credit_key(kind: str, document_id: str) -> str:
    return f"xero-{kind.lower()}:{document_id.lower()}"


def credit_of_key(key: str) -> tuple[str, str]:
    """(kind, document id) of an allocation step's record key (credit_key)."""
    prefix, _, document_id = key.partition(":")
    return prefix.removeprefix("xero-").upper(), document_id


def credits_of(record) -> list[XeroCredit]:
    merged: dict[tuple[str, str], XeroCredit] = {}
    for item in getattr(record, "xero_credits", None) or ():
        kind, document_id = item.get("kind") or "", (item.get("document_id") or "").lower()
        if not document_id:
            continue
        day = date.fromisoformat(item["date"]) if item.get("date") else None
        amount = Decimal(str(item.get("amount") or 0))
        earlier = merged.get((kind, document_id))
        if earlier is not None:
            amount += earlier.amount
            day = min((d for d in (day, earlier.allocated_on) if d), default=None)
        merged[(kind, document_id)] = XeroCredit(
            kind, document_id, item.get("number") or "", amount, day
        )
    return list(merged.values())


@dataclass(frozen=True)
class XeroCalls:
    """The plan's estimate of its calls to Xero: `least` when the voids go 50 to a call, `most`
    when each goes alone (they are grouped as they become ready); `notes` of them add history
    notes. Reads before acting included."""

    least: int
    most: int
    notes: int


# The kinds of step that remove a record for good, as the plan's warning names them.
DESTRUCTIVE = {
    StepKind.DELETE_PAYMENT: ("payment", "deleted in Actionstep"),
    StepKind.DELETE_INVOICE: ("invoice", "deleted in Actionstep"),
    StepKind.XERO_DELETE_PAYMENT: ("payment", "deleted in Xero"),
    StepKind.XERO_DELETE_ALLOCATION: ("allocation", "removed in Xero"),
    StepKind.XERO_VOID_INVOICE: ("invoice", "voided in Xero"),
    StepKind.XERO_DELETE_INVOICE: ("invoice", "deleted in Xero"),
}


@dataclass(frozen=True)
class XeroChange:
    kind: StepKind
    steps: list[PlannedStep]
    total: Decimal

    @property
    def label(self) -> str:
        return self.kind.label


@dataclass
class Plan:
    options: PlanOptions
    steps: list[PlannedStep] = field(default_factory=list)
    groups: list[PlanGroup] = field(default_factory=list)
    stays_in_xero: list[XeroLeftover] = field(default_factory=list)
    selected_invoices: int = 0
    selected_payments: int = 0
    xero: XeroContext = field(default_factory=XeroContext)

    def locked_count(self) -> int:
        """Xero changes skipped because of a lock date."""
        return sum(step.locked for step in self.steps)

    def xero_calls(self) -> XeroCalls:
        """How many calls to Xero the plan's runnable steps make (see XeroCalls). Each step
        first reads the organisation's lock dates and the record; a void or delete of invoices
        reads and writes up to 50 invoices a call (and with free_numbers reads whether the new
        numbers are free); every change adds a history note when the connection says so."""
        counts = Counter(step.kind for step in self.steps if not step.skipped)
        notes_each = 1 if self.xero.history_notes else 0
        single = counts[StepKind.XERO_DELETE_PAYMENT] + counts[StepKind.XERO_DELETE_ALLOCATION]
        invoices = counts[StepKind.XERO_VOID_INVOICE] + counts[StepKind.XERO_DELETE_INVOICE]
        per_group = 3 + (
            1 if self.options.free_numbers else 0
        )  # organisation, read, (names), write
        notes = (single + invoices) * notes_each
        singles = single * 3 + notes
        return XeroCalls(
            least=singles + math.ceil(invoices / XERO_INVOICES_PER_CALL) * per_group,
            most=singles + invoices * per_group,
            notes=notes,
        )

    @property
    def runnable_count(self) -> int:
        return sum(not step.skipped for step in self.steps)

    @property
    def skipped_count(self) -> int:
        return len(self.steps) - self.runnable_count

    def counts(self) -> list[KindCount]:
        """Planned and skipped steps per kind, in the order the kinds run."""
        planned = Counter(step.kind for step in self.steps if not step.skipped)
        skipped = Counter(step.kind for step in self.steps if step.skipped)
        return [
            KindCount(kind, planned[kind], skipped[kind])
            for kind in StepKind
            if planned[kind] or skipped[kind]
        ]

    def xero_changes(self) -> list["XeroChange"]:
        """What the plan deletes or voids in Xero, per kind of change, with totals."""
        changes = []
        for kind in XERO_KINDS:
            steps = [step for step in self.steps if step.kind == kind and not step.skipped]
            if steps:
                total = sum((step.moved for step in steps), Decimal(0))
                changes.append(XeroChange(kind, steps, total))
        return changes

    def summary(self) -> str:
        selected = []
        if self.selected_invoices:
            selected.append(plural(self.selected_invoices, "invoice"))
        if self.selected_payments:
            selected.append(plural(self.selected_payments, "payment"))
        parts = [", ".join(selected) or "nothing selected", plural(self.runnable_count, "step")]
        if self.options.remove_payments != PaymentRemoval.NONE:
            parts.append(f"{self.options.remove_payments} payments")
        if self.options.after != InvoiceAfter.NONE:
            parts.append(f"{self.options.after} invoices")
        if self.options.xero_cleanup:
            parts.append("Xero clean-up")
        if self.options.remove_allocations:
            parts.append("allocations removed first")
        if self.options.free_numbers:
            parts.append("numbers freed")
        return " · ".join(parts)

    def digest(self) -> str:
        """Fingerprint of what would be queued: the confirm form carries it, so that a plan that
        changed since the user read it (a sync ran, another batch went first) is not queued."""
        h = hashlib.sha256(repr(self.options.to_dict()).encode())
        h.update(f"notes:{self.xero.history_notes}:{self.xero.void_suffix}\n".encode())
        for step in self.steps:
            h.update(f"{step.kind}:{step.record_key}:{step.xero_id}:{step.skip_reason}\n".encode())
        return h.hexdigest()[:32]

    def destructive_counts(self) -> list[str]:
        """What the plan removes for good, for the warning beside the button ("3 invoices
        voided in Xero"), for each kind of step that deletes or voids, in the order they run."""
        counts = Counter(step.kind for step in self.steps if not step.skipped)
        return [
            f"{plural(counts[kind], noun)} {done}"
            for kind, (noun, done) in DESTRUCTIVE.items()
            if counts[kind]
        ]

    def record_keys(self) -> set[str]:
        """The records the plan's runnable steps write."""
        return {step.record_key for step in self.steps if not step.skipped}


def plan_unlink(
    invoices: Iterable[LinkedInvoice],
    payments: Iterable[LinkedPayment],
    options: PlanOptions,
    *,
    invoice_payments: Iterable[LinkedPayment] = (),
    busy: Mapping[str, int] | None = None,
    xero: XeroContext | None = None,
) -> Plan:
    """The ordered steps for the selected `invoices` and `payments` of one connection.

    `invoice_payments` are all the payments (linked or not) of the selected invoices: the plan
    adds the steps their invoices need. Records are planned in the order given; a payment whose
    invoice is selected too is planned with its invoice. `xero`: the organisation's lock dates
    and the connection's history notes (none known, notes on, when not given).
    """
    invoices = _unique(invoices)
    payments = _unique(payments)
    selected_invoice_ids = {invoice.pk for invoice in invoices}
    payments_of: dict[int, list[LinkedPayment]] = defaultdict(list)
    for payment in _unique([*invoice_payments, *payments]):
        if payment.invoice_id in selected_invoice_ids:
            payments_of[payment.invoice_id].append(payment)

    builder = _Builder(
        Plan(
            options=options,
            selected_invoices=len(invoices),
            selected_payments=len(payments),
            xero=xero or XeroContext(),
        ),
        selected_payment_ids={payment.pk for payment in payments},
        busy=busy or {},
    )
    for invoice in invoices:
        builder.invoice_group(invoice, payments_of[invoice.pk])
    for payment in payments:
        if payment.invoice_id not in selected_invoice_ids:
            builder.payment_group(payment)
    return builder.finish()


# Why a duplicate's step is skipped. Shown to the user as is.
PAYMENT_STILL_LINKED = "still linked in Actionstep: unlink it first"
UNKNOWN_XERO_PAYMENTS = (
    "{payments} on it in Xero {are} not in the linked lists: delete {them} in Xero by hand"
)


@dataclass(frozen=True)
class XeroDuplicate:
    """A live Xero invoice with the number of an Actionstep invoice whose link points at another
    copy: left behind when the invoice was unlinked and approved again. As the reconciliation
    last read it."""

    invoice: LinkedInvoice  # the Actionstep invoice it duplicates
    xero_invoice_id: str
    status: str
    total: Decimal
    payment_ids: tuple[str, ...] = ()  # its payments still live in Xero
    xero_date: date | None = None  # its date in Xero, which the lock dates are compared with
    credits: tuple[dict, ...] = ()  # what is allocated to it (as LinkedInvoice.xero_credits)

    @property
    def label(self) -> str:
        contact = f" ({self.invoice.contact_name})" if self.invoice.contact_name else ""
        money = format_money(self.total, self.invoice.currency_code)
        return f"Duplicate {self.invoice.invoice_number} in Xero{contact}, {money}"

    def as_target(self) -> LinkedInvoice:
        """The invoice's row as the target of this copy's steps, carrying the copy's Xero id,
        status and total: a step takes its Xero id from its target (services.create_batch),
        and belongs to the Actionstep invoice the copy duplicates."""
        target = copy.copy(self.invoice)
        target.xero_invoice_id = self.xero_invoice_id
        target.xero_status = self.status
        target.xero_total = self.total
        target.xero_date = self.xero_date
        target.xero_credits = list(self.credits)
        return target


def plan_xero_cleanup(
    duplicates: Iterable[XeroDuplicate],
    payments: Iterable[LinkedPayment] = (),
    *,
    plan: Plan | None = None,
    busy: Mapping[str, int] | None = None,
    xero: XeroContext | None = None,
) -> Plan:
    """The steps that remove `duplicates` from Xero: each payment on a duplicate is deleted
    first (the linked lists must know it: `payments` are looked up by their Xero id), then the
    duplicate is deleted when DRAFT or SUBMITTED, voided otherwise, and never while a payment
    stays on it. A payment still linked in Actionstep, or part of a batch payment, is left to a
    person, and so is then its duplicate.

    The steps are appended to `plan` when one is given (plan_unlink's clean-up of orphans, so
    that one batch does both), else to a new plan with the Xero clean-up chosen.
    """
    if plan is None:
        plan = Plan(options=PlanOptions(xero_cleanup=True), xero=xero or XeroContext())
    if not plan.options.xero_cleanup:
        raise InvalidOptions("a plan that deletes or voids in Xero needs xero_cleanup")
    duplicates = list(duplicates)
    by_xero_id = {p.xero_payment_id.lower(): p for p in payments if p.xero_payment_id}
    plan.selected_invoices += len(duplicates)
    builder = _Builder(plan, selected_payment_ids=set(), busy=busy or {})
    for duplicate in duplicates:
        builder.duplicate_group(duplicate, by_xero_id)
    return builder.finish()


@dataclass(frozen=True)
class _Handoff:
    """Where a step leaves the steps that must come after it: after `position` (it will run),
    free to go (its work is already done upstream), or skipped because `blocked`."""

    position: int | None = None
    blocked: str = ""


_FREE = _Handoff()


class _Builder:
    def __init__(self, plan: Plan, selected_payment_ids: set[int], busy: Mapping[str, int]):
        self.plan = plan
        self.options = plan.options
        self.selected_payment_ids = selected_payment_ids
        self.busy = busy
        # records the plan covers, and those a runnable Xero step deletes or voids
        self.covered: list[Record] = []
        self.xero_removed: set[tuple[type, int]] = set()
        self.xero_skip_reason: dict[tuple[type, int], str] = {}

    def finish(self) -> Plan:
        for record in self.covered:
            key = (type(record), record.pk)
            if not _live_in_xero(record) or key in self.xero_removed:
                continue
            reason = self.xero_skip_reason.get(key, CLEANUP_NOT_CHOSEN)
            self.plan.stays_in_xero.append(XeroLeftover(record, _label(record), reason))
        return self.plan

    # --- groups ---------------------------------------------------------------------------

    def invoice_group(self, invoice: LinkedInvoice, payments: Sequence[LinkedPayment]):
        group = PlanGroup(invoice=invoice)
        self.plan.groups.append(group)
        self.covered += [invoice, *payments]

        payment_unlinks = {p.pk: self.unlink_payment(group, p) for p in payments}
        invoice_unlink = self.unlink_invoice(group, invoice, payments, payment_unlinks)

        removals = []
        if self.options.remove_payments != PaymentRemoval.NONE:
            removals = [self.remove_payment(group, p, payment_unlinks[p.pk]) for p in payments]
        if self.options.after != InvoiceAfter.NONE:
            self.invoice_after(group, invoice, payments, invoice_unlink, removals)

        if self.options.xero_cleanup:
            xero_deletes = {
                p.pk: self.xero_delete_payment(group, p, payment_unlinks[p.pk]) for p in payments
            }
            self.xero_remove_invoice(group, invoice, payments, invoice_unlink, xero_deletes)

    def payment_group(self, payment: LinkedPayment):
        group = PlanGroup(invoice=None, payment=payment)
        self.plan.groups.append(group)
        self.covered.append(payment)

        unlink = self.unlink_payment(group, payment)
        if self.options.remove_payments != PaymentRemoval.NONE:
            self.remove_payment(group, payment, unlink)
        if self.options.xero_cleanup:
            self.xero_delete_payment(group, payment, unlink)

    def duplicate_group(self, duplicate: XeroDuplicate, payments: dict[str, LinkedPayment]):
        target = duplicate.as_target()
        group = PlanGroup(invoice=target)
        self.plan.groups.append(group)
        known = [payments[i.lower()] for i in duplicate.payment_ids if i.lower() in payments]
        self.covered += known

        deletes = [self.xero_delete_duplicate_payment(group, p) for p in known]
        deleted = target.xero_status in XERO_DELETED_INVOICE_STATUSES
        kind = StepKind.XERO_DELETE_INVOICE if deleted else StepKind.XERO_VOID_INVOICE
        reason = _gone_from_xero_reason(target) or self.locked(target)
        if not reason and len(known) < len(duplicate.payment_ids):
            unknown = len(duplicate.payment_ids) - len(known)
            reason = UNKNOWN_XERO_PAYMENTS.format(
                payments=plural(unknown, "payment"),
                are="is" if unknown == 1 else "are",
                them="it" if unknown == 1 else "them",
            )
        if not reason:
            reason = next((o.blocked for o in deletes if o.blocked), "")
        if not reason:
            # A duplicate's allocations are left to a person: the option is the unlink plan's.
            reason = _allocated_reason(target, credits_of(target), offer_option=False)
        # Not marked xero_removes: that bookkeeping knows records by primary key, and the
        # target's is its invoice's, which the orphan's own copy or another duplicate may share.
        self.add(
            group,
            kind,
            target,
            reason=reason,
            after=deletes,
            key=xero_invoice_key(duplicate.xero_invoice_id),
        )
        group.steps[-1].target_label = duplicate.label
        reason = group.steps[-1].skip_reason
        if reason and _live_in_xero(target):
            self.plan.stays_in_xero.append(XeroLeftover(target, duplicate.label, reason))

    def xero_delete_duplicate_payment(self, group: PlanGroup, payment: LinkedPayment) -> _Handoff:
        """Nothing is unlinked for a duplicate: a payment whose link is live stays."""
        if payment.link_status == LinkStatus.LINKED and not _gone_from_xero_reason(payment):
            left = PAYMENT_LEFT_IN_XERO.format(payment=_label(payment), reason=PAYMENT_STILL_LINKED)
            return self.add(
                group,
                StepKind.XERO_DELETE_PAYMENT,
                payment,
                reason=PAYMENT_STILL_LINKED,
                outcome=_Handoff(blocked=left),
                xero_removes=True,
            )
        return self.xero_delete_payment(group, payment, _FREE)

    # --- steps ----------------------------------------------------------------------------

    def unlink_payment(self, group: PlanGroup, payment: LinkedPayment) -> _Handoff:
        reason, outcome = _unlink_state(payment)
        if reason and self.is_automatic(payment):
            # An invoice's payments are added only when still linked (a vanished one that was
            # linked holds its invoice back instead: see _linked_payments_reason).
            return outcome
        return self.add(group, StepKind.UNLINK_PAYMENT, payment, reason=reason, outcome=outcome)

    def unlink_invoice(
        self,
        group: PlanGroup,
        invoice: LinkedInvoice,
        payments: Sequence[LinkedPayment],
        payment_unlinks: dict[int, _Handoff],
    ) -> _Handoff:
        reason, outcome = _unlink_state(invoice)
        if not reason:
            reason = _linked_payments_reason(invoice, payments)
            outcome = _Handoff(blocked=reason) if reason else outcome
        return self.add(
            group,
            StepKind.UNLINK_INVOICE,
            invoice,
            reason=reason,
            outcome=outcome,
            after=payment_unlinks.values(),
        )

    def remove_payment(self, group: PlanGroup, payment: LinkedPayment, unlink: _Handoff):
        kind = (
            StepKind.DELETE_PAYMENT
            if self.options.remove_payments == PaymentRemoval.DELETE
            else StepKind.REVERSE_PAYMENT
        )
        # (A vanished payment, the one kind whose unlink is blocked, is not applied either.)
        reason = _not_applied_reason(payment)
        if reason and self.is_automatic(payment):
            return _FREE
        return self.add(group, kind, payment, reason=reason, after=[unlink])

    def invoice_after(
        self,
        group: PlanGroup,
        invoice: LinkedInvoice,
        payments: Sequence[LinkedPayment],
        unlink: _Handoff,
        removals: list[_Handoff],
    ):
        revert = self.options.after == InvoiceAfter.REVERT
        kind = StepKind.REVERT_INVOICE if revert else StepKind.DELETE_INVOICE
        if invoice.vanished_at:
            reason = GONE_UPSTREAM
        elif invoice.actionstep_status == actionstep_resources.BILL_DELETED:
            reason = ALREADY_DELETED
        elif revert and invoice.actionstep_status == actionstep_resources.BILL_DRAFT:
            reason = ALREADY_DRAFT
        elif unlink.blocked:
            reason = INVOICE_STAYS_LINKED.format(reason=unlink.blocked)
        elif self.options.remove_payments == PaymentRemoval.NONE and any(
            not _not_applied_reason(p) for p in payments
        ):
            reason = STILL_APPLIED
        else:
            reason = ""
        self.add(group, kind, invoice, reason=reason, after=[unlink, *removals])

    def xero_delete_payment(
        self, group: PlanGroup, payment: LinkedPayment, unlink: _Handoff
    ) -> _Handoff:
        gone = _gone_from_xero_reason(payment)
        if gone:
            if self.is_automatic(payment):
                return _FREE
            return self.add(group, StepKind.XERO_DELETE_PAYMENT, payment, reason=gone)
        if payment.vanished_at:
            reason = GONE_UPSTREAM
        elif not payment.xero_payment_id:
            reason = NO_XERO_ID
        elif payment.is_batch_payment:
            reason = _batch_payment_reason(payment)
        else:
            reason = self.locked(payment)
        # A payment left in Xero keeps its invoice from being voided, so even an added one is
        # shown: someone has to remove it by hand.
        left = PAYMENT_LEFT_IN_XERO.format(payment=_label(payment), reason=reason)
        return self.add(
            group,
            StepKind.XERO_DELETE_PAYMENT,
            payment,
            reason=reason,
            outcome=_Handoff(blocked=left),
            after=[unlink],
            xero_removes=True,
        )

    def xero_remove_invoice(
        self,
        group: PlanGroup,
        invoice: LinkedInvoice,
        payments: Sequence[LinkedPayment],
        unlink: _Handoff,
        xero_deletes: dict[int, _Handoff],
    ):
        deleted = invoice.xero_status in XERO_DELETED_INVOICE_STATUSES
        kind = StepKind.XERO_DELETE_INVOICE if deleted else StepKind.XERO_VOID_INVOICE
        reason = _gone_from_xero_reason(invoice)
        if not reason:
            if invoice.vanished_at:
                reason = GONE_UPSTREAM
            elif not invoice.xero_invoice_id:
                reason = NO_XERO_ID
            else:
                reason = self.locked(invoice)
        live = not reason  # still there to void or delete, and not locked
        if not reason and unlink.blocked:
            reason = INVOICE_STAYS_LINKED.format(reason=unlink.blocked)
        if not reason:
            reason = next((o.blocked for o in xero_deletes.values() if o.blocked), "")
        credits = credits_of(invoice) if live else []
        removals = []
        if not reason and self.options.remove_allocations:
            # All or none: removing some allocations of an invoice that stays would change
            # Xero for nothing. They follow the payments' deletes for the same reason.
            locked = next((c for c in credits if self.plan.xero.lock_reason(c.allocated_on)), None)
            if locked is not None:
                why = self.plan.xero.lock_reason(locked.allocated_on)
                reason = ALLOCATION_LEFT.format(credit=_first_up(locked.label), reason=why)
            elif unknown := _unknown_credit(invoice, credits):
                reason = UNKNOWN_CREDITS.format(amount=f"{unknown:,.2f}")
            else:
                after = [unlink, *xero_deletes.values()]
                removals = [self.xero_delete_allocation(group, invoice, c, after) for c in credits]
                reason = next((o.blocked for o in removals if o.blocked), "")
        elif not reason:
            reason = _allocated_reason(invoice, credits, offer_option=True)
        details = []
        if credits:
            details.append(f"allocated to it in Xero: {_listed([c.label for c in credits])}")
        if self.options.free_numbers and not reason:
            number = invoice.xero_invoice_number or invoice.invoice_number
            verb = "deletes" if deleted else "voids"
            new = freed_number(number, self.plan.xero.void_suffix)
            details.append(FREES_NUMBER.format(new=new, verb=verb, old=number))
        self.add(
            group,
            kind,
            invoice,
            reason=reason,
            after=[unlink, *xero_deletes.values(), *removals],
            xero_removes=True,
            details=tuple(details),
        )

    def xero_delete_allocation(
        self,
        group: PlanGroup,
        invoice: LinkedInvoice,
        credit: XeroCredit,
        after: Sequence[_Handoff],
    ) -> _Handoff:
        """Remove what one credit note, prepayment or overpayment has allocated to the invoice:
        once the invoice is unlinked and its payments deleted, before it is voided. (Only
        planned when nothing else keeps the invoice: see xero_remove_invoice.)"""
        number = invoice.xero_invoice_number or invoice.invoice_number
        label = f"{_first_up(credit.label)} allocated to {number}"[:255]
        return self.add(
            group,
            StepKind.XERO_DELETE_ALLOCATION,
            invoice,
            outcome=_Handoff(blocked=ALLOCATION_LEFT.format(credit=label, reason="not removed")),
            after=after,
            key=credit.record_key,
            xero_id=credit.document_id,
            label=label,
            amount=credit.amount,
        )

    def locked(self, record: Record) -> str:
        """Why a Xero change of the record is refused for its date (empty: it is not)."""
        return self.plan.xero.lock_reason(_xero_date(record))

    # --- bookkeeping ----------------------------------------------------------------------

    def is_automatic(self, record: Record) -> bool:
        return isinstance(record, LinkedPayment) and record.pk not in self.selected_payment_ids

    def add(
        self,
        group: PlanGroup,
        kind: StepKind,
        record: Record,
        *,
        reason: str = "",
        outcome: _Handoff = _FREE,
        after: Iterable[_Handoff] = (),
        xero_removes: bool = False,
        key: str = "",
        xero_id: str = "",
        label: str = "",
        details: tuple[str, ...] = (),
        amount: Decimal | None = None,
    ) -> _Handoff:
        """Append a step; `outcome` is what its dependents get if it is skipped."""
        is_payment = isinstance(record, LinkedPayment)
        key = key or record_key(record)
        holder = self.busy.get(key)
        if holder is not None and not reason:
            # Another unfinished batch writes this record: this plan leaves it, and what
            # depends on it, alone.
            reason = BUSY.format(batch=holder)
            outcome = _Handoff(blocked=reason)
        else:
            holder = None
        step = PlannedStep(
            position=len(self.plan.steps),
            kind=kind,
            invoice=None if is_payment else record,
            payment=record if is_payment else None,
            target_label=label or _label(record),
            # a skipped step depends on nothing: its dependencies never block anything
            depends_on=() if reason else tuple(o.position for o in after if o.position is not None),
            added_automatically=self.is_automatic(record),
            skip_reason=reason,
            xero_id=xero_id or _xero_id(kind, record),
            record_key=key,
            busy_batch=holder,
            details=details,
            amount=amount,
        )
        self.plan.steps.append(step)
        group.steps.append(step)
        if xero_removes:
            key = (type(record), record.pk)
            if reason:
                self.xero_skip_reason[key] = reason
            else:
                self.xero_removed.add(key)
        return outcome if reason else _Handoff(position=step.position)


def _unlink_state(record: Record) -> tuple[str, _Handoff]:
    """Why the record's unlink is skipped (empty: it runs), and where a skip leaves the steps that
    must follow the unlink: free when already unlinked, blocked when the link may still be live."""
    if record.vanished_at:
        return GONE_UPSTREAM, _Handoff(blocked=GONE_UPSTREAM)
    if record.link_status == LinkStatus.UNLINKED:
        return ALREADY_UNLINKED, _FREE
    return "", _FREE


def _linked_payments_reason(invoice: LinkedInvoice, payments: Sequence[LinkedPayment]) -> str:
    """Why the invoice must not be unlinked even after its payments' unlink steps (empty: it may
    be). The mirror is then behind Actionstep: unlinking would be refused upstream, or worse,
    succeed on an invoice whose payments were never unlinked."""
    linked = [p for p in payments if p.link_status == LinkStatus.LINKED]
    stale = next((p for p in linked if p.vanished_at), None)
    if stale:
        return STALE_LINKED_PAYMENT.format(payment=_label(stale))
    if invoice.linked_payment_count > len(linked):
        return UNKNOWN_LINKED_PAYMENTS.format(
            linked=plural(invoice.linked_payment_count, "linked payment"), known=len(linked)
        )
    return ""


def _not_applied_reason(payment: LinkedPayment) -> str:
    """Why there is nothing to remove from the invoice (empty: the payment is applied)."""
    if payment.vanished_at:
        return GONE_UPSTREAM
    if payment.actionstep_status in PAYMENT_NOT_APPLIED_STATUSES:
        return NOT_APPLIED.format(status=payment.actionstep_status.lower())
    return ""


def _gone_from_xero_reason(record: Record) -> str:
    if record.xero_status == XeroStatus.MISSING:
        return XERO_NOT_FOUND
    if record.xero_status in XERO_GONE_STATUSES:
        return XERO_GONE.format(status=record.xero_status.lower())
    return ""


def _xero_date(record: Record) -> date | None:
    """The record's date as Xero compares it with its lock dates: Xero's own when read, else
    Actionstep's (which the integration copied to Xero)."""
    if record.xero_date:
        return record.xero_date
    return record.payment_date if isinstance(record, LinkedPayment) else record.invoice_date


def _first_up(text: str) -> str:
    return text[:1].upper() + text[1:]


def _listed(labels: Sequence[str], shown: int = 5) -> str:
    labels = list(labels)
    if len(labels) > shown:
        labels = [*labels[:shown], f"{len(labels) - shown} more"]
    return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} and {labels[-1]}"


def _unknown_credit(invoice: LinkedInvoice, credits: Sequence[XeroCredit]) -> Decimal:
    """What Xero credits the invoice beyond the allocations the mirror knows of."""
    credited = getattr(invoice, "xero_amount_credited", None) or Decimal(0)
    return max(Decimal(0), credited - sum((c.amount for c in credits), Decimal(0)))


def _allocated_reason(
    invoice: LinkedInvoice, credits: Sequence[XeroCredit], *, offer_option: bool
) -> str:
    """Why the invoice is not voided while credits are allocated to it (empty: none are)."""
    if credits:
        verb = "is" if len(credits) == 1 else "are"
        them = "it" if len(credits) == 1 else "them"
        listed = f"{_listed([c.label for c in credits])} {verb}"
        if offer_option:
            return ALLOCATED.format(credits=listed, them=them)
        return ALLOCATED_BY_HAND.format(credits=listed, them=them)
    if unknown := _unknown_credit(invoice, credits):
        return UNKNOWN_CREDITS.format(amount=f"{unknown:,.2f}")
    return ""


def _batch_payment_reason(payment: LinkedPayment) -> str:
    others = [
        f"{other.get('number') or 'an invoice'} ({Decimal(str(other.get('amount') or 0)):,.2f})"
        for other in payment.xero_batch_invoices or ()
    ]
    return BATCH_PAYMENT_SHARED.format(others=_listed(others)) if others else BATCH_PAYMENT


def _xero_id(kind: StepKind, record: Record) -> str:
    if kind not in XERO_KINDS:
        return ""
    return record.xero_payment_id if isinstance(record, LinkedPayment) else record.xero_invoice_id


def _live_in_xero(record: Record) -> bool:
    is_payment = isinstance(record, LinkedPayment)
    xero_id = record.xero_payment_id if is_payment else record.xero_invoice_id
    return bool(xero_id) and record.xero_status not in XERO_GONE_STATUSES


def _label(record: Record) -> str:
    if isinstance(record, LinkedPayment):
        name = record.reference or f"#{record.actionstep_id}"
        on = f" on {record.invoice_number}" if record.invoice_number else ""
        return f"Payment {name} of {format_money(record.amount, record.currency)}{on}"[:255]
    number = record.invoice_number or f"bill #{record.actionstep_id}"
    contact = f" ({record.contact_name})" if record.contact_name else ""
    return f"Invoice {number}{contact}, {format_money(record.total, record.currency_code)}"[:255]


def _amount(record: Record) -> Decimal:
    if isinstance(record, LinkedPayment):
        return record.amount
    return record.xero_total if record.xero_total is not None else record.total


def _unique(records: Iterable[Record]) -> list:
    seen = set()
    unique = []
    for record in records:
        if record.pk not in seen:
            seen.add(record.pk)
            unique.append(record)
    return unique
