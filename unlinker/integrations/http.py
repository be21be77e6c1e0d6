"""What both API clients share: the token, the throttle, error mapping, retries and counting.

Retry policy. A GET is retried inside the client: on a per-minute or concurrency 429 after
Retry-After (or a backoff when the API sends none), and on a 5xx or an unreachable API after an
exponential backoff with jitter, at most MAX_RETRIES times each. A day-limit 429 is raised at
once, and so is a Retry-After longer than RETRY_AFTER_CAP_SECONDS: blocking a worker that long
helps nobody. A write is never retried here: the caller re-reads the upstream state first,
because a write that timed out may well have been applied.

Audit. A client may be given an `audit` (see `CallAudit`): it is told of every request just
before it goes out and of what came back, so that the caller can keep a record of every request
its work sent — a write whose answer never came included.
"""

import json
import logging
import random
import time
from contextlib import nullcontext
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from django.conf import settings

from .errors import (
    ApiError,
    AuthExpired,
    Forbidden,
    NotFound,
    RateLimited,
    ServerError,
    Throttled,
    Unreachable,
    ValidationFailed,
)
from .throttle import Throttle, time_scale
from .tokens import TokenSource

logger = logging.getLogger(__name__)

MAX_RETRIES = 3
BACKOFF_SECONDS = 0.5  # before the first retry; doubles with each further one
RETRY_AFTER_CAP_SECONDS = 60.0

_ERRORS_BY_STATUS: dict[int, type[ApiError]] = {
    401: AuthExpired,  # only reached after the one refresh
    403: Forbidden,
    404: NotFound,
}

_TRANSPORT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


class CallRecord(Protocol):
    def answered(self, status: int, content: bytes, seconds: float) -> None: ...

    def lost(self, error: str, seconds: float) -> None: ...


class CallAudit(Protocol):
    def sending(
        self, api: str, method: str, url: str, params: dict | None, body: Any, headers: dict
    ) -> CallRecord:
        """Called before the request is sent; raising stops it from being sent."""
        ...


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


class ApiClient:
    api = ""  # "actionstep" or "xero", carried by every error

    def __init__(
        self, tokens: TokenSource, throttle: Throttle | None = None, timeout: float | None = None
    ):
        self.tokens = tokens
        self.throttle = throttle
        self.timeout = timeout or settings.HTTP_TIMEOUT_SECONDS
        self.session = requests.Session()
        self.requests_made = 0  # every request sent, retries included (benchmarks, sync runs)
        self.audit: CallAudit | None = None
        self.sleep = time.sleep  # tests replace it to observe the waits without waiting

    def __repr__(self):
        return f"<{type(self).__name__} requests_made={self.requests_made}>"

    def request(
        self,
        method: str,
        url: str,
        *,
        params: dict | None = None,
        body: dict | None = None,
        headers: dict | None = None,
    ) -> Any:
        """Send `body` as JSON; the answer's JSON decoded, None when it has none (204)."""
        retry = method == "GET"
        rate_retries = failure_retries = 0
        while True:
            try:
                return self._authorised(method, url, params, body, headers)
            except Throttled:
                raise  # the throttle already waited as long as it may
            except RateLimited as exc:
                delay = exc.retry_after
                if delay is None:
                    delay = self._backoff(rate_retries)
                if (
                    not retry
                    or exc.is_daily
                    or rate_retries == MAX_RETRIES
                    or delay > RETRY_AFTER_CAP_SECONDS
                ):
                    raise
                rate_retries += 1
            except (ServerError, Unreachable):
                if not retry or failure_retries == MAX_RETRIES:
                    raise
                delay = self._backoff(failure_retries)
                failure_retries += 1
            logger.info("%s %s failed; retrying in %.2fs", method, urlsplit(url).path, delay)
            self.sleep(delay)

    def _backoff(self, retries_so_far: int) -> float:
        return BACKOFF_SECONDS * 2**retries_so_far * random.uniform(0.5, 1.5) / time_scale()

    def _authorised(self, method, url, params, body, headers) -> Any:
        token = self.tokens.access_token()
        response = self._send(method, url, token, params, body, headers)
        if response.status_code == 401:
            # Tokens can be revoked or rotated by another process before they expire.
            response = self._send(method, url, self.tokens.refresh(token), params, body, headers)
        return self._decode(response)

    def _send(self, method, url, token, params, body, headers) -> requests.Response:
        with self.throttle.slot() if self.throttle else nullcontext():
            # Told once the request has its place, so that a request the throttle never let out
            # is not on the record; the token is never shown to the audit.
            record = (
                self.audit.sending(self.api, method, url, params, body, dict(headers or {}))
                if self.audit
                else None
            )
            self.requests_made += 1
            started = time.monotonic()
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=body,
                    headers={**(headers or {}), "Authorization": f"Bearer {token}"},
                    timeout=self.timeout,
                )
            except _TRANSPORT_ERRORS as exc:
                if record:
                    record.lost(type(exc).__name__, time.monotonic() - started)
                raise Unreachable(
                    f"{method} {urlsplit(url).path}: {type(exc).__name__}", api=self.api
                ) from exc
            if record:
                record.answered(response.status_code, response.content, time.monotonic() - started)
        logger.debug("%s %s -> %s", method, urlsplit(url).path, response.status_code)
        self._observe(response)
        return response

    def _decode(self, response: requests.Response) -> Any:
        if not response.ok:
            raise self._error(response)
        if response.status_code == 204 or not response.content.strip():
            return None
        try:
            return json.loads(response.content, parse_float=Decimal)
        except ValueError:
            raise Unreachable(
                f"{self.api} answered HTTP {response.status_code} with malformed JSON",
                status=response.status_code,
                api=self.api,
            ) from None

    def _error(self, response: requests.Response) -> ApiError:
        status = response.status_code
        try:
            messages = self._error_messages(json.loads(response.content))
        except ValueError:
            messages = []  # e.g. Xero's 404 page: nothing worth showing
        text = "; ".join(messages) or f"{self.api} answered HTTP {status}"
        if status == 429:
            return RateLimited(
                text,
                retry_after=_seconds(response.headers.get("Retry-After")),
                problem=response.headers.get("X-Rate-Limit-Problem", ""),
                status=status,
                api=self.api,
            )
        if status in (400, 422):
            return ValidationFailed(messages or [text], status=status, api=self.api)
        kind = _ERRORS_BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
        return kind(text, status=status, api=self.api)

    def _error_messages(self, body: Any) -> list[str]:
        """The human-readable messages of an error body, in the API's own format."""
        raise NotImplementedError

    def _observe(self, response: requests.Response) -> None:
        """Called with every response, e.g. to record the allowance left."""
