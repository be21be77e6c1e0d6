"""Xero's Accounting API 2.0: the invoices and payments the clean-up reads and changes, the
organisation's lock dates, allocations, batch payments and history notes; and the identity
API's connections and revocation."""

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests
from django.conf import settings

from .errors import AuthExpired, NotFound, ServerError, Unreachable, ValidationFailed
from .http import ApiClient
from .records import (
    CREDIT_FIELDS,
    InvoiceChange,
    InvoiceStatusResult,
    XeroAllocation,
    XeroBatchPayment,
    XeroHistoryRecord,
    XeroInvoice,
    XeroLimits,
    XeroOrganisation,
    XeroPayment,
    XeroTenant,
)
from .throttle import Throttle
from .tokens import StaticTokenSource, TokenSource

PAGE_SIZE = 100  # Xero's page when `pageSize` is not sent
# Xero's limit of invoices per call, the one name for it: an `IDs=` list (longer ones make URLs
# that Xero answers with a 404) and one POST /Invoices of status changes.
XERO_INVOICES_PER_CALL = 50
MAX_IDEMPOTENCY_KEY = 128

T = TypeVar("T")


def _idempotency(key: str) -> dict[str, str]:
    if not key or len(key) > MAX_IDEMPOTENCY_KEY:
        raise ValueError(f"an Idempotency-Key of 1 to {MAX_IDEMPOTENCY_KEY} characters is required")
    return {"Idempotency-Key": key}


def _validation_messages(element: dict) -> tuple[str, ...]:
    return tuple(
        error["Message"] for error in element.get("ValidationErrors") or () if error.get("Message")
    )


def _failed(element: dict) -> bool:
    return bool(
        element.get("HasErrors")
        or element.get("StatusAttributeString") == "ERROR"
        or _validation_messages(element)
    )


def _answer_for(elements: list[dict], position: int, invoice_id: str) -> dict | None:
    """Xero answers a bulk change in the order sent; an echoed id must still match."""
    if position >= len(elements):
        return None
    echoed = str(elements[position].get("InvoiceID") or invoice_id)
    return elements[position] if echoed.lower() == invoice_id.lower() else None


def _status_result(invoice_id: str, element: dict | None) -> InvoiceStatusResult:
    if element is None:
        return InvoiceStatusResult(invoice_id, False, "", ("missing from Xero's answer",))
    return InvoiceStatusResult(
        invoice_id=invoice_id,
        ok=not _failed(element),
        status=element.get("Status") or "",  # a failed element echoes the status asked for
        messages=_validation_messages(element),
    )


def _invoice_element(change: InvoiceChange) -> dict:
    """Only the id and what changes (never the whole fetched invoice); the number before the
    status, as Xero applies them."""
    element = {"InvoiceID": change.invoice_id}
    if change.number is not None:
        element["InvoiceNumber"] = change.number
    if change.status is not None:
        element["Status"] = change.status
    return element


def _every_page(fetch: Callable[[int], list[T]]) -> Iterator[T]:
    """Pages 1, 2, ... until a short one: Xero's `pagination` block is not always sent."""
    page = 1
    while True:
        items = fetch(page)
        yield from items
        if len(items) < PAGE_SIZE:
            return
        page += 1


def _count(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


class XeroClient(ApiClient):
    api = "xero"

    def __init__(
        self,
        tenant_id: str,
        tokens: TokenSource,
        api_url: str | None = None,
        throttle: Throttle | None = None,
        timeout: float | None = None,
    ):
        super().__init__(tokens, throttle, timeout)
        self.tenant_id = tenant_id
        self.api_url = (api_url or settings.XERO_API_URL).rstrip("/")
        self.last_limits: XeroLimits | None = None
        self.session.headers["Accept"] = "application/json"
        if tenant_id:
            self.session.headers["Xero-tenant-id"] = tenant_id

    # --- invoices ---------------------------------------------------------------------------

    def get_invoices(
        self,
        ids: Sequence[str] | None = None,
        numbers: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        where: str | None = None,
        page: int | None = None,
        modified_since: datetime | None = None,
        summary_only: bool = False,
    ) -> list[XeroInvoice]:
        """One answer of GET /Invoices: a page of up to PAGE_SIZE when `page` is given."""
        if ids and len(ids) > XERO_INVOICES_PER_CALL:
            raise ValueError(
                f"at most {XERO_INVOICES_PER_CALL} ids per call: use get_invoices_by_ids"
            )
        candidates = {
            "IDs": ",".join(ids or ()),
            "InvoiceNumbers": ",".join(numbers or ()),
            "Statuses": ",".join(statuses or ()),
            "where": where,
            "page": page,
            "summaryOnly": "true" if summary_only else None,
        }
        params = {name: value for name, value in candidates.items() if value}
        headers = {}
        if modified_since:
            # UTC with its offset written out, as the description's example has one: a bare
            # time could be read in the organisation's own zone.
            since = modified_since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")
            headers["If-Modified-Since"] = since
        body = self.request("GET", f"{self.api_url}/Invoices", params=params, headers=headers)
        return [XeroInvoice.from_json(data) for data in (body or {}).get("Invoices") or ()]

    def iter_invoices(
        self,
        ids: Sequence[str] | None = None,
        numbers: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        where: str | None = None,
        modified_since: datetime | None = None,
        summary_only: bool = False,
    ) -> Iterator[XeroInvoice]:
        return _every_page(
            lambda page: self.get_invoices(
                ids, numbers, statuses, where, page, modified_since, summary_only
            )
        )

    def get_invoices_by_ids(self, ids: Sequence[str]) -> list[XeroInvoice]:
        """The invoices that exist among `ids` (unknown ids are simply absent)."""
        return [
            invoice
            for start in range(0, len(ids), XERO_INVOICES_PER_CALL)
            for invoice in self.get_invoices(ids=ids[start : start + XERO_INVOICES_PER_CALL])
        ]

    def update_invoice_statuses(
        self, changes: Sequence[tuple[str, str]], idempotency_key: str
    ) -> list[InvoiceStatusResult]:
        """Set the status of up to XERO_INVOICES_PER_CALL invoices in one call. Xero answers 200
        even when some elements failed, so every element's outcome is returned, in the order of
        `changes`."""
        return self.update_invoices(
            [InvoiceChange(invoice_id, status=status) for invoice_id, status in changes],
            idempotency_key,
        )

    def update_invoices(
        self, changes: Sequence[InvoiceChange], idempotency_key: str
    ) -> list[InvoiceStatusResult]:
        """Change the status and/or the number of up to XERO_INVOICES_PER_CALL invoices in one
        POST /Invoices (summarizeErrors=false): each element's outcome, in the order of
        `changes`."""
        if len(changes) > XERO_INVOICES_PER_CALL:
            raise ValueError(f"at most {XERO_INVOICES_PER_CALL} invoices per call")
        body = self.request(
            "POST",
            f"{self.api_url}/Invoices",
            params={"summarizeErrors": "false"},
            body={"Invoices": [_invoice_element(change) for change in changes]},
            headers=_idempotency(idempotency_key),
        )
        elements = (body or {}).get("Invoices") or []
        return [
            _status_result(change.invoice_id, _answer_for(elements, position, change.invoice_id))
            for position, change in enumerate(changes)
        ]

    def update_invoice(
        self,
        invoice_id: str,
        idempotency_key: str,
        *,
        status: str | None = None,
        number: str | None = None,
    ) -> XeroInvoice:
        """One POST /Invoices/{id} with only the id and what changes: a new number frees the
        old one (a voided invoice keeps its number), so `number` and `status="VOIDED"` together
        rename the copy and void it in one call. Refusals raise ValidationFailed."""
        change = InvoiceChange(invoice_id, status=status, number=number)
        body = self.request(
            "POST",
            f"{self.api_url}/Invoices/{invoice_id}",
            body={"Invoices": [_invoice_element(change)]},
            headers=_idempotency(idempotency_key),
        )
        return XeroInvoice.from_json(self._only(body, "Invoices", invoice_id))

    # --- allocations --------------------------------------------------------------------------

    def get_allocations(self, invoice: XeroInvoice | str) -> list[XeroAllocation]:
        """The live allocations of credit notes, prepayments and overpayments to an invoice,
        with the AllocationIDs their deletes need: one read of each document the invoice
        lists (and of the invoice first when only its id is given)."""
        if isinstance(invoice, str):
            found = self.get_invoices(ids=[invoice])
            if not found:
                raise NotFound(f"invoice {invoice} is not in Xero", api=self.api)
            invoice = found[0]
        allocations = []
        for document_id, kind in dict.fromkeys((c.document_id, c.kind) for c in invoice.credits):
            allocations.extend(
                allocation
                for allocation in self.get_credit_allocations(kind, document_id)
                if allocation.invoice_id.lower() == invoice.invoice_id.lower()
                and not allocation.is_deleted
            )
        return allocations

    def get_credit_allocations(self, kind: str, document_id: str) -> list[XeroAllocation]:
        """The allocations of one credit note, prepayment or overpayment."""
        collection, _ = CREDIT_FIELDS[kind]
        body = self.request("GET", f"{self.api_url}/{collection}/{document_id}")
        document = self._only(body, collection, document_id)
        return [
            XeroAllocation.from_json(kind, document_id, item)
            for item in document.get("Allocations") or ()
        ]

    def delete_allocation(
        self, kind: str, document_id: str, allocation_id: str, idempotency_key: str
    ) -> XeroAllocation:
        """DELETE /CreditNotes|Prepayments|Overpayments/{id}/Allocations/{AllocationID}: the
        invoice owes the amount again and can then be voided."""
        collection, _ = CREDIT_FIELDS[kind]
        body = self.request(
            "DELETE",
            f"{self.api_url}/{collection}/{document_id}/Allocations/{allocation_id}",
            headers=_idempotency(idempotency_key),
        )
        return XeroAllocation.from_json(kind, document_id, body or {})

    # --- organisation, batch payments, history ------------------------------------------------

    def get_organisation(self) -> XeroOrganisation:
        """The tenant's organisation: lock dates, time zone, base currency
        (scope accounting.settings.read)."""
        body = self.request("GET", f"{self.api_url}/Organisation")
        return XeroOrganisation.from_json(self._only(body, "Organisations", self.tenant_id))

    def get_batch_payment(self, batch_payment_id: str) -> XeroBatchPayment:
        """A batch payment with every invoice it pays."""
        body = self.request("GET", f"{self.api_url}/BatchPayments/{batch_payment_id}")
        return XeroBatchPayment.from_json(self._only(body, "BatchPayments", batch_payment_id))

    def add_invoice_note(
        self, invoice_id: str, details: str, idempotency_key: str
    ) -> XeroHistoryRecord:
        """A note on the invoice's history in Xero (PUT /Invoices/{id}/History)."""
        return self._add_note("Invoices", invoice_id, details, idempotency_key)

    def add_payment_note(
        self, payment_id: str, details: str, idempotency_key: str
    ) -> XeroHistoryRecord:
        return self._add_note("Payments", payment_id, details, idempotency_key)

    def get_invoice_history(self, invoice_id: str) -> list[XeroHistoryRecord]:
        return self._history("Invoices", invoice_id)

    def get_payment_history(self, payment_id: str) -> list[XeroHistoryRecord]:
        return self._history("Payments", payment_id)

    def _add_note(self, collection, record_id, details, idempotency_key) -> XeroHistoryRecord:
        if not details.strip():
            raise ValueError("a history note needs some text")
        body = self.request(
            "PUT",
            f"{self.api_url}/{collection}/{record_id}/History",
            body={"HistoryRecords": [{"Details": details}]},
            headers=_idempotency(idempotency_key),
        )
        return XeroHistoryRecord.from_json(self._only(body, "HistoryRecords", record_id))

    def _history(self, collection: str, record_id: str) -> list[XeroHistoryRecord]:
        body = self.request("GET", f"{self.api_url}/{collection}/{record_id}/History")
        return [XeroHistoryRecord.from_json(r) for r in (body or {}).get("HistoryRecords") or ()]

    # --- payments ---------------------------------------------------------------------------

    def get_payments(self, where: str | None = None, page: int | None = None) -> list[XeroPayment]:
        params = {name: value for name, value in {"where": where, "page": page}.items() if value}
        body = self.request("GET", f"{self.api_url}/Payments", params=params)
        return [XeroPayment.from_json(data) for data in (body or {}).get("Payments") or ()]

    def iter_payments(self, where: str | None = None) -> Iterator[XeroPayment]:
        return _every_page(lambda page: self.get_payments(where, page))

    def get_payment(self, payment_id: str) -> XeroPayment:
        body = self.request("GET", f"{self.api_url}/Payments/{payment_id}")
        return XeroPayment.from_json(self._only(body, "Payments", payment_id))

    def delete_payment(self, payment_id: str, idempotency_key: str) -> XeroPayment:
        body = self.request(
            "POST",
            f"{self.api_url}/Payments/{payment_id}",
            body={"Status": "DELETED"},
            headers=_idempotency(idempotency_key),
        )
        return XeroPayment.from_json(self._only(body, "Payments", payment_id))

    # --- the organisation -------------------------------------------------------------------

    # --- plumbing ---------------------------------------------------------------------------

    def _only(self, body: Any, collection: str, record_id: str) -> dict:
        elements = (body or {}).get(collection) or []
        if not elements:
            raise NotFound(f"{collection} {record_id} is not in Xero's answer", api=self.api)
        if _failed(elements[0]):
            raise ValidationFailed(list(_validation_messages(elements[0])), api=self.api)
        return elements[0]

    def _error_messages(self, body: Any) -> list[str]:
        if not isinstance(body, dict):
            return []
        messages = [
            message
            for element in body.get("Elements") or ()
            for message in _validation_messages(element)
        ]
        summary = body.get("Message") or body.get("Detail") or body.get("Title")
        return messages or ([str(summary)] if summary else [])

    def _observe(self, response) -> None:
        headers = response.headers
        if "X-MinLimit-Remaining" in headers or "X-DayLimit-Remaining" in headers:
            self.last_limits = XeroLimits(
                minute_remaining=_count(headers.get("X-MinLimit-Remaining")),
                day_remaining=_count(headers.get("X-DayLimit-Remaining")),
                app_minute_remaining=_count(headers.get("X-AppMinLimit-Remaining")),
            )


def connections(tokens: TokenSource | str, timeout: float | None = None) -> list[XeroTenant]:
    """The organisations an access token reaches (GET /connections), e.g. right after the
    OAuth callback, before any tenant is chosen."""
    if isinstance(tokens, str):
        tokens = StaticTokenSource(tokens)
    body = XeroClient("", tokens, timeout=timeout).request("GET", settings.XERO_CONNECTIONS_URL)
    return [XeroTenant.from_json(data) for data in body or ()]


def delete_connection(tokens: TokenSource | str, connection_id: str, timeout=None) -> None:
    """DELETE /connections/{id}: the app no longer reaches that one organisation. A
    connection already gone (404) counts as done."""
    if isinstance(tokens, str):
        tokens = StaticTokenSource(tokens)
    client = XeroClient("", tokens, timeout=timeout)
    url = f"{settings.XERO_CONNECTIONS_URL.rstrip('/')}/{connection_id}"
    try:
        client.request("DELETE", url)
    except NotFound:
        return


def revoke_refresh_token(refresh_token: str) -> None:
    """POST /connect/revocation: the refresh token and the access tokens of its authorisation
    stop working, and Xero removes the connections that authorisation made (every tenant its
    user connected to the app), so call it only when no other pair uses that authorisation.
    Xero authenticates the app with HTTP Basic, as at its token endpoint (RFC 7009); an unknown
    or already revoked token is answered 200."""
    try:
        response = requests.post(
            settings.XERO_REVOCATION_URL,
            data={"token": refresh_token},
            auth=(settings.XERO_CLIENT_ID, settings.XERO_CLIENT_SECRET),
            timeout=settings.HTTP_TIMEOUT_SECONDS,
        )
    except requests.RequestException as exc:
        raise Unreachable(
            f"the revocation endpoint did not answer ({type(exc).__name__})", api="xero"
        ) from exc
    if response.status_code >= 500:
        raise ServerError(
            f"the revocation endpoint answered HTTP {response.status_code}",
            status=response.status_code,
            api="xero",
        )
    if not response.ok:
        raise AuthExpired(f"the revocation was refused (HTTP {response.status_code})", api="xero")
