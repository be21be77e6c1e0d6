"""Actionstep's REST API: the Xero link records, bills and bill payments (docs/api-contract.md).

Every undocumented name comes from actionstep_resources.
"""

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

from . import actionstep_resources
from .errors import NotFound
from .http import ApiClient
from .records import Bill, BillPayment, Contact, InvoiceLink, Matter, Page, PaymentLink
from .throttle import Throttle
from .tokens import TokenSource

JSON_API = "application/vnd.api+json"
MODIFIED = "modifiedTimestamp"

_BILL = actionstep_resources.BILL_RELATION
_BILL_DETAILS = f"{_BILL}.action,{_BILL}.theirParticipant"
INVOICE_LINK_INCLUDES = f"{_BILL},{_BILL_DETAILS}"
PAYMENT_LINK_INCLUDES = f"{actionstep_resources.BILL_PAYMENT_RELATION},{_BILL},{_BILL_DETAILS}"
BILL_INCLUDES = "action,theirParticipant"
BILL_PAYMENT_INCLUDES = actionstep_resources.BILL_RELATION

R = TypeVar("R", InvoiceLink, PaymentLink, Bill, BillPayment)


def _as_list(value: Any) -> list:
    """Actionstep answers with an object instead of a list when exactly one record matches."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _keyed(linked: Mapping, resource: str, parse: Callable) -> dict:
    return {record.id: record for record in map(parse, _as_list(linked.get(resource)))}


class ActionstepClient(ApiClient):
    api = "actionstep"

    def __init__(
        self,
        api_endpoint: str,
        tokens: TokenSource,
        throttle: Throttle | None = None,
        timeout: float | None = None,
    ):
        super().__init__(tokens, throttle, timeout)
        self.base_url = f"{api_endpoint.rstrip('/')}/rest"
        self.session.headers.update({"Content-Type": JSON_API, "Accept": JSON_API})

    # --- listings, page by page with their side-loaded records ------------------------------

    def iter_invoice_links(
        self,
        modified_after: datetime | None = None,
        page_size: int = actionstep_resources.PAGE_SIZE_MAX,
    ) -> Iterator[Page[InvoiceLink]]:
        return self._pages(
            actionstep_resources.XERO_INVOICE_LINKS,
            InvoiceLink.from_json,
            INVOICE_LINK_INCLUDES,
            modified_after,
            page_size,
        )

    def iter_payment_links(
        self,
        modified_after: datetime | None = None,
        page_size: int = actionstep_resources.PAGE_SIZE_MAX,
    ) -> Iterator[Page[PaymentLink]]:
        return self._pages(
            actionstep_resources.XERO_PAYMENT_LINKS,
            PaymentLink.from_json,
            PAYMENT_LINK_INCLUDES,
            modified_after,
            page_size,
        )

    def iter_bills(
        self,
        modified_after: datetime | None = None,
        page_size: int = actionstep_resources.PAGE_SIZE_MAX,
    ) -> Iterator[Page[Bill]]:
        return self._pages(
            actionstep_resources.BILLS, Bill.from_json, BILL_INCLUDES, modified_after, page_size
        )

    def iter_bill_payments(
        self,
        modified_after: datetime | None = None,
        page_size: int = actionstep_resources.PAGE_SIZE_MAX,
    ) -> Iterator[Page[BillPayment]]:
        return self._pages(
            actionstep_resources.BILL_PAYMENTS,
            BillPayment.from_json,
            BILL_PAYMENT_INCLUDES,
            modified_after,
            page_size,
        )

    def payment_links_for_bill(self, bill_id: int) -> list[PaymentLink]:
        """The Xero links of every payment applied to the bill: what the payments-first rule
        reads before the bill's own link is unlinked."""
        return self._all_of_bill(
            actionstep_resources.XERO_PAYMENT_LINKS, PaymentLink.from_json, bill_id
        )

    def payments_of_bill(self, bill_id: int) -> list[BillPayment]:
        """Every payment applied to the bill (in any status): what the rule that a bill is
        reverted or deleted only with no payment applied reads first."""
        return self._all_of_bill(actionstep_resources.BILL_PAYMENTS, BillPayment.from_json, bill_id)

    def _all_of_bill(self, resource: str, parse: Callable, bill_id: int) -> list:
        pages = self._pages(
            resource,
            parse,
            include=None,
            modified_after=None,
            page_size=actionstep_resources.PAGE_SIZE_MAX,
            filters={f"{actionstep_resources.BILL_RELATION}_eq": int(bill_id)},
        )
        return [record for page in pages for record in page.records]

    # --- single records ---------------------------------------------------------------------

    def get_invoice_link(self, link_id: int) -> InvoiceLink:
        return InvoiceLink.from_json(self._get(actionstep_resources.XERO_INVOICE_LINKS, link_id))

    def get_payment_link(self, link_id: int) -> PaymentLink:
        return PaymentLink.from_json(self._get(actionstep_resources.XERO_PAYMENT_LINKS, link_id))

    def get_bill(self, bill_id: int) -> Bill:
        return Bill.from_json(self._get(actionstep_resources.BILLS, bill_id))

    def get_bill_payment(self, payment_id: int) -> BillPayment:
        return BillPayment.from_json(self._get(actionstep_resources.BILL_PAYMENTS, payment_id))

    # --- changes (never retried here: re-read the record before trying again) ----------------

    def unlink_invoice(self, link_id: int) -> InvoiceLink:
        change = {actionstep_resources.LINK_STATUS_FIELD: actionstep_resources.UNLINKED}
        return InvoiceLink.from_json(
            self._put(actionstep_resources.XERO_INVOICE_LINKS, link_id, change)
        )

    def unlink_payment(self, link_id: int) -> PaymentLink:
        change = {actionstep_resources.LINK_STATUS_FIELD: actionstep_resources.UNLINKED}
        return PaymentLink.from_json(
            self._put(actionstep_resources.XERO_PAYMENT_LINKS, link_id, change)
        )

    def delete_payment(self, payment_id: int, reason: str) -> None:
        self.request(
            "DELETE",
            self._url(actionstep_resources.BILL_PAYMENTS, payment_id),
            params={actionstep_resources.PAYMENT_REASON_FIELD: reason},
        )

    def reverse_payment(self, payment_id: int, reason: str) -> BillPayment:
        change = {
            actionstep_resources.PAYMENT_STATUS_FIELD: actionstep_resources.PAYMENT_REVERSED,
            actionstep_resources.PAYMENT_REASON_FIELD: reason,
        }
        return BillPayment.from_json(
            self._put(actionstep_resources.BILL_PAYMENTS, payment_id, change)
        )

    def revert_invoice_to_draft(self, bill_id: int) -> Bill:
        return Bill.from_json(
            self._put(
                actionstep_resources.BILLS, bill_id, {"status": actionstep_resources.BILL_DRAFT}
            )
        )

    def delete_invoice(self, bill_id: int) -> None:
        self.request("DELETE", self._url(actionstep_resources.BILLS, bill_id))

    # --- plumbing ---------------------------------------------------------------------------

    def _url(self, resource: str, record_id: int | None = None) -> str:
        url = f"{self.base_url}/{resource}"
        return url if record_id is None else f"{url}/{int(record_id)}"

    def _get(self, resource: str, record_id: int) -> dict:
        return self._one(self.request("GET", self._url(resource, record_id)), resource, record_id)

    def _put(self, resource: str, record_id: int, change: dict) -> dict:
        body = self.request("PUT", self._url(resource, record_id), body={resource: change})
        return self._one(body, resource, record_id)

    def _one(self, body: Any, resource: str, record_id: int) -> dict:
        records = _as_list((body or {}).get(resource))
        if len(records) != 1:
            raise NotFound(f"{resource} {record_id} is not in the answer", api=self.api)
        return records[0]

    def _pages(
        self,
        resource: str,
        parse: Callable[[Mapping], R],
        include: str | None,
        modified_after: datetime | None,
        page_size: int,
        filters: dict | None = None,
    ) -> Iterator[Page[R]]:
        """Every record, oldest modification first, one Page per request.

        Paging by page number alone would skip records: unlinking during a sync moves a record
        to the end of the order and shifts every later page by one. So each query after a page
        starts at the last timestamp seen (`_gte`), dropping the ids already yielded at that
        instant; only a run of one timestamp longer than a page is paged by number.
        """
        params: dict[str, Any] = {
            **(filters or {}),
            "sort": MODIFIED,
            "pageSize": min(page_size, actionstep_resources.PAGE_SIZE_MAX),
        }
        if include:
            params["include"] = include
        if modified_after:
            params[f"{MODIFIED}_gt"] = modified_after.isoformat()
        anchor, number, fetched, record_count = modified_after, 1, 0, None
        seen_at_anchor: set[int] = set()
        while True:
            body = self.request("GET", self._url(resource), params={**params, "page": number})
            records = [parse(data) for data in _as_list((body or {}).get(resource))]
            paging = ((body or {}).get("meta") or {}).get("paging", {}).get(resource, {})
            page_count = int(paging.get("pageCount") or 0)
            if record_count is None:
                record_count = int(paging.get("recordCount") or len(records))
            fetched += 1
            fresh = tuple(r for r in records if r.id not in seen_at_anchor)
            if fresh:
                yield Page(
                    records=fresh,
                    page=fetched,
                    page_count=fetched + max(page_count - number, 0),
                    record_count=record_count,
                    **self._side_loaded(body),
                )
            if not records or number >= page_count:
                return
            last = records[-1].modified_at
            if last is not None and (anchor is None or last > anchor):
                params.pop(f"{MODIFIED}_gt", None)
                params[f"{MODIFIED}_gte"] = last.isoformat()
                anchor, number = last, 1
                seen_at_anchor = {r.id for r in records if r.modified_at == last}
            else:
                number += 1
                seen_at_anchor.update(r.id for r in records)

    @staticmethod
    def _side_loaded(body: Any) -> dict:
        linked = (body or {}).get("linked") or {}
        return {
            "bills": _keyed(linked, actionstep_resources.BILLS, Bill.from_json),
            "payments": _keyed(linked, actionstep_resources.BILL_PAYMENTS, BillPayment.from_json),
            "matters": _keyed(linked, actionstep_resources.ACTIONS, Matter.from_json),
            "contacts": _keyed(linked, actionstep_resources.PARTICIPANTS, Contact.from_json),
        }

    def _error_messages(self, body: Any) -> list[str]:
        errors = body.get("errors") if isinstance(body, dict) else None
        return [
            str(error.get("detail") or error.get("title") or "")
            for error in _as_list(errors)
            if isinstance(error, dict)
        ]
