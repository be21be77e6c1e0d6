"""Where the clients get their access tokens: any object with `access_token()` and
`refresh(stale)`. The one backed by a stored connection (a refresh under a row lock) lives with
the connections: `unlinker.connections.tokens.CredentialTokenSource`."""

from typing import Protocol

from .errors import AuthExpired


class TokenSource(Protocol):
    def access_token(self) -> str:
        """A token that is not about to expire."""

    def refresh(self, stale_token: str) -> str:
        """A token other than `stale_token`, which the API refused or which is expiring."""


class StaticTokenSource:
    """A fixed token (tests, scripts, the OAuth callback before a credential exists)."""

    def __init__(self, token: str):
        self._token = token

    def __repr__(self):
        return "<StaticTokenSource>"

    def access_token(self) -> str:
        return self._token

    def refresh(self, stale_token: str) -> str:
        raise AuthExpired("the token was refused and cannot be refreshed")
