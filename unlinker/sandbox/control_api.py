"""The control API under /_sandbox/ (no auth: the sandbox binds to 127.0.0.1): reset, seed and
build data, read the request log and the upstream state, set faults, limits and tokens.
unlinker/sandbox/control.py is its Python client."""

import re

from . import builder, domain, seed
from .actionstep_query import RESOURCES, find
from .oauth import DEFAULT_SCOPES
from .web import BadRequest, json_response
from .xero_query import ALLOCATION_SELECT, PAYMENT_SELECT, history_json, invoice_json, payment_json

LIMIT_EXTRAS = {"access_token_ttl", "idempotency_ttl"}
BILL_OPTIONS = (
    "tax",
    "status",
    "number",
    "invoice_date",
    "reference",
    "link",
    "xero_status",
    "xero_total",
    "amount_credited",
    "allocations",
    "duplicate",
)
ORGANISATION_OPTIONS = (
    "period_lock_date",
    "end_of_year_lock_date",
    "timezone",
    "base_currency",
    "invoice_numbers",
)
MAX_BUILD_BILLS = 20_000
PAYMENT_OPTIONS = ("status", "reason", "date", "reference", "link", "xero_status", "batch")


def _error(message: str, status: int = 400):
    return json_response({"error": message}, status)


class ControlApi:
    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.store = sandbox.store
        self.routes = {
            ("GET", "/_sandbox/health"): lambda req: {"ok": True},
            ("POST", "/_sandbox/reset"): self.reset,
            ("POST", "/_sandbox/seed"): self.seed,
            ("POST", "/_sandbox/build"): self.build,
            ("GET", "/_sandbox/requests"): self.requests,
            ("GET", "/_sandbox/faults"): lambda req: sandbox.faults.snapshot(),
            ("POST", "/_sandbox/faults"): self.set_faults,
            ("DELETE", "/_sandbox/faults"): self.clear_faults,
            ("GET", "/_sandbox/rules"): self.rules,
            ("POST", "/_sandbox/rules"): self.set_rules,
            ("GET", "/_sandbox/limits"): self.limits,
            ("POST", "/_sandbox/limits"): self.set_limits,
            ("POST", "/_sandbox/tokens"): self.issue_tokens,
            ("POST", "/_sandbox/tokens/expire"): self.expire_tokens,
            ("GET", "/_sandbox/state/firms"): self.firms,
            ("GET", "/_sandbox/state/summary"): self.summary,
            ("GET", "/_sandbox/organisation"): self.organisation,
            ("POST", "/_sandbox/organisation"): self.set_organisation,
            ("GET", "/_sandbox/webhooks"): lambda req: sandbox.webhooks.snapshot(),
            ("POST", "/_sandbox/webhooks"): self.set_webhooks,
            ("POST", "/_sandbox/webhooks/send"): self.send_webhook,
            ("POST", "/_sandbox/webhooks/intent"): lambda req: sandbox.webhooks.intent_to_receive(),
        }
        self.state_routes = (
            (re.compile(r"^/_sandbox/state/actionstep/(\w+)(?:/(\d+))?$"), self.actionstep_state),
            (re.compile(r"^/_sandbox/state/xero/invoices(?:/([\w-]+))?$"), self.xero_invoices),
            (re.compile(r"^/_sandbox/state/xero/payments/([\w-]+)$"), self.xero_payment),
            (re.compile(r"^/_sandbox/state/xero/history/([\w-]+)$"), self.xero_history),
        )

    def handle(self, req):
        handler, args = self.routes.get((req.method, req.path.rstrip("/"))), ()
        if handler is None and req.method == "GET":
            for pattern, state_handler in self.state_routes:
                match = pattern.match(req.path)
                if match:
                    handler, args = state_handler, match.groups()
        if handler is None:
            return _error(f"No control endpoint {req.method} {req.path}", 404)
        try:
            answer = handler(req, *args)
        except (BadRequest, ValueError, KeyError, TypeError) as exc:
            return _error(f"{type(exc).__name__}: {exc}")
        return answer if hasattr(answer, "wsgi") else json_response(answer)

    def rules(self, req):
        conn = self.store.conn()
        lenient = [row["name"] for row in conn.execute("SELECT name FROM lenient_rules")]
        return {"lenient": sorted(lenient), "rules": domain.LENIENT_RULES}

    def set_rules(self, req):
        lenient = self._body(req).get("lenient", [])
        if not isinstance(lenient, list):
            raise BadRequest("lenient must be a list of rule names")
        with self.store.write() as conn:
            return {"lenient": domain.set_lenient(conn, [str(rule) for rule in lenient])}

    @staticmethod
    def _body(req) -> dict:
        body = req.json()
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise BadRequest("The body must be a JSON object")
        return body

    # --- data ---------------------------------------------------------------------------------

    def reset(self, req) -> dict:
        self.sandbox.reset()
        return {"ok": True}

    def seed(self, req) -> dict:
        body = self._body(req)
        result = seed.seed(
            self.store,
            invoices=int(body["invoices"]),
            seed=int(body.get("seed", 42)),
            payments_per_invoice=tuple(body.get("payments_per_invoice", (0, 2))),
            name=body.get("name", "Demo Law Firm"),
            if_empty=bool(body.get("if_empty", False)),
        )
        return result or {"skipped": "the sandbox already has data"}

    def build(self, req) -> dict:
        """A firm from a JSON description: {"name", "bills": [{"total", ..., "payments": [...]}]}
        (options as FirmBuilder.add_bill / add_payment; "matter" and "contact" are names)."""
        body = self._body(req)
        organisation = body.get("organisation") or {}
        unknown = set(organisation) - set(ORGANISATION_OPTIONS)
        if unknown:
            raise BadRequest(f"unknown organisation settings: {', '.join(sorted(unknown))}")
        if len(body.get("bills", [])) > MAX_BUILD_BILLS:
            raise BadRequest(f"at most {MAX_BUILD_BILLS} bills per build: seed for more")
        firm = builder.FirmBuilder(body.get("name", "Test Firm"), **organisation)
        matters: dict[str, builder.Matter] = {}
        for spec in body.get("bills", []):
            client = spec.get("contact", "Test Client")
            key = (spec.get("matter") or f"{client} - general", client)
            if key not in matters:
                contact = next((c for c in firm.contacts if c.name == client), None)
                matters[key] = firm.add_matter(key[0], contact or firm.add_contact(client))
            options = {name: spec[name] for name in BILL_OPTIONS if name in spec}
            bill = firm.add_bill(spec.get("total", "1100.00"), matter=matters[key], **options)
            for payment in spec.get("payments", []):
                options = {name: payment[name] for name in PAYMENT_OPTIONS if name in payment}
                firm.add_payment(bill, payment.get("amount"), **options)
        return {"firm": firm.save(self.store), "bills": [_built(bill) for bill in firm.bills]}

    def requests(self, req) -> dict:
        return {"requests": self.sandbox.log.read(req.args), "last_id": self.sandbox.log.last_id()}

    def organisation(self, req) -> dict:
        tenant = req.args.get("tenant_id", "").lower()
        if not tenant:
            raise BadRequest("tenant_id is required")
        return domain.organisation(self.store.conn(), tenant)

    def set_organisation(self, req) -> dict:
        """Change a tenant's Xero organisation: {"tenant_id", "period_lock_date",
        "end_of_year_lock_date" (ISO dates or null), "timezone", "base_currency",
        "invoice_numbers" ("unique" or "duplicates")}."""
        body = self._body(req)
        tenant = str(body.pop("tenant_id", "")).lower()
        unknown = set(body) - set(ORGANISATION_OPTIONS)
        if unknown:
            raise BadRequest(f"unknown organisation settings: {', '.join(sorted(unknown))}")
        if body.get("invoice_numbers", "unique") not in builder.INVOICE_NUMBER_RULES:
            raise BadRequest('invoice_numbers is "unique" or "duplicates"')
        for name in ("period_lock_date", "end_of_year_lock_date"):
            if name in body:
                body[name] = builder._iso_date_or_none(body[name])
        with self.store.write() as conn:
            if (
                conn.execute("SELECT 1 FROM firms WHERE tenant_id = ?", (tenant,)).fetchone()
                is None
            ):
                raise BadRequest(f"no tenant {tenant!r}")
            org = {**domain.organisation(conn, tenant), **body}
            columns = ", ".join(org)
            marks = ", ".join("?" * len(org))
            conn.execute(
                f"INSERT OR REPLACE INTO xero_organisations ({columns}) VALUES ({marks})",  # noqa: S608
                tuple(org.values()),
            )
        return org

    def set_webhooks(self, req) -> dict:
        """{"url", "key", "delay_seconds"?, "timeout_seconds"?}: where to send signed
        deliveries when invoices change (an empty url stops them)."""
        body = self._body(req)
        return self.sandbox.webhooks.configure(
            str(body.get("url") or ""),
            str(body.get("key") or ""),
            body.get("delay_seconds"),
            body.get("timeout_seconds"),
        )

    def send_webhook(self, req) -> dict:
        """Send one delivery now: {"tenant_id", "invoice_ids": [...], "event_type"?: "UPDATE",
        "bad_signature"?: false} or {"body": "<raw text>"} to resend one exactly."""
        body = self._body(req)
        hooks = self.sandbox.webhooks
        if "body" in body:
            raw = str(body["body"]).encode()
            return hooks.send([], body=raw, bad_signature=bool(body.get("bad_signature")))
        events = [
            hooks.event(
                req.base_url,
                str(body["tenant_id"]).lower(),
                invoice_id,
                str(body.get("event_type", "UPDATE")),
            )
            for invoice_id in body.get("invoice_ids", [])
        ]
        return hooks.send(events, bad_signature=bool(body.get("bad_signature")))

    # --- knobs --------------------------------------------------------------------------------

    def set_faults(self, req) -> dict:
        body = self._body(req)
        self.sandbox.faults.configure(_api(body), body)
        return self.sandbox.faults.snapshot()

    def clear_faults(self, req) -> dict:
        self.sandbox.faults.clear(req.args.get("api"))
        return self.sandbox.faults.snapshot()

    def limits(self, req) -> dict:
        sandbox = self.sandbox
        answer = {api: limiter.snapshot() for api, limiter in sandbox.limiters.items()}
        for api in answer:
            answer[api]["access_token_ttl"] = sandbox.oauth.ttls[api]
        answer["xero"]["idempotency_ttl"] = sandbox.idempotency.ttl
        return answer

    def set_limits(self, req) -> dict:
        """Change some of an API's limits: {"api": "xero", "per_minute": 60, ...}."""
        body = self._body(req)
        api = _api(body)
        changes = {k: v for k, v in body.items() if k != "api" and k not in LIMIT_EXTRAS}
        self.sandbox.limiters[api].configure(changes)
        if "access_token_ttl" in body:
            self.sandbox.oauth.ttls[api] = int(body["access_token_ttl"])
        if "idempotency_ttl" in body:
            self.sandbox.idempotency.ttl = float(body["idempotency_ttl"])
        return self.limits(req)

    def issue_tokens(self, req) -> dict:
        """A token pair as if an admin had clicked "Allow access" (client id sandbox-control)."""
        body = self._body(req)
        api = _api(body)
        firms = self.store.conn().execute("SELECT id, orgkey FROM firms ORDER BY id").fetchall()
        firm_id = None
        if api == "actionstep":
            chosen = [f for f in firms if f["orgkey"] == body.get("orgkey")] or firms[:1]
            if not chosen:
                raise BadRequest("no organisation: seed or build a firm first")
            firm_id = chosen[0]["id"]
        scope = body.get("scope") or DEFAULT_SCOPES[api]
        with self.store.write() as conn:
            return self.sandbox.oauth.issue(
                conn,
                api,
                str(body.get("client_id") or "sandbox-control"),
                body.get("client_secret"),
                req.base_url,
                firm_id=firm_id,
                scope=scope,
                refresh=api == "actionstep" or "offline_access" in scope.split(),
                new_grant=True,
            )

    def expire_tokens(self, req) -> dict:
        api = self._body(req).get("api")
        return {"expired": self.sandbox.oauth.expire_access_tokens(api)}

    # --- state --------------------------------------------------------------------------------

    def firms(self, req) -> dict:
        rows = self.store.conn().execute("SELECT * FROM firms ORDER BY id")
        return {"firms": [dict(row) for row in rows]}

    def summary(self, req) -> dict:
        """Record counts by status, for every firm together."""
        conn = self.store.conn()
        queries = {
            "bills": "SELECT status, COUNT(*) FROM bills GROUP BY 1",
            "billpayments": "SELECT status, COUNT(*) FROM billpayments GROUP BY 1",
            "xeroinvoicelinks": "SELECT link_status, COUNT(*) FROM xeroinvoicelinks GROUP BY 1",
            "xeropaymentlinks": "SELECT link_status, COUNT(*) FROM xeropaymentlinks GROUP BY 1",
            "xero_invoices": "SELECT status, COUNT(*) FROM xero_invoices GROUP BY 1",
            "xero_payments": "SELECT status, COUNT(*) FROM xero_payments GROUP BY 1",
        }
        return {name: dict(conn.execute(sql).fetchall()) for name, sql in queries.items()}

    def actionstep_state(self, req, resource_name: str, record_id: str | None):
        """Records as the REST API renders them, from every firm, paged as the API pages."""
        resource = RESOURCES.get(resource_name)
        if resource is None:
            return _error(f"No resource {resource_name}", 404)
        ids = [int(record_id)] if record_id else None
        page = find(self.store, resource, req.args, None, ids)
        records = [resource.render(row) for row in page.rows]
        if record_id:
            return records[0] if records else _error(f"No {resource_name} {record_id}", 404)
        return {resource_name: records, "recordCount": page.record_count}

    def xero_invoices(self, req, invoice_id: str | None):
        conn = self.store.conn()
        if invoice_id:
            rows = conn.execute("SELECT * FROM xero_invoices WHERE id = ?", (invoice_id.lower(),))
        else:
            number = req.args.get("number", "")
            rows = conn.execute(
                "SELECT * FROM xero_invoices WHERE number = ? ORDER BY seq", (number,)
            )
        invoices = []
        for row in rows.fetchall():
            payments = conn.execute(
                "SELECT * FROM xero_payments WHERE invoice_id = ? AND status = 'AUTHORISED'",
                (row["id"],),
            ).fetchall()
            credits = conn.execute(
                f"{ALLOCATION_SELECT} AND a.invoice_id = ? ORDER BY a.seq", (row["id"],)
            ).fetchall()
            invoices.append(invoice_json(row, payments, credits=credits))
        if invoice_id:
            return invoices[0] if invoices else _error(f"No Xero invoice {invoice_id}", 404)
        return {"Invoices": invoices}

    def xero_history(self, req, record_id: str) -> dict:
        rows = self.store.conn().execute(
            "SELECT * FROM xero_history WHERE record_id = ? ORDER BY seq", (record_id.lower(),)
        )
        return {"HistoryRecords": [history_json(row) for row in rows]}

    def xero_payment(self, req, payment_id: str):
        sql = f"{PAYMENT_SELECT} WHERE p.id = ?"
        row = self.store.conn().execute(sql, (payment_id.lower(),)).fetchone()
        return payment_json(row) if row else _error(f"No Xero payment {payment_id}", 404)


def _api(body: dict) -> str:
    api = body.get("api")
    if api not in ("actionstep", "xero"):
        raise BadRequest('"api" must be "actionstep" or "xero"')
    return api


def _built(bill: builder.Bill) -> dict:
    return {
        "id": bill.id,
        "number": bill.number,
        "link_id": bill.link_id,
        "xero_invoice_id": bill.xero_invoice_id,
        "duplicate_xero_invoice_id": bill.duplicate.id if bill.duplicate else None,
        "allocations": [
            {"kind": a.kind, "credit_id": a.credit_id, "allocation_id": a.id, "amount": a.amount}
            for a in (bill.xero.allocations if bill.xero else ())
        ],
        "payments": [
            {
                "id": payment.id,
                "link_id": payment.link_id,
                "xero_payment_id": payment.xero.id if payment.xero else None,
                "batch_payment_id": payment.xero.batch_payment_id if payment.xero else None,
            }
            for payment in bill.payments
        ],
    }
