"""Python helpers for tests and benchmarks: a client of the sandbox's control API, and the
sandbox itself run in a child process. For example:

with SandboxServer(tmp_path / "sandbox.sqlite3") as server:
    sandbox = SandboxControl(server.base_url)
    sandbox.reset()
    firm = sandbox.seed(invoices=500)
    sandbox.set_faults("xero", rules=[{"path_contains": "/Payments/", "status": 503, "times": 1}])
    calls = sandbox.requests(api="xero", method="POST")
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from .config import ROOT


class SandboxControl:
    def __init__(self, base_url: str, timeout: float = 120.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    # The URLs clients are configured with (see docs/api-contract.md).
    @property
    def actionstep_authorize_url(self) -> str:
        return f"{self.base_url}/actionstep/api/oauth/authorize"

    @property
    def actionstep_token_url(self) -> str:
        return f"{self.base_url}/actionstep/api/oauth/token"

    @property
    def actionstep_api_url(self) -> str:
        return f"{self.base_url}/actionstep/api"

    @property
    def xero_authorize_url(self) -> str:
        return f"{self.base_url}/xero/identity/connect/authorize"

    @property
    def xero_token_url(self) -> str:
        return f"{self.base_url}/xero/identity/connect/token"

    @property
    def xero_connections_url(self) -> str:
        return f"{self.base_url}/xero/api/connections"

    @property
    def xero_api_url(self) -> str:
        return f"{self.base_url}/xero/api/api.xro/2.0"

    @property
    def xero_revocation_url(self) -> str:
        return f"{self.base_url}/xero/identity/connect/revocation"

    def _call(self, method: str, path: str, **kwargs):
        response = self.session.request(
            method, f"{self.base_url}/_sandbox/{path}", timeout=self.timeout, **kwargs
        )
        response.raise_for_status()
        return response.json()

    def health(self) -> bool:
        return bool(self._call("GET", "health").get("ok"))

    # --- data ---------------------------------------------------------------------------------

    def reset(self) -> None:
        """Empty every table; forget faults, limits, rate counters and idempotency keys."""
        self._call("POST", "reset")

    def seed(self, invoices: int, seed: int = 42, **options) -> dict:
        """Add a generated firm (options: payments_per_invoice, name, if_empty)."""
        return self._call("POST", "seed", json={"invoices": invoices, "seed": seed, **options})

    def build(
        self, bills: list[dict], name: str = "Test Firm", organisation: dict | None = None
    ) -> dict:
        """Add a firm made of exactly these bills (see FirmBuilder.add_bill / add_payment):
        [{"total": "110.00", "link": "Unlinked", "payments": [{"amount": "10.00"}],
        "allocations": [{"kind": "CREDITNOTE", "amount": "10.00"}]}, ...], and its Xero
        organisation's settings (period_lock_date, end_of_year_lock_date, timezone,
        base_currency, invoice_numbers). Answers the firm (its name made unique) and, per bill,
        its ids: id, link_id, xero_invoice_id, payments[...], allocations[...]."""
        body = {"name": name, "bills": bills, "organisation": organisation or {}}
        return self._call("POST", "build", json=body)

    def organisation(self, tenant_id: str) -> dict:
        return self._call("GET", "organisation", params={"tenant_id": tenant_id})

    def set_organisation(self, tenant_id: str, **settings) -> dict:
        """Change a tenant's lock dates (ISO dates or None), timezone, base_currency or
        invoice_numbers ("unique" or "duplicates")."""
        return self._call("POST", "organisation", json={"tenant_id": tenant_id, **settings})

    # --- knobs --------------------------------------------------------------------------------

    def set_faults(
        self,
        api: str,
        rates: dict | None = None,
        rules: list[dict] | None = None,
        seed: int | None = None,
        timeout_seconds: float | None = None,
    ) -> dict:
        """Replace the API's faults. rates: {"429": 0.1, "500": 0.05, "timeout": 0.01,
        "drop": 0.01}; rules: [{"method", "path_contains", "status", "times", "after"}]."""
        config = {"api": api, "rates": rates or {}, "rules": rules or [], "seed": seed}
        if timeout_seconds is not None:
            config["timeout_seconds"] = timeout_seconds
        return self._call("POST", "faults", json=config)

    def clear_faults(self, api: str | None = None) -> None:
        self._call("DELETE", "faults", params={"api": api} if api else None)

    def faults(self) -> dict:
        return self._call("GET", "faults")

    def set_lenient(self, *rules: str) -> list[str]:
        """Accept what the sandbox would refuse for these rules (domain.LENIENT_RULES); none
        restores every refusal. Reset restores them too."""
        return self._call("POST", "rules", json={"lenient": list(rules)})["lenient"]

    def set_limits(self, api: str, **limits) -> dict:
        """Xero: per_minute, concurrent, per_day, app_per_minute, time_scale, latency;
        Actionstep: per_minute, time_scale, latency; both: access_token_ttl; Xero:
        idempotency_ttl."""
        return self._call("POST", "limits", json={"api": api, **limits})

    def limits(self) -> dict:
        return self._call("GET", "limits")

    def issue_tokens(
        self, api: str, orgkey: str | None = None, scope: str = "", client_id: str = ""
    ) -> dict:
        """A token response as the API's token endpoint gives it, without the consent page.
        Without a scope: every scope the sandbox knows (Xero: with offline_access and openid,
        so a refresh token and an id_token come with it)."""
        body = {"api": api, "orgkey": orgkey, "scope": scope, "client_id": client_id}
        return self._call("POST", "tokens", json=body)

    def expire_tokens(self, api: str | None = None) -> int:
        """Expire the access tokens issued so far (refresh tokens keep working)."""
        return self._call("POST", "tokens/expire", json={"api": api})["expired"]

    # --- webhooks -----------------------------------------------------------------------------

    def set_webhooks(self, url: str, key: str, **options) -> dict:
        """Send signed deliveries to `url` when invoices change (delay_seconds,
        timeout_seconds); an empty url stops them."""
        return self._call("POST", "webhooks", json={"url": url, "key": key, **options})

    def webhooks(self) -> dict:
        """The configuration and the last deliveries, with the receiver's answers."""
        return self._call("GET", "webhooks")

    def send_webhook(
        self,
        tenant_id: str = "",
        invoice_ids=(),
        *,
        event_type: str = "UPDATE",
        bad_signature: bool = False,
        body: str | None = None,
    ) -> dict:
        """One delivery now (a wrong signature on demand; `body` resends a raw body)."""
        payload = {"bad_signature": bad_signature}
        if body is not None:
            payload["body"] = body
        else:
            payload.update(
                tenant_id=tenant_id, invoice_ids=list(invoice_ids), event_type=event_type
            )
        return self._call("POST", "webhooks/send", json=payload)

    def webhook_intent(self) -> dict:
        """Xero's intent-to-receive check: {"passed", "deliveries"}."""
        return self._call("POST", "webhooks/intent")

    # --- reading ------------------------------------------------------------------------------

    def requests(self, **filters) -> list[dict]:
        """The request log: since (an id), api, method, path_contains, status, limit."""
        params = {key: value for key, value in filters.items() if value is not None}
        return self._call("GET", "requests", params=params)["requests"]

    def last_request_id(self) -> int:
        """The id to pass as `since` to see only the requests made after this point."""
        return self._call("GET", "requests", params={"since": 2**62})["last_id"]

    def firms(self) -> list[dict]:
        return self._call("GET", "state/firms")["firms"]

    def summary(self) -> dict:
        return self._call("GET", "state/summary")

    def actionstep(self, resource: str, record_id: int | None = None, **filters):
        """Records as Actionstep renders them: one (by id) or a page of them (filters as the
        REST API takes them, e.g. bill_eq=12)."""
        path = f"state/actionstep/{resource}" + (f"/{record_id}" if record_id else "")
        return self._call("GET", path, params=filters)

    def xero_invoice(self, invoice_id: str) -> dict:
        return self._call("GET", f"state/xero/invoices/{invoice_id}")

    def xero_invoices(self, number: str) -> list[dict]:
        return self._call("GET", "state/xero/invoices", params={"number": number})["Invoices"]

    def xero_history(self, record_id: str) -> list[dict]:
        return self._call("GET", f"state/xero/history/{record_id}")["HistoryRecords"]

    def xero_payment(self, payment_id: str) -> dict:
        return self._call("GET", f"state/xero/payments/{payment_id}")


class SandboxServer:
    """`python -m unlinker.sandbox serve` (gunicorn, one worker) on a free port of 127.0.0.1,
    with its own database; its output goes to `log_path`."""

    STARTUP_SECONDS = 30

    def __init__(self, db_path: Path, log_path: Path | None = None, port: int | None = None):
        self.db_path = Path(db_path)
        self.log_path = Path(log_path or self.db_path.with_suffix(".log"))
        self.port = port or _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> "SandboxServer":
        command = [sys.executable, "-m", "unlinker.sandbox", "serve", f"--port={self.port}"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*command, f"--db={self.db_path}", "--quiet"],
                cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + self.STARTUP_SECONDS
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if requests.get(f"{self.base_url}/_sandbox/health", timeout=1).ok:
                    return self
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        log = self.log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"The sandbox did not start ({self.log_path}):\n{log}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def __enter__(self) -> "SandboxServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
