"""Typed errors of the API clients. Callers decide on retry by type, never by parsing text."""


class ApiError(Exception):
    """Base class. `status` is the HTTP status when there was a response."""

    retryable = False

    def __init__(self, message: str = "", *, status: int | None = None, api: str = ""):
        super().__init__(message)
        self.message = message
        self.status = status
        self.api = api


class AuthExpired(ApiError):
    """The token was refused even after a refresh, or the refresh token itself was refused
    (invalid_grant): the connection must be re-authorised by an admin."""


class RateLimited(ApiError):
    retryable = True

    def __init__(self, message="", *, retry_after: float | None = None, problem: str = "", **kw):
        super().__init__(message, **kw)
        self.retry_after = retry_after
        self.problem = problem  # Xero's X-Rate-Limit-Problem: minute, day, concurrent, appminute

    @property
    def is_daily(self) -> bool:
        return self.problem == "day"


class Throttled(RateLimited):
    """Our own throttle found no call slot within its maximum wait: no request was sent."""


class NotFound(ApiError):
    pass


class Forbidden(ApiError):
    """HTTP 403: the connection lacks a scope or no longer reaches the organisation."""


class ValidationFailed(ApiError):
    """The API refused the change (Xero ValidationException, Actionstep 400/422)."""

    def __init__(self, messages: list[str], **kw):
        super().__init__("; ".join(messages) or "validation failed", **kw)
        self.messages = messages


class ServerError(ApiError):
    retryable = True


class Unreachable(ApiError):
    """Timeout, refused or dropped connection, malformed response."""

    retryable = True
