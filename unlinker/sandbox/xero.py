"""The Xero Accounting API under /xero/api/api.xro/2.0: invoices, payments, credit notes,
prepayments, overpayments and their allocations, batch payments, history notes and the
organisation, with Xero's headers, scopes, limits, errors and idempotency
(xero_accounting.yaml). The identity API's connections are in identity.py."""

import math
import re
import time
import uuid

from . import clock, domain
from .web import BadRequest, Response, clean_text, json_response, parse_bool, text_response
from .xero_query import (
    ALLOCATION_SELECT,
    BATCH_COLUMNS,
    BATCH_SELECT,
    CREDIT_COLUMNS,
    CREDIT_KINDS,
    INVOICE_COLUMNS,
    PAYMENT_COLUMNS,
    PAYMENT_SELECT,
    Column,
    QueryError,
    allocation_json,
    batch_payment_json,
    credit_json,
    history_json,
    invoice_json,
    order_sql,
    organisation_json,
    payment_json,
    where_sql,
)

ACCOUNTING = "/xero/api/api.xro/2.0"
# Xero's paths are case-insensitive: /invoices answers as /Invoices does.
ROUTE = re.compile(
    r"^/(?P<kind>Invoices|Payments|CreditNotes|Prepayments|Overpayments|BatchPayments"
    r"|Organisation)(?:/(?P<id>[^/]+)(?:/(?P<sub>History|Allocations)(?:/(?P<sub_id>[^/]+))?)?)?/?$",
    re.IGNORECASE,
)
KINDS = {
    name.lower(): name
    for name in (
        "Invoices",
        "Payments",
        "CreditNotes",
        "Prepayments",
        "Overpayments",
        "BatchPayments",
        "Organisation",
    )
}
CREDIT_PATHS = {
    "CreditNotes": "CREDITNOTE",
    "Prepayments": "PREPAYMENT",
    "Overpayments": "OVERPAYMENT",
}
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
MAX_IDS = 50  # longer IDs= lists make URLs that Xero answers with a 404
PAGE_SIZE, PAGE_SIZE_MAX = 100, 1000

# Scopes (xero_accounting.yaml names accounting.transactions[.read]; apps created since March
# 2026 get the granular accounting.invoices and accounting.payments instead). ASSUMPTION: the
# granular scopes cover credit notes with invoices, and prepayments, overpayments and batch
# payments with payments.
_TRANSACTIONS = {"accounting.transactions"}
_TRANSACTIONS_READ = _TRANSACTIONS | {"accounting.transactions.read"}
SCOPES = {
    ("invoices", False): _TRANSACTIONS | {"accounting.invoices"},
    ("invoices", True): _TRANSACTIONS_READ | {"accounting.invoices", "accounting.invoices.read"},
    ("payments", False): _TRANSACTIONS | {"accounting.payments"},
    ("payments", True): _TRANSACTIONS_READ | {"accounting.payments", "accounting.payments.read"},
    ("settings", True): {"accounting.settings", "accounting.settings.read"},
}
AREAS = {
    "Invoices": "invoices",
    "CreditNotes": "invoices",
    "Payments": "payments",
    "Prepayments": "payments",
    "Overpayments": "payments",
    "BatchPayments": "payments",
    "Organisation": "settings",
}

# What an invoice in a POST may carry besides the fields the sandbox changes (InvoiceNumber,
# Reference, Date, DueDate, Status): read-only and answer-only fields are ignored, as Xero
# ignores them; writable fields the sandbox does not keep are accepted and named in the
# element's Warnings when they would change something. Unknown fields are ignored.
IGNORED_FIELDS = {
    "InvoiceID",
    "SubTotal",
    "TotalTax",
    "Total",
    "TotalDiscount",
    "CISDeduction",
    "CISRate",
    "HasAttachments",
    "IsDiscounted",
    "Payments",
    "Prepayments",
    "Overpayments",
    "CreditNotes",
    "AmountDue",
    "AmountPaid",
    "AmountCredited",
    "FullyPaidOnDate",
    "UpdatedDateUTC",
    "UpdatedDateUTCString",
    "HasErrors",
    "StatusAttributeString",
    "ValidationErrors",
    "Warnings",
    "Attachments",
    "DateString",
    "DueDateString",
}
# ... with the value the sandbox answers for each (None: it answers none)
NOT_KEPT = {
    "LineAmountTypes": "Exclusive",
    "CurrencyRate": 1,
    "BrandingThemeID": None,
    "Url": None,
    "SentToContact": None,
    "ExpectedPaymentDate": None,
    "PlannedPaymentDate": None,
    "RepeatingInvoiceID": None,
    "InvoiceAddresses": None,
}
INVOICE_USER = "Unlinker sandbox API"
FIELD_NAMES = {
    "number": "InvoiceNumber",
    "reference": "Reference",
    "date": "Date",
    "due_date": "DueDate",
}


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


def note_change(req, tenant: str, invoice_id: str, event: str = "UPDATE") -> None:
    """Remember that an invoice changed, for the webhook deliveries sent after the answer."""
    req.notes.setdefault("invoice_events", []).append((tenant, invoice_id, event))


class _Rollback(Exception):
    """Undo a batch whose errors are summarised (summarizeErrors=true: all or nothing)."""


class XeroApi:
    def __init__(self, store, oauth, limiter, idempotency):
        self.store, self.oauth = store, oauth
        self.limiter, self.idempotency = limiter, idempotency

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
        conn = self.store.conn()
        known = conn.execute("SELECT 1 FROM firms WHERE tenant_id = ?", (tenant,)).fetchone()
        disconnected = conn.execute(
            "SELECT 1 FROM xero_disconnections WHERE client_id = ? AND tenant_id = ?",
            (token["client_id"], tenant),
        ).fetchone()
        if known is None or disconnected is not None:
            return problem(403, "Forbidden", "AuthorizationUnsuccessful")
        req.notes["tenant_id"] = tenant
        req.notes["token"] = token
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
        if req.method not in ("POST", "PUT", "DELETE") or not key:
            return self._route(req, tenant)
        if len(key) > 128:
            return problem(400, "Bad Request", "Idempotency-Key is longer than 128 characters")
        state, stored = self.idempotency.begin(tenant, key, req)
        if state == "replay":
            req.notes["replay"] = True
            req.notes.pop("invoice_events", None)
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
        kind = KINDS[match["kind"].lower()]
        sub = (match["sub"] or "").capitalize() or None
        item, sub_id = match["id"], match["sub_id"]
        handlers = {
            ("Invoices", "GET", False, None): self._list_invoices,
            ("Invoices", "POST", False, None): self._update_invoices,
            ("Invoices", "GET", True, None): self._get_invoice,
            ("Invoices", "POST", True, None): self._update_invoices,
            ("Invoices", "GET", True, "History"): self._get_history,
            ("Invoices", "PUT", True, "History"): self._add_history,
            ("Payments", "GET", False, None): self._list_payments,
            ("Payments", "GET", True, None): self._get_payment,
            ("Payments", "POST", True, None): self._delete_payment,
            ("Payments", "GET", True, "History"): self._get_history,
            ("Payments", "PUT", True, "History"): self._add_history,
            ("BatchPayments", "GET", False, None): self._list_batches,
            ("BatchPayments", "GET", True, None): self._get_batch,
            ("Organisation", "GET", False, None): self._organisation,
        }
        for credits in CREDIT_PATHS:
            handlers[(credits, "GET", False, None)] = self._list_credits
            handlers[(credits, "GET", True, None)] = self._get_credit
            handlers[(credits, "DELETE", True, "Allocations")] = self._delete_allocation
        if (sub == "Allocations") != (sub_id is not None):
            return not_found()
        handler = handlers.get((kind, req.method, item is not None, sub))
        if handler is None:
            return text_response(f"{req.method} {req.path} is not supported by the sandbox", 405)
        granted = set((req.notes["token"]["scope"] or "").split())
        if not granted & SCOPES[(AREAS[kind], req.method == "GET")]:
            return problem(403, "Forbidden", "AuthorizationUnsuccessful")
        req.notes["route"] = {"kind": kind, "id": item, "sub_id": sub_id}
        try:
            return handler(req, tenant)
        except QueryError as exc:
            body = {"ErrorNumber": 16, "Type": "QueryParseException", "Message": str(exc)}
            return json_response(body, 400)
        except BadRequest as exc:
            body = {"ErrorNumber": 14, "Type": "PostDataInvalidException", "Message": str(exc)}
            return json_response(body, 400)

    @staticmethod
    def _user(req) -> str:
        return f"{INVOICE_USER} ({req.notes['token']['client_id']})"

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
        term = args.get("searchTerm", "").strip()
        if term:
            # "a case-insensitive text search across the fields e.g. InvoiceNumber, Reference"
            pattern = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            clauses.append("(i.number LIKE ? ESCAPE '\\' OR i.reference LIKE ? ESCAPE '\\')")
            params.extend([pattern, pattern])
        if parse_bool(args.get("createdByMyApp"), False):
            clauses.append("i.created_by = ?")
            params.append(req.notes["token"]["client_id"])
        # includeArchived: invoices have no ARCHIVED status in the sandbox, so it changes nothing
        rows, pagination = self._select(
            req, "SELECT i.* FROM xero_invoices i", INVOICE_COLUMNS, clauses, params, "i.seq"
        )
        summary_only = parse_bool(args.get("summaryOnly"), False)
        return json_response(
            envelope(
                "Invoices",
                self._invoices_json(
                    rows, summary_only=summary_only, line_items=bool(pagination), req=req
                ),
                pagination,
            )
        )

    def _invoices_json(self, rows, *, summary_only=False, line_items=False, req=None) -> list:
        ids = [r["id"] for r in rows]
        payments = {} if summary_only else self._live(ids, "payments")
        credits = {} if summary_only else self._live(ids, "allocations")
        unitdp = _unitdp(req.args.get("unitdp")) if req else 2
        return [
            invoice_json(
                row,
                None if summary_only else payments.get(row["id"], []),
                line_items=line_items and not summary_only,
                credits=credits.get(row["id"], []),
                unitdp=unitdp,
            )
            for row in rows
        ]

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

    def _live(self, invoice_ids: list[str], what: str, conn=None) -> dict[str, list]:
        """The invoices' live payments or allocations (with their documents), by invoice."""
        found: dict[str, list] = {}
        conn = conn or self.store.conn()
        for start in range(0, len(invoice_ids), 500):
            chunk = invoice_ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            if what == "payments":
                sql = (
                    "SELECT * FROM xero_payments WHERE "  # noqa: S608
                    f"invoice_id IN ({marks}) AND status = 'AUTHORISED' ORDER BY seq"
                )
            else:
                sql = f"{ALLOCATION_SELECT} AND a.invoice_id IN ({marks}) ORDER BY a.seq"
            for row in conn.execute(sql, chunk):
                found.setdefault(row["invoice_id"], []).append(row)
        return found

    def _find_invoices(self, conn, tenant: str, id_or_number: str) -> list:
        column = "id" if GUID.match(id_or_number) else "number"
        value = id_or_number.lower() if column == "id" else id_or_number
        sql = f"SELECT * FROM xero_invoices WHERE tenant_id = ? AND {column} = ? ORDER BY seq"  # noqa: S608
        return conn.execute(sql, (tenant, value)).fetchall()

    def _get_invoice(self, req, tenant: str) -> Response:
        rows = self._find_invoices(self.store.conn(), tenant, req.notes["route"]["id"])
        if not rows:
            return not_found()
        return json_response(
            envelope("Invoices", self._invoices_json(rows, line_items=True, req=req))
        )

    def _update_invoices(self, req, tenant: str) -> Response:
        path_id = req.notes["route"]["id"]
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
        # Xero summarises errors (one 400 for the whole batch) unless summarizeErrors=false.
        summarize = path_id is not None or parse_bool(req.args.get("summarizeErrors"), True)
        events: list[str] = []
        try:
            with self.store.write() as conn:
                results = [
                    self._update_invoice(conn, req, tenant, element, path_id, events)
                    for element in elements
                ]
                if summarize and any(result.get("HasErrors") for result in results):
                    raise _Rollback
        except _Rollback:
            return validation_exception([r for r in results if r.get("HasErrors")])
        for invoice_id in events:
            note_change(req, tenant, invoice_id)
        return json_response(envelope("Invoices", results))

    def _update_invoice(self, conn, req, tenant, element, path_id, events) -> dict:
        if not isinstance(element, dict):
            return _failed({}, "Each invoice must be an object")
        target = path_id or element.get("InvoiceID") or element.get("InvoiceNumber") or ""
        rows = self._find_invoices(conn, tenant, str(target)) if target else []
        if not rows:
            if element.get("InvoiceID") or path_id:
                return _failed(element, "Invoice could not be found")
            # POST /Invoices also creates invoices; the clean-up never does (out of scope).
            return _failed(element, "The sandbox does not create invoices: name one by InvoiceID")
        if len(rows) > 1:
            return _failed(element, "More than one invoice has this number: name it by InvoiceID")
        row = rows[0]
        try:
            changes, status, warnings = _invoice_changes(row, element)
        except ValueError as exc:
            return _failed({**invoice_json(row), **_echo(element)}, str(exc))
        now, before = clock.now_ms(), row
        conn.execute("SAVEPOINT invoice_element")
        try:
            edited = domain.edit_invoice(conn, row, changes, now)
            row = conn.execute("SELECT * FROM xero_invoices WHERE id = ?", (row["id"],)).fetchone()
            changed = status is not None and domain.set_invoice_status(conn, row, status, now)
        except domain.XeroRefused as exc:
            conn.execute("ROLLBACK TO invoice_element")
            conn.execute("RELEASE invoice_element")
            return _failed({**invoice_json(row), **_echo(element)}, *exc.messages)
        conn.execute("RELEASE invoice_element")
        if edited:
            details = "; ".join(
                f"{FIELD_NAMES[column]} changed from '{before[column]}' to '{row[column]}'"
                for column in edited
            )
            domain.add_history(conn, tenant, row["id"], "Edited", details, self._user(req), now)
        if changed:
            details = f"{row['number']} to {row['contact_name']} for {row['total'] / 100:.2f}."
            changes_word = {"VOIDED": "Voided", "DELETED": "Deleted"}.get(status, "Updated")
            domain.add_history(conn, tenant, row["id"], changes_word, details, self._user(req), now)
        if edited or changed:
            events.append(row["id"])
        row = conn.execute("SELECT * FROM xero_invoices WHERE id = ?", (row["id"],)).fetchone()
        payments = self._live([row["id"]], "payments", conn).get(row["id"], [])
        credits = self._live([row["id"]], "allocations", conn).get(row["id"], [])
        answer = {**invoice_json(row, payments, credits=credits), "StatusAttributeString": "OK"}
        if warnings:
            answer["Warnings"] = [{"Message": message} for message in warnings]
        return answer

    # --- history ------------------------------------------------------------------------------

    def _history_target(self, conn, req, tenant: str):
        route = req.notes["route"]
        if route["kind"] == "Invoices":
            rows = self._find_invoices(conn, tenant, route["id"])
            return rows[0] if len(rows) == 1 else None
        if not GUID.match(route["id"]):
            return None
        return self._payment(conn, tenant, route["id"])

    def _get_history(self, req, tenant: str) -> Response:
        conn = self.store.conn()
        target = self._history_target(conn, req, tenant)
        if target is None:
            return not_found()
        rows = conn.execute(
            "SELECT * FROM xero_history WHERE record_id = ? ORDER BY seq", (target["id"],)
        )
        return json_response(envelope("HistoryRecords", [history_json(r) for r in rows]))

    def _add_history(self, req, tenant: str) -> Response:
        body = req.json()
        records = body.get("HistoryRecords") if isinstance(body, dict) else None
        if not isinstance(records, list) or not records:
            raise BadRequest('The body must be {"HistoryRecords": [{"Details": "..."}]}')
        details = [
            clean_text(r.get("Details") or "").strip() if isinstance(r, dict) else ""
            for r in records
        ]
        if not all(details):
            return validation_exception(
                [{"ValidationErrors": [{"Message": "A history note needs Details"}]}]
            )
        with self.store.write() as conn:
            target = self._history_target(conn, req, tenant)
            if target is None:
                return not_found()
            now = clock.now_ms()
            added = [
                domain.add_history(conn, tenant, target["id"], "Note", text, self._user(req), now)
                for text in details
            ]
        return json_response(envelope("HistoryRecords", [history_json(r) for r in added]))

    # --- payments -----------------------------------------------------------------------------

    def _list_payments(self, req, tenant: str) -> Response:
        rows, pagination = self._select(
            req, PAYMENT_SELECT, PAYMENT_COLUMNS, ["p.tenant_id = ?"], [tenant], "p.seq"
        )
        return json_response(envelope("Payments", [payment_json(r) for r in rows], pagination))

    def _payment(self, conn, tenant: str, payment_id: str):
        sql = f"{PAYMENT_SELECT} WHERE p.tenant_id = ? AND p.id = ?"
        return conn.execute(sql, (tenant, payment_id.lower())).fetchone()

    def _get_payment(self, req, tenant: str) -> Response:
        row = self._payment(self.store.conn(), tenant, req.notes["route"]["id"])
        if row is None:
            return not_found()
        return json_response(envelope("Payments", [payment_json(row)]))

    def _delete_payment(self, req, tenant: str) -> Response:
        payment_id = req.notes["route"]["id"]
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
            details = f"Payment of {row['amount'] / 100:.2f} on {row['invoice_number']} deleted."
            now = clock.now_ms()
            domain.add_history(conn, tenant, row["id"], "Deleted", details, self._user(req), now)
            row = self._payment(conn, tenant, payment_id)
        note_change(req, tenant, row["invoice_id"])
        return json_response(envelope("Payments", [payment_json(row)]))

    # --- batch payments -----------------------------------------------------------------------

    def _batch_payments(self, conn, batch_ids: list[str]) -> dict[str, list]:
        found: dict[str, list] = {}
        if batch_ids:
            marks = ", ".join("?" * len(batch_ids))
            sql = f"{PAYMENT_SELECT} WHERE p.batch_payment_id IN ({marks}) ORDER BY p.seq"
            for row in conn.execute(sql, batch_ids):
                found.setdefault(row["batch_payment_id"], []).append(row)
        return found

    def _list_batches(self, req, tenant: str) -> Response:
        rows, _ = self._select(req, BATCH_SELECT, BATCH_COLUMNS, ["1 = 1"], [tenant], "b.seq")
        if req.args.get("page"):
            raise BadRequest("GET /BatchPayments is not paged")
        payments = self._batch_payments(self.store.conn(), [r["id"] for r in rows])
        batches = [batch_payment_json(r, payments.get(r["id"], [])) for r in rows]
        return json_response(envelope("BatchPayments", batches))

    def _get_batch(self, req, tenant: str) -> Response:
        batch_id = req.notes["route"]["id"].lower()
        conn = self.store.conn()
        row = conn.execute(f"{BATCH_SELECT} WHERE b.id = ?", (tenant, batch_id)).fetchone()  # noqa: S608
        if row is None:
            return not_found()
        payments = self._batch_payments(conn, [batch_id]).get(batch_id, [])
        return json_response(envelope("BatchPayments", [batch_payment_json(row, payments)]))

    # --- credit notes, prepayments, overpayments and their allocations -----------------------

    def _allocations(self, conn, credit_ids: list[str]) -> dict[str, list]:
        found: dict[str, list] = {}
        for start in range(0, len(credit_ids), 500):
            chunk = credit_ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            sql = (
                "SELECT a.*, i.number AS invoice_number FROM xero_allocations a "  # noqa: S608
                "JOIN xero_invoices i ON i.id = a.invoice_id "
                f"WHERE a.credit_id IN ({marks}) AND a.deleted_ms IS NULL ORDER BY a.seq"
            )
            for row in conn.execute(sql, chunk):
                found.setdefault(row["credit_id"], []).append(row)
        return found

    def _list_credits(self, req, tenant: str) -> Response:
        kind = CREDIT_PATHS[req.notes["route"]["kind"]]
        rows, pagination = self._select(
            req,
            "SELECT c.* FROM xero_credits c",
            {**CREDIT_COLUMNS, CREDIT_KINDS[kind][1]: Column("c.id", "guid")},
            ["c.tenant_id = ?", "c.kind = ?"],
            [tenant, kind],
            "c.seq",
        )
        allocations = self._allocations(self.store.conn(), [r["id"] for r in rows])
        documents = [credit_json(r, allocations.get(r["id"], [])) for r in rows]
        return json_response(envelope(CREDIT_KINDS[kind][0], documents, pagination))

    def _credit(self, conn, req, tenant: str):
        route = req.notes["route"]
        kind = CREDIT_PATHS[route["kind"]]
        sql = (
            "SELECT * FROM xero_credits WHERE tenant_id = ? AND kind = ? AND (id = ? OR number = ?)"
        )
        value = route["id"].lower() if GUID.match(route["id"]) else route["id"]
        return conn.execute(sql, (tenant, kind, value, route["id"])).fetchone()

    def _get_credit(self, req, tenant: str) -> Response:
        conn = self.store.conn()
        row = self._credit(conn, req, tenant)
        if row is None:
            return not_found()
        allocations = self._allocations(conn, [row["id"]]).get(row["id"], [])
        return json_response(
            envelope(CREDIT_KINDS[row["kind"]][0], [credit_json(row, allocations)])
        )

    def _delete_allocation(self, req, tenant: str) -> Response:
        """DELETE /CreditNotes/{id}/Allocations/{AllocationID} (and the same under /Prepayments
        and /Overpayments): answers the Allocation with IsDeleted true."""
        allocation_id = req.notes["route"]["sub_id"].lower()
        with self.store.write() as conn:
            credit = self._credit(conn, req, tenant)
            allocation = (
                credit
                and conn.execute(
                    """SELECT a.*, i.number AS invoice_number FROM xero_allocations a
                   JOIN xero_invoices i ON i.id = a.invoice_id
                   WHERE a.id = ? AND a.credit_id = ?""",
                    (allocation_id, credit["id"]),
                ).fetchone()
            )
            if not allocation:
                return not_found()
            try:
                domain.delete_allocation(conn, allocation, clock.now_ms())
            except domain.XeroRefused as exc:
                element = {
                    **({"CreditNoteID": credit["id"]} if credit["kind"] == "CREDITNOTE" else {}),
                    "ValidationErrors": [{"Message": m} for m in exc.messages],
                }
                return validation_exception([element])
            label = CREDIT_KINDS[credit["kind"]][0][:-1]
            details = f"{label} allocation of {allocation['amount'] / 100:.2f} removed."
            now = clock.now_ms()
            user = self._user(req)
            domain.add_history(conn, tenant, allocation["invoice_id"], "Edited", details, user, now)
            allocation = conn.execute(
                """SELECT a.*, i.number AS invoice_number FROM xero_allocations a
                   JOIN xero_invoices i ON i.id = a.invoice_id WHERE a.id = ?""",
                (allocation_id,),
            ).fetchone()
        note_change(req, tenant, allocation["invoice_id"])
        return json_response(allocation_json(allocation))

    # --- organisation ---------------------------------------------------------------------------

    def _organisation(self, req, tenant: str) -> Response:
        conn = self.store.conn()
        firm = conn.execute("SELECT * FROM firms WHERE tenant_id = ?", (tenant,)).fetchone()
        org = domain.organisation(conn, tenant)
        return json_response(envelope("Organisations", [organisation_json(org, firm)]))


def _unitdp(value) -> int:
    """unitdp=4 asks for unit amounts with four decimals; anything else keeps two."""
    return 4 if (value or "").strip() == "4" else 2


def _echo(element: dict) -> dict:
    """What of a refused element to echo back: the fields the answer's schema has."""
    return {key: value for key, value in element.items() if key not in IGNORED_FIELDS}


def _invoice_changes(row, element: dict) -> tuple[dict, str | None, list[str]]:
    """(columns to change, the status asked for, warnings) from an invoice element."""
    changes: dict = {}
    status = None
    warnings: list[str] = []
    for field, value in element.items():
        if field in IGNORED_FIELDS or value is None:
            continue
        if field == "InvoiceNumber":
            changes["number"] = clean_text(value)
        elif field == "Reference":
            changes["reference"] = clean_text(value)
        elif field in ("Date", "DueDate"):
            try:
                changes["date" if field == "Date" else "due_date"] = clock.parse_xero_date(value)
            except (TypeError, ValueError):
                raise ValueError(f"{field} is not a date: {value!r}") from None
        elif field == "Status":
            status = str(value).upper()
        elif field == "Type":
            if value != "ACCREC":
                raise ValueError("An invoice's Type cannot be changed")
        elif field == "CurrencyCode":
            if str(value).upper() != row["currency"]:
                warnings.append("The sandbox keeps an invoice's currency: CurrencyCode not changed")
        elif field == "Contact":
            if not _same_contact(row, value):
                warnings.append("The sandbox keeps an invoice's contact: Contact not changed")
        elif field == "LineItems":
            if not _same_lines(row, value):
                warnings.append("The sandbox keeps an invoice's line items: LineItems not changed")
        elif field in NOT_KEPT and value != NOT_KEPT[field]:
            warnings.append(f"The sandbox does not keep {field}: not changed")
    if "number" in changes and changes["number"] == "":
        del changes["number"]  # an empty number leaves the number as it is
    return changes, status, warnings


def _same_contact(row, contact) -> bool:
    if not isinstance(contact, dict):
        return False
    if contact.get("ContactID"):
        return str(contact["ContactID"]).lower() == row["contact_id"]
    return not contact.get("Name") or contact["Name"] == row["contact_name"]


def _same_lines(row, lines) -> bool:
    """Line items sent back as they were read (their amounts add up to the same subtotal)."""
    if not isinstance(lines, list):
        return False
    if not lines:
        return True
    try:
        total = sum(round(float(line.get("LineAmount") or 0) * 100) for line in lines)
    except (AttributeError, TypeError, ValueError):
        return False
    return total == row["sub_total"]


def _failed(element: dict, *messages: str, flag: str = "HasErrors") -> dict:
    """The element echoed back with its errors (a Payment flags them as HasValidationErrors)."""
    return {
        **element,
        flag: True,
        "StatusAttributeString": "ERROR",
        "ValidationErrors": [{"Message": message} for message in messages],
    }
