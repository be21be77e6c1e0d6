"""The Xero Accounting API under /xero/api/api.xro/2.0 (invoices and payments) and the
identity API's connections list, with Xero's headers, limits, errors and idempotency."""

import math
import re
import time
import uuid

from . import clock, domain
from .web import BadRequest, Response, json_response, text_response
from .xero_query import (
    INVOICE_COLUMNS,
    PAYMENT_COLUMNS,
    PAYMENT_SELECT,
    QueryError,
    invoice_json,
    order_sql,
    payment_json,
    where_sql,
)

ACCOUNTING = "/xero/api/api.xro/2.0"
ROUTE = re.compile(r"^/(?P<kind>Invoices|Payments)(?:/(?P<id>[^/]+))?/?$")
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
MAX_IDS = 50  # longer IDs= lists make URLs that Xero answers with a 404
PAGE_SIZE, PAGE_SIZE_MAX = 100, 1000
# The fields a status change may carry besides Status; anything else would edit the invoice.
IDENTIFYING = {"InvoiceID", "InvoiceNumber", "Type"}


def problem(status: int, title: str, detail: str, headers: dict | None = None) -> Response:
    """The problem body Xero's gateway answers for 401, 403, 429 and server errors."""
    body = {
        "Type": None,
        "Title": title,
        "Status": status,
        "Detail": detail,
        "Instance": str(uuid.uuid4()),
        "Extensions": {},
    }
    return json_response(body, status, headers=headers)


def not_found() -> Response:
    return text_response(
        "The resource you're looking for cannot be found", 404, "text/html; charset=utf-8"
    )


def validation_exception(elements: list[dict]) -> Response:
    body = {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": elements,
    }
    return json_response(body, 400)


def fault_response(status: int) -> Response:
    if status == 429:
        headers = {"Retry-After": "1", "X-Rate-Limit-Problem": "minute"}
        return problem(429, "Too Many Requests", "Injected by the sandbox", headers)
    if status == 404:
        return not_found()
    if status == 401:
        return problem(401, "Unauthorized", "AuthenticationUnsuccessful")
    return problem(status, "An error occurred", "Injected by the sandbox")


def envelope(key: str, items: list, pagination: dict | None = None) -> dict:
    body = {
        "Id": str(uuid.uuid4()),
        "Status": "OK",
        "ProviderName": "Unlinker sandbox",
        "DateTimeUTC": clock.xero_envelope_time(),
    }
    if pagination:
        body["pagination"] = pagination
    body[key] = items
    return body


class _Rollback(Exception):
    """Undo a batch whose errors are summarised (summarizeErrors=true: all or nothing)."""


class XeroApi:
    def __init__(self, store, oauth, limiter, idempotency):
        self.store, self.oauth = store, oauth
        self.limiter, self.idempotency = limiter, idempotency

    def connections(self, req) -> Response:
        token, why = self.oauth.authenticate(req, "xero")
        if token is None:
            return problem(401, "Unauthorized", f"AuthenticationUnsuccessful: token {why}")
        if req.method != "GET":
            return text_response("Method not allowed", 405)
        firms = self.store.conn().execute("SELECT * FROM firms ORDER BY id").fetchall()
        return json_response(
            [
                {
                    "id": firm["connection_id"],
                    "authEventId": firm["connection_id"],
                    "tenantId": firm["tenant_id"],
                    "tenantType": "ORGANISATION",
                    "tenantName": firm["name"],
                    "createdDateUtc": clock.xero_connection_time(firm["created_ms"]),
                    "updatedDateUtc": clock.xero_connection_time(firm["created_ms"]),
                }
                for firm in firms
            ]
        )

    def handle(self, req) -> Response:
        token, why = self.oauth.authenticate(req, "xero")
        if token is None:
            detail = (
                f"TokenExpired: token {why}" if why == "expired" else "AuthenticationUnsuccessful"
            )
            headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
            return problem(401, "Unauthorized", detail, headers)
        tenant = req.header("Xero-tenant-id").strip().lower()
        if not tenant:
            return problem(403, "Forbidden", "AuthenticationUnsuccessful")
        known = self.store.conn().execute("SELECT 1 FROM firms WHERE tenant_id = ?", (tenant,))
        if known.fetchone() is None:
            return problem(403, "Forbidden", "AuthorizationUnsuccessful")
        req.notes["tenant_id"] = tenant
        verdict = self.limiter.acquire(tenant)
        if verdict.problem:
            headers = {
                "Retry-After": str(verdict.retry_after),
                "X-Rate-Limit-Problem": verdict.problem,
            }
            response = problem(429, "Too Many Requests", f"Rate limit: {verdict.problem}", headers)
        else:
            try:
                time.sleep(self.limiter.limits.latency)
                response = self._respond(req, tenant)
            finally:
                self.limiter.release(tenant)
        response.headers.update({name: str(value) for name, value in verdict.remaining.items()})
        return response

    def _respond(self, req, tenant: str) -> Response:
        if "application/json" not in req.header("Accept"):
            # Xero answers XML unless asked for JSON; the sandbox speaks JSON only.
            return text_response("Send Accept: application/json (the sandbox has no XML)", 406)
        key = req.header("Idempotency-Key")
        if req.method not in ("POST", "PUT") or not key:
            return self._route(req, tenant)
        if len(key) > 128:
            return problem(400, "Bad Request", "Idempotency-Key is longer than 128 characters")
        state, stored = self.idempotency.begin(tenant, key, req)
        if state == "replay":
            req.notes["replay"] = True
            return Response(stored.status, stored.body, dict(stored.headers))
        if state == "mismatch":
            detail = "This Idempotency-Key was used with a different request"
            return problem(400, "Bad Request", detail)
        if state == "in_flight":
            return problem(409, "Conflict", "A request with this Idempotency-Key is in progress")
        response = problem(500, "An error occurred", "The sandbox failed")
        try:
            response = self._route(req, tenant)
        finally:
            self.idempotency.finish(tenant, key, response)
        return response

    def _route(self, req, tenant: str) -> Response:
        match = ROUTE.match(req.path[len(ACCOUNTING) :])
        if not match:
            return not_found()
        kind, item = match["kind"], match["id"]
        handlers = {
            ("Invoices", "GET", False): self._list_invoices,
            ("Invoices", "POST", False): self._update_invoices,
            ("Invoices", "GET", True): self._get_invoice,
            ("Invoices", "POST", True): self._update_invoices,
            ("Payments", "GET", False): self._list_payments,
            ("Payments", "GET", True): self._get_payment,
            ("Payments", "POST", True): self._delete_payment,
        }
        handler = handlers.get((kind, req.method, item is not None))
        if handler is None:
            return text_response(f"{req.method} {kind} is not supported by the sandbox", 405)
        try:
            return handler(req, tenant, item) if item else handler(req, tenant)
        except QueryError as exc:
            body = {"ErrorNumber": 16, "Type": "QueryParseException", "Message": str(exc)}
            return json_response(body, 400)
        except BadRequest as exc:
            body = {"ErrorNumber": 14, "Type": "PostDataInvalidException", "Message": str(exc)}
            return json_response(body, 400)

    # --- invoices -----------------------------------------------------------------------------

    def _list_invoices(self, req, tenant: str) -> Response:
        args, clauses, params = req.args, ["i.tenant_id = ?"], [tenant]
        lists = (
            ("IDs", "i.id", str.lower),
            ("InvoiceNumbers", "i.number", str),
            ("ContactIDs", "i.contact_id", str.lower),
            ("Statuses", "i.status", str.upper),
        )
        for name, column, normalise in lists:
            values = [normalise(v.strip()) for v in args.get(name, "").split(",") if v.strip()]
            if name == "IDs" and len(values) > MAX_IDS:
                return not_found()
            if values:
                clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
                params.extend(values)
        rows, pagination = self._select(
            req, "SELECT i.* FROM xero_invoices i", INVOICE_COLUMNS, clauses, params, "i.seq"
        )
        summary_only = args.get("summaryOnly", "").lower() == "true"
        payments = None if summary_only else self._live_payments([r["id"] for r in rows])
        invoices = [
            invoice_json(
                row,
                None if summary_only else payments.get(row["id"], []),
                line_items=bool(pagination) and not summary_only,
            )
            for row in rows
        ]
        return json_response(envelope("Invoices", invoices, pagination))

    def _select(self, req, select, columns, clauses, params, default_order):
        """Rows for a list request with its where, If-Modified-Since, order and page."""
        args = req.args
        if args.get("where", "").strip():
            condition, where_params = where_sql(args["where"], columns)
            clauses.append(condition)
            params.extend(where_params)
        if req.header("If-Modified-Since"):
            try:
                since = clock.parse_if_modified_since(req.header("If-Modified-Since"))
            except (TypeError, ValueError):
                raise BadRequest("If-Modified-Since is not a date") from None
            clauses.append(f"{columns['UpdatedDateUTC'].sql} > ?")
            params.append(since)
        where = " AND ".join(clauses)
        order = order_sql(args.get("order", ""), columns) or default_order
        sql = f"{select} WHERE {where} ORDER BY {order}, {default_order}"
        if not args.get("page"):
            return self.store.conn().execute(sql, params).fetchall(), None
        try:
            page = max(1, int(args["page"]))
            size = min(PAGE_SIZE_MAX, max(1, int(args.get("pageSize") or PAGE_SIZE)))
        except ValueError:
            raise BadRequest("page and pageSize must be integers") from None
        count_sql = f"SELECT COUNT(*) FROM ({select} WHERE {where})"  # noqa: S608
        count = self.store.count(count_sql, params)
        rows = self.store.conn().execute(
            f"{sql} LIMIT ? OFFSET ?", [*params, size, (page - 1) * size]
        )
        pagination = {
            "page": page,
            "pageSize": size,
            "pageCount": math.ceil(count / size),
            "itemCount": count,
        }
        return rows.fetchall(), pagination

    def _live_payments(self, invoice_ids: list[str]) -> dict[str, list]:
        found: dict[str, list] = {}
        conn = self.store.conn()
        for start in range(0, len(invoice_ids), 500):
            chunk = invoice_ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            live = f"invoice_id IN ({marks}) AND status = 'AUTHORISED'"
            sql = f"SELECT * FROM xero_payments WHERE {live} ORDER BY seq"  # noqa: S608
            for row in conn.execute(sql, chunk):
                found.setdefault(row["invoice_id"], []).append(row)
        return found

    def _find_invoices(self, conn, tenant: str, id_or_number: str) -> list:
        column = "id" if GUID.match(id_or_number) else "number"
        value = id_or_number.lower() if column == "id" else id_or_number
        sql = f"SELECT * FROM xero_invoices WHERE tenant_id = ? AND {column} = ? ORDER BY seq"  # noqa: S608
        return conn.execute(sql, (tenant, value)).fetchall()

    def _get_invoice(self, req, tenant: str, id_or_number: str) -> Response:
        rows = self._find_invoices(self.store.conn(), tenant, id_or_number)
        if not rows:
            return not_found()
        payments = self._live_payments([r["id"] for r in rows])
        invoices = [invoice_json(r, payments.get(r["id"], []), line_items=True) for r in rows]
        return json_response(envelope("Invoices", invoices))

    def _update_invoices(self, req, tenant: str, path_id: str | None = None) -> Response:
        body = req.json()
        elements = body.get("Invoices") if isinstance(body, dict) else None
        if elements is None and isinstance(body, dict) and path_id:
            elements = [body]  # a bare invoice object is accepted too
        if not isinstance(elements, list) or not elements:
            raise BadRequest('The body must be {"Invoices": [{...}]}')
        if path_id:
            if not self._find_invoices(self.store.conn(), tenant, path_id):
                return not_found()
            elements = elements[:1]
        summarize = path_id is not None or req.args.get("summarizeErrors", "true") != "false"
        try:
            with self.store.write() as conn:
                results = [self._update_invoice(conn, tenant, el, path_id) for el in elements]
                if summarize and any(result.get("HasErrors") for result in results):
                    raise _Rollback
        except _Rollback:
            return validation_exception([r for r in results if r.get("HasErrors")])
        return json_response(envelope("Invoices", results))

    def _update_invoice(self, conn, tenant: str, element, path_id: str | None) -> dict:
        if not isinstance(element, dict):
            return _failed({}, "Each invoice must be an object")
        target = path_id or element.get("InvoiceID") or ""
        if not path_id and not GUID.match(target):
            return _failed(element, "The sandbox updates invoices by InvoiceID only")
        rows = self._find_invoices(conn, tenant, target)
        if len(rows) != 1:
            return _failed(element, "Invoice could not be found")
        row = rows[0]
        edits = set(element) - IDENTIFYING - {"Status"}
        if edits:
            message = (
                f"The sandbox changes an invoice's Status only, not {', '.join(sorted(edits))}"
            )
            return _failed({**invoice_json(row), **element}, message)
        if "Status" in element:
            try:
                status = str(element["Status"]).upper()
                domain.set_invoice_status(conn, row, status, clock.now_ms())
            except domain.XeroRefused as exc:
                return _failed({**invoice_json(row), "Status": element["Status"]}, *exc.messages)
        row = conn.execute("SELECT * FROM xero_invoices WHERE id = ?", (row["id"],)).fetchone()
        payments = self._live_payments([row["id"]]).get(row["id"], [])
        return {**invoice_json(row, payments), "StatusAttributeString": "OK"}

    # --- payments -----------------------------------------------------------------------------

    def _list_payments(self, req, tenant: str) -> Response:
        rows, pagination = self._select(
            req, PAYMENT_SELECT, PAYMENT_COLUMNS, ["p.tenant_id = ?"], [tenant], "p.seq"
        )
        return json_response(envelope("Payments", [payment_json(r) for r in rows], pagination))

    def _payment(self, conn, tenant: str, payment_id: str):
        sql = f"{PAYMENT_SELECT} WHERE p.tenant_id = ? AND p.id = ?"
        return conn.execute(sql, (tenant, payment_id.lower())).fetchone()

    def _get_payment(self, req, tenant: str, payment_id: str) -> Response:
        row = self._payment(self.store.conn(), tenant, payment_id)
        if row is None:
            return not_found()
        return json_response(envelope("Payments", [payment_json(row)]))

    def _delete_payment(self, req, tenant: str, payment_id: str) -> Response:
        body = req.json()
        if isinstance(body, dict) and isinstance(body.get("Payments"), list) and body["Payments"]:
            body = body["Payments"][0]  # the SDKs wrap the change in {"Payments": [...]}
        with self.store.write() as conn:
            row = self._payment(conn, tenant, payment_id)
            if row is None:
                return not_found()
            if not isinstance(body, dict) or body.get("Status") != "DELETED" or len(body) > 1:
                message = 'A payment can only be given {"Status": "DELETED"}'
                element = _failed(payment_json(row), message, flag="HasValidationErrors")
                return validation_exception([element])
            try:
                domain.delete_xero_payment(conn, row, clock.now_ms())
            except domain.XeroRefused as exc:
                element = _failed(payment_json(row), *exc.messages, flag="HasValidationErrors")
                return validation_exception([element])
            row = self._payment(conn, tenant, payment_id)
        return json_response(envelope("Payments", [payment_json(row)]))


def _failed(element: dict, *messages: str, flag: str = "HasErrors") -> dict:
    """The element echoed back with its errors (a Payment flags them as HasValidationErrors)."""
    return {
        **element,
        flag: True,
        "StatusAttributeString": "ERROR",
        "ValidationErrors": [{"Message": message} for message in messages],
    }
