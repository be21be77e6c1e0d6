"""How a background run records the exception that stopped it."""

REASON_MAX = 2000


def failure_reason(exc: BaseException) -> str:
    """The exception's type and message, as a run's `error` shows it to the people reading the
    page (the traceback goes to the worker's log): "AuthExpired: Token refresh refused"."""
    message = getattr(exc, "message", "") or str(exc)
    reason = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return reason[:REASON_MAX]
