"""What the API clients return: frozen records parsed from Actionstep's and Xero's JSON.

Money is Decimal throughout (the clients decode JSON with parse_float=Decimal); timestamps are
aware datetimes, calendar dates are dates.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Generic, TypeVar

from django.utils import timezone as django_timezone

from . import actionstep_resources

ZERO = Decimal("0.00")


def money(value: Any) -> Decimal:
    """A Decimal from a JSON number (already Decimal or int) or a numeric string (Xero writes
    some amounts as strings); a missing amount counts as zero."""
    if value is None or value == "":
        return ZERO
    return value if isinstance(value, Decimal) else Decimal(str(value))


def timestamp(value: str | None) -> datetime | None:
    """An Actionstep timestamp such as 2025-03-01T14:23:48+11:00. One without an offset is read
    in the project's time zone, which is the firm's."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else django_timezone.make_aware(parsed)


def calendar_date(value: str | None) -> date | None:
    """An Actionstep date (2025-03-01); a timestamp in its place keeps its own calendar day."""
    if not value:
        return None
    return datetime.fromisoformat(value).date() if len(value) > 10 else date.fromisoformat(value)


_XERO_DATE = re.compile(r"/Date\((-?\d+)(?:([+-])(\d{2})(\d{2}))?\)/")


def xero_datetime(value: str | None) -> datetime | None:
    """Xero's /Date(1541176290160+0000)/: milliseconds since the epoch (UTC), then the offset
    of the zone the value belongs to, which is not always +0000."""
    if not value:
        return None
    match = _XERO_DATE.fullmatch(value)
    if not match:
        # Some Xero fields (and the *String twins) are ISO 8601 without an offset, in UTC.
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    millis, sign, hours, minutes = match.groups()
    offset = timedelta(hours=int(hours or 0), minutes=int(minutes or 0))
    zone = timezone(-offset if sign == "-" else offset)
    return datetime.fromtimestamp(int(millis) / 1000, tz=zone)


def xero_date(value: str | None) -> date | None:
    moment = xero_datetime(value)
    return moment.date() if moment else None


def _id(value: Any) -> int | None:
    """A relation id from `links`: a number, a numeric string, or a list (a bill's `action`)."""
    if isinstance(value, list):
        value = value[0] if value else None
    return int(value) if value not in (None, "") else None


def _links(data: Mapping) -> Mapping:
    return data.get("links") or {}


# --- Actionstep -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Bill:
    id: int
    status: str
    number: str
    reference: str
    currency: str
    invoice_date: date | None
    due_date: date | None
    total: Decimal
    total_paid: Decimal
    total_due: Decimal
    matter_id: int | None
    contact_id: int | None
    modified_at: datetime | None
    deleted_at: datetime | None

    @classmethod
    def from_json(cls, data: Mapping) -> "Bill":
        links = _links(data)
        return cls(
            id=int(data["id"]),
            status=data.get("status") or "",
            number=data.get("ourReference") or "",
            reference=data.get("theirReference") or "",
            currency=data.get("currency") or "",
            invoice_date=calendar_date(data.get("invoiceDate")),
            due_date=calendar_date(data.get("dueDate")),
            total=money(data.get("totalInclusive")),
            total_paid=money(data.get("totalPaid")),
            total_due=money(data.get("totalDue")),
            matter_id=_id(links.get("action")),
            contact_id=_id(links.get("theirParticipant")),
            modified_at=timestamp(data.get("modifiedTimestamp")),
            deleted_at=timestamp(data.get("deletedTimestamp")),
        )


@dataclass(frozen=True)
class BillPayment:
    id: int
    bill_id: int | None
    status: str
    payment_date: date | None
    amount: Decimal
    reference: str
    modified_at: datetime | None

    @classmethod
    def from_json(cls, data: Mapping) -> "BillPayment":
        return cls(
            id=int(data["id"]),
            bill_id=_id(_links(data).get(actionstep_resources.BILL_RELATION)),
            status=data.get(actionstep_resources.PAYMENT_STATUS_FIELD) or "",
            payment_date=calendar_date(data.get(actionstep_resources.PAYMENT_DATE_FIELD)),
            amount=money(data.get(actionstep_resources.PAYMENT_AMOUNT_FIELD)),
            reference=data.get(actionstep_resources.PAYMENT_REFERENCE_FIELD) or "",
            modified_at=timestamp(data.get("modifiedTimestamp")),
        )


@dataclass(frozen=True)
class InvoiceLink:
    id: int
    bill_id: int | None
    link_status: str
    xero_invoice_id: str
    xero_invoice_number: str
    modified_at: datetime | None

    @classmethod
    def from_json(cls, data: Mapping) -> "InvoiceLink":
        return cls(
            id=int(data["id"]),
            bill_id=_id(_links(data).get(actionstep_resources.BILL_RELATION)),
            link_status=data.get(actionstep_resources.LINK_STATUS_FIELD) or "",
            xero_invoice_id=data.get(actionstep_resources.XERO_INVOICE_ID_FIELD) or "",
            xero_invoice_number=data.get(actionstep_resources.XERO_INVOICE_NUMBER_FIELD) or "",
            modified_at=timestamp(data.get("modifiedTimestamp")),
        )


@dataclass(frozen=True)
class PaymentLink:
    id: int
    bill_payment_id: int | None
    bill_id: int | None
    link_status: str
    xero_payment_id: str
    modified_at: datetime | None

    @classmethod
    def from_json(cls, data: Mapping) -> "PaymentLink":
        links = _links(data)
        return cls(
            id=int(data["id"]),
            bill_payment_id=_id(links.get(actionstep_resources.BILL_PAYMENT_RELATION)),
            bill_id=_id(links.get(actionstep_resources.BILL_RELATION)),
            link_status=data.get(actionstep_resources.LINK_STATUS_FIELD) or "",
            xero_payment_id=data.get(actionstep_resources.XERO_PAYMENT_ID_FIELD) or "",
            modified_at=timestamp(data.get("modifiedTimestamp")),
        )


@dataclass(frozen=True)
class Matter:
    id: int
    name: str

    @classmethod
    def from_json(cls, data: Mapping) -> "Matter":
        return cls(id=int(data["id"]), name=data.get("name") or "")


@dataclass(frozen=True)
class Contact:
    id: int
    name: str

    @classmethod
    def from_json(cls, data: Mapping) -> "Contact":
        return cls(id=int(data["id"]), name=data.get("displayName") or "")


R = TypeVar("R")


@dataclass(frozen=True)
class Page(Generic[R]):
    """One page of an Actionstep listing with its side-loaded records, keyed by id, so that a
    sync can upsert it without further requests. `page` counts the pages fetched so far and
    `page_count` estimates the total (records modified during the listing can add one)."""

    records: tuple[R, ...]
    page: int
    page_count: int
    record_count: int
    bills: dict[int, Bill] = field(default_factory=dict)
    payments: dict[int, BillPayment] = field(default_factory=dict)
    matters: dict[int, Matter] = field(default_factory=dict)
    contacts: dict[int, Contact] = field(default_factory=dict)


# --- Xero -----------------------------------------------------------------------------------


CREDIT_KINDS = ("CREDITNOTE", "PREPAYMENT", "OVERPAYMENT")
# How Xero names each kind on an invoice, in its path and in its id field.
CREDIT_FIELDS = {
    "CREDITNOTE": ("CreditNotes", "CreditNoteID"),
    "PREPAYMENT": ("Prepayments", "PrepaymentID"),
    "OVERPAYMENT": ("Overpayments", "OverpaymentID"),
}


@dataclass(frozen=True)
class XeroAppliedCredit:
    """A credit note, prepayment or overpayment applied to an invoice, as the invoice lists it
    (the invoice does not name the allocation: XeroClient.get_allocations reads it)."""

    kind: str  # CREDITNOTE, PREPAYMENT or OVERPAYMENT
    document_id: str
    number: str  # a credit note's number; "" for the others
    amount: Decimal  # applied to this invoice
    date: date | None

    @classmethod
    def from_json(cls, kind: str, data: Mapping) -> "XeroAppliedCredit":
        return cls(
            kind=kind,
            document_id=data.get(CREDIT_FIELDS[kind][1]) or "",
            number=data.get("CreditNoteNumber") or "",
            amount=money(data.get("AppliedAmount")),
            date=xero_date(data.get("Date")),
        )


@dataclass(frozen=True)
class XeroInvoice:
    invoice_id: str
    number: str
    reference: str
    contact_id: str
    contact_name: str
    date: date | None
    due_date: date | None
    status: str
    total: Decimal
    amount_due: Decimal
    amount_paid: Decimal
    amount_credited: Decimal
    currency: str
    payment_ids: tuple[str, ...]
    updated_at: datetime | None
    # Empty when read with summaryOnly (Xero then leaves them out): see amount_credited.
    credits: tuple[XeroAppliedCredit, ...] = ()
    # The date of each payment of payment_ids (what Xero compares with its lock dates).
    payment_dates: Mapping[str, date | None] = field(default_factory=dict, hash=False)

    @classmethod
    def from_json(cls, data: Mapping) -> "XeroInvoice":
        contact = data.get("Contact") or {}
        return cls(
            invoice_id=data["InvoiceID"],
            number=data.get("InvoiceNumber") or "",
            reference=data.get("Reference") or "",
            contact_id=contact.get("ContactID") or "",
            contact_name=contact.get("Name") or "",
            date=xero_date(data.get("Date")),
            due_date=xero_date(data.get("DueDate")),
            status=data.get("Status") or "",
            total=money(data.get("Total")),
            amount_due=money(data.get("AmountDue")),
            amount_paid=money(data.get("AmountPaid")),
            amount_credited=money(data.get("AmountCredited")),
            currency=data.get("CurrencyCode") or "",
            payment_ids=tuple(p["PaymentID"] for p in data.get("Payments") or ()),
            payment_dates={
                p["PaymentID"]: xero_date(p.get("Date")) for p in data.get("Payments") or ()
            },
            updated_at=xero_datetime(data.get("UpdatedDateUTC")),
            credits=tuple(
                XeroAppliedCredit.from_json(kind, item)
                for kind in CREDIT_KINDS
                for item in data.get(CREDIT_FIELDS[kind][0]) or ()
            ),
        )


@dataclass(frozen=True)
class XeroAllocation:
    """One allocation of a credit note, prepayment or overpayment to an invoice; deleted with
    XeroClient.delete_allocation(kind, document_id, allocation_id)."""

    kind: str
    document_id: str
    allocation_id: str
    invoice_id: str
    amount: Decimal
    date: date | None
    is_deleted: bool = False

    @classmethod
    def from_json(cls, kind: str, document_id: str, data: Mapping) -> "XeroAllocation":
        invoice = data.get("Invoice") or {}
        return cls(
            kind=kind,
            document_id=document_id,
            allocation_id=data.get("AllocationID") or "",
            invoice_id=invoice.get("InvoiceID") or "",
            amount=money(data.get("Amount")),
            date=xero_date(data.get("Date")),
            is_deleted=bool(data.get("IsDeleted")),
        )


@dataclass(frozen=True)
class XeroLocks:
    """An organisation's lock dates (GET /Organisation): Xero refuses to void, delete or remove
    a payment or an allocation from a document dated on or before either of them."""

    period_lock_date: date | None = None
    end_of_year_lock_date: date | None = None

    def lock_for(self, document_date: date | None) -> tuple[str, date] | None:
        """("end of year" or "period", the lock date) when Xero refuses to void, delete or
        remove a payment from a document of that date (on or before a lock date), else None.
        The end-of-year lock is named first: an adviser cannot move past it either."""
        if document_date is None:
            return None
        for kind, locked_until in (
            ("end of year", self.end_of_year_lock_date),
            ("period", self.period_lock_date),
        ):
            if locked_until and document_date <= locked_until:
                return kind, locked_until
        return None

    def __bool__(self) -> bool:
        return bool(self.period_lock_date or self.end_of_year_lock_date)


@dataclass(frozen=True)
class XeroOrganisation:
    """What GET /Organisation says of the tenant that the clean-up depends on."""

    organisation_id: str
    name: str
    base_currency: str
    timezone: str
    country_code: str
    period_lock_date: date | None
    end_of_year_lock_date: date | None

    @classmethod
    def from_json(cls, data: Mapping) -> "XeroOrganisation":
        return cls(
            organisation_id=data.get("OrganisationID") or "",
            name=data.get("Name") or "",
            base_currency=data.get("BaseCurrency") or "",
            timezone=data.get("Timezone") or "",
            country_code=data.get("CountryCode") or "",
            period_lock_date=xero_date(data.get("PeriodLockDate")),
            end_of_year_lock_date=xero_date(data.get("EndOfYearLockDate")),
        )

    @property
    def locks(self) -> XeroLocks:
        return XeroLocks(self.period_lock_date, self.end_of_year_lock_date)

    def lock_for(self, document_date: date | None) -> tuple[str, date] | None:
        return self.locks.lock_for(document_date)


@dataclass(frozen=True)
class XeroHistoryRecord:
    changes: str
    details: str
    user: str
    at: datetime | None

    @classmethod
    def from_json(cls, data: Mapping) -> "XeroHistoryRecord":
        return cls(
            changes=data.get("Changes") or "",
            details=data.get("Details") or "",
            user=data.get("User") or "",
            at=xero_datetime(data.get("DateUTC")),
        )


@dataclass(frozen=True)
class XeroBatchPaymentLine:
    payment_id: str
    invoice_id: str
    invoice_number: str
    amount: Decimal


@dataclass(frozen=True)
class XeroBatchPayment:
    """A batch payment and every invoice it pays: deleting one of its payments alone is
    refused, and deleting the batch un-pays all of them."""

    batch_payment_id: str
    status: str
    date: date | None
    total: Decimal
    payments: tuple[XeroBatchPaymentLine, ...]

    @classmethod
    def from_json(cls, data: Mapping) -> "XeroBatchPayment":
        return cls(
            batch_payment_id=data.get("BatchPaymentID") or "",
            status=data.get("Status") or "",
            date=xero_date(data.get("Date")),
            total=money(data.get("TotalAmount")),
            payments=tuple(
                XeroBatchPaymentLine(
                    payment_id=p.get("PaymentID") or "",
                    invoice_id=(p.get("Invoice") or {}).get("InvoiceID") or "",
                    invoice_number=(p.get("Invoice") or {}).get("InvoiceNumber") or "",
                    amount=money(p.get("Amount")),
                )
                for p in data.get("Payments") or ()
            ),
        )


@dataclass(frozen=True)
class XeroPayment:
    payment_id: str
    invoice_id: str
    amount: Decimal
    date: date | None
    status: str
    batch_payment_id: str
    reference: str
    updated_at: datetime | None
    invoice_number: str = ""

    @classmethod
    def from_json(cls, data: Mapping) -> "XeroPayment":
        batch = data.get("BatchPayment") or {}
        return cls(
            payment_id=data["PaymentID"],
            invoice_id=(data.get("Invoice") or {}).get("InvoiceID") or "",
            invoice_number=(data.get("Invoice") or {}).get("InvoiceNumber") or "",
            amount=money(data.get("Amount")),
            date=xero_date(data.get("Date")),
            status=data.get("Status") or "",
            batch_payment_id=data.get("BatchPaymentID") or batch.get("BatchPaymentID") or "",
            reference=data.get("Reference") or "",
            updated_at=xero_datetime(data.get("UpdatedDateUTC")),
        )


@dataclass(frozen=True)
class XeroTenant:
    tenant_id: str
    name: str
    type: str
    connection_id: str = ""  # what DELETE /connections/{id} removes

    @classmethod
    def from_json(cls, data: Mapping) -> "XeroTenant":
        return cls(
            tenant_id=data["tenantId"],
            name=data.get("tenantName") or "",
            type=data.get("tenantType") or "",
            connection_id=data.get("id") or "",
        )


@dataclass(frozen=True)
class InvoiceChange:
    """One invoice of a bulk update: a new status, a new number, or both (Xero applies both
    in one POST: the number first, so a renamed copy is voided under its new number)."""

    invoice_id: str
    status: str | None = None
    number: str | None = None


@dataclass(frozen=True)
class InvoiceStatusResult:
    """The outcome of one element of a bulk status change: Xero answers 200 for the request
    and reports each element's failure on the element itself."""

    invoice_id: str
    ok: bool
    status: str
    messages: tuple[str, ...]


@dataclass(frozen=True)
class XeroLimits:
    """The allowance left after the latest Xero response (None when a header was absent)."""

    minute_remaining: int | None
    day_remaining: int | None
    app_minute_remaining: int | None
