"""The WSGI application: the two APIs' mounts, the control API, injected faults and the log.

    gunicorn 'unlinker.sandbox.app:make_app()' --workers 1 --threads 8 --bind 127.0.0.1:8001

One worker process only: rate-limit counters, faults and idempotency keys live in its memory.
"""

import contextlib
import socket
import sys
import time
import traceback

from . import actionstep, config, xero
from .actionstep import ActionstepApi
from .control_api import ControlApi
from .faults import Faults
from .idempotency import Idempotency
from .identity import IdentityApi
from .limits import ActionstepLimiter, XeroLimiter
from .oauth import OAuth
from .reqlog import RequestLog
from .store import Store
from .web import Request, Response, text_response
from .webhooks import Webhooks
from .xero import XeroApi

INDEX = """Unlinker sandbox: Actionstep and Xero stand-ins (docs/api-contract.md)
/actionstep/api/oauth/authorize, /actionstep/api/oauth/token, /actionstep/api/rest/<resource>
/xero/identity/connect/authorize, /xero/identity/connect/token, /xero/identity/connect/revocation
/xero/api/connections (and /Connections), /xero/api/api.xro/2.0/ (Invoices, Payments,
CreditNotes, Prepayments, Overpayments, BatchPayments, Organisation, .../History, .../Allocations)
/_sandbox/... control API (reset, seed, build, organisation, webhooks, requests, faults, limits,
tokens, state)
"""


class Sandbox:
    def __init__(self, store: Store):
        self.store = store
        self.faults = Faults()
        self.idempotency = Idempotency()
        self.limiters = {"actionstep": ActionstepLimiter(), "xero": XeroLimiter()}
        self.oauth = OAuth(store, config.token_ttls())
        self.log = RequestLog(store)
        self.actionstep = ActionstepApi(store, self.oauth, self.limiters["actionstep"])
        self.xero = XeroApi(store, self.oauth, self.limiters["xero"], self.idempotency)
        self.identity = IdentityApi(store, self.oauth)
        self.webhooks = Webhooks()
        self.control = ControlApi(self)
        # (api, path prefix, handler, whether random faults apply: the REST / accounting calls)
        self.routes = (
            ("actionstep", "/actionstep/api/oauth/authorize", self._authorize("actionstep"), False),
            ("actionstep", "/actionstep/api/oauth/token", self._token("actionstep"), False),
            ("actionstep", "/actionstep/api/rest/", self.actionstep.handle, True),
            ("xero", "/xero/identity/connect/authorize", self._authorize("xero"), False),
            ("xero", "/xero/identity/connect/token", self._token("xero"), False),
            ("xero", "/xero/identity/connect/revocation", self.oauth.revoke, False),
            ("xero", "/xero/api/connections", self.identity.connections, False),
            ("xero", "/xero/api/Connections", self.identity.connections, False),
            ("xero", f"{xero.ACCOUNTING}/", self.xero.handle, True),
        )

    def _authorize(self, api: str):
        return lambda req: self.oauth.authorize(req, api)

    def _token(self, api: str):
        def token(req):
            if req.method != "POST":
                return text_response("Use POST", 405)
            return self.oauth.token(req, api)

        return token

    def reset(self) -> None:
        """Empty every table and forget faults, limits, counters and idempotency keys."""
        self.store.reset()
        self.faults.clear()
        self.idempotency.reset()
        self.webhooks.reset()
        for limiter in self.limiters.values():
            limiter.reset()
        self.oauth.ttls.update(config.token_ttls())

    def __call__(self, environ, start_response):
        req = Request(environ)
        if req.path.startswith("/_sandbox/"):
            return self.control.handle(req).wsgi(start_response)
        for api, prefix, handler, random_faults in self.routes:
            if req.path.startswith(prefix):
                return self._serve(req, api, handler, random_faults).wsgi(start_response)
        for api in ("actionstep", "xero"):
            if req.path.startswith(f"/{api}/"):
                return self._serve(req, api, _not_found, False).wsgi(start_response)
        return text_response(INDEX, 200 if req.path == "/" else 404).wsgi(start_response)

    def _serve(self, req: Request, api: str, handler, random_faults: bool) -> Response:
        started, clock_start = time.time(), time.perf_counter()
        target = f"{req.path}?{req.query_string}" if req.query_string else req.path
        fault = self.faults.pick(api, req.method, target, random_ok=random_faults)
        if fault is None:
            try:
                response = handler(req)
            except Exception:
                traceback.print_exc(file=sys.stderr)
                response = _server_error(api)
            # A write that succeeded acted, whatever becomes of its answer: the log says so, so
            # that a test can count the writes that changed something.
            req.notes["acted"] = req.method != "GET" and 200 <= response.status < 300
            fault = self.faults.pick(api, req.method, target, random_ok=False, after=True)
        self._publish(req)  # changes made are notified, whatever the client hears of them
        if fault is None:
            self.log.record(req, api, response.status, None, started, _since(clock_start))
            return response
        # The log is written before the fault plays out: a test that saw the connection drop or
        # time out must find the request in the log.
        if fault == "drop":
            self.log.record(req, api, None, fault, started, _since(clock_start))
            return _drop(req)
        if fault == "timeout":
            self.log.record(req, api, 504, fault, started, _since(clock_start))
            time.sleep(self.faults.timeout_seconds(api))
            return text_response("Gateway Timeout", 504)
        response = _fault_response(api, fault)
        self.log.record(req, api, response.status, fault, started, _since(clock_start))
        return response

    def _publish(self, req) -> None:
        events = [
            self.webhooks.event(req.base_url, tenant, invoice_id, kind)
            for tenant, invoice_id, kind in req.notes.get("invoice_events", ())
        ]
        self.webhooks.publish(events)


def _since(clock_start: float) -> float:
    return time.perf_counter() - clock_start


def _not_found(req) -> Response:
    return text_response(f"Nothing at {req.path}", 404)


def _server_error(api: str) -> Response:
    if api == "actionstep":
        return actionstep.error(500, "Internal Server Error", "The sandbox failed")
    return xero.problem(500, "An error occurred", "The sandbox failed")


def _fault_response(api: str, status: int) -> Response:
    return (actionstep.fault_response if api == "actionstep" else xero.fault_response)(status)


def _drop(req: Request) -> Response:
    """Close the connection without an answer. Only gunicorn hands the socket over; gunicorn
    then fails to write the response below and drops it quietly (EPIPE)."""
    sock = req.environ.get("gunicorn.socket")
    if sock is None:
        return text_response(
            "This server cannot drop connections: run the sandbox on gunicorn", 502
        )
    with contextlib.suppress(OSError):  # the client may be gone already
        sock.shutdown(socket.SHUT_RDWR)
    return Response(200)


def make_app(db_path=None) -> Sandbox:
    return Sandbox(Store(db_path or config.db_path()))
