"""Xero's Accounting API 2.0: the invoices and payments the clean-up reads and changes."""

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from django.conf import settings

from .errors import NotFound, ValidationFailed
from .http import ApiClient
from .records import InvoiceStatusResult, XeroInvoice, XeroLimits, XeroPayment, XeroTenant
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
            # Xero's documented form: UTC, no offset
            since = modified_since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
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
        if len(changes) > XERO_INVOICES_PER_CALL:
            raise ValueError(f"at most {XERO_INVOICES_PER_CALL} invoices per call")
        body = self.request(
            "POST",
            f"{self.api_url}/Invoices",
            params={"summarizeErrors": "false"},
            body={"Invoices": [{"InvoiceID": i, "Status": s} for i, s in changes]},
            headers=_idempotency(idempotency_key),
        )
        elements = (body or {}).get("Invoices") or []
        return [
            _status_result(invoice_id, _answer_for(elements, position, invoice_id))
            for position, (invoice_id, _) in enumerate(changes)
        ]

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
