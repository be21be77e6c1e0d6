"""The tokens of a stored connection: how they are kept and how they are refreshed.

Refresh tokens rotate on every refresh and the old one stops working at once, so two workers
refreshing the same credential would lock each other out (invalid_grant). A refresh therefore
happens under a row lock on the credential, and whoever gets the lock second uses the pair the
first one stored.
"""

from datetime import datetime, timedelta

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from unlinker.integrations.errors import AuthExpired, ServerError, Unreachable

from .models import Connection, OAuthCredential, Provider

REFRESH_MARGIN = timedelta(seconds=60)


class TokensUnreadable(AuthExpired):
    """The stored tokens were encrypted with a key UNLINKER_TOKEN_KEY no longer holds: nothing
    can be sent with them until an admin restores that key or reconnects."""


def _readable(credential: OAuthCredential) -> OAuthCredential:
    if credential.tokens_unreadable:
        raise TokensUnreadable(
            f"{credential.get_provider_display()} {credential.UNREADABLE}",
            api=credential.provider,
        )
    return credential


def store_token(connection: Connection, provider: str, token: dict) -> OAuthCredential:
    """Keep a token response (from a callback or a refresh) as the side's one credential."""
    expires_in = int(token.get("expires_in") or 0)
    credential, _ = OAuthCredential.objects.update_or_create(
        connection=connection,
        provider=provider,
        defaults={
            "access_token": token["access_token"],
            "refresh_token": token.get("refresh_token", ""),
            "token_type": token.get("token_type", "Bearer"),
            "scope": token.get("scope", "") or "",
            "expires_at": timezone.now() + timedelta(seconds=expires_in) if expires_in else None,
            "last_refreshed_at": timezone.now(),
            "last_error": "",
            "last_error_at": None,
        },
    )
    return credential


def _expiring(expires_at: datetime | None) -> bool:
    return expires_at is not None and expires_at - REFRESH_MARGIN <= timezone.now()


def _oauth_settings(provider: str) -> tuple[str, str, str, str]:
    """Token URL, client id, client secret and how the client authenticates. Xero documents
    HTTP Basic; Actionstep's sample client posts the secret in the form."""
    if provider == Provider.XERO:
        return (
            settings.XERO_TOKEN_URL,
            settings.XERO_CLIENT_ID,
            settings.XERO_CLIENT_SECRET,
            "client_secret_basic",
        )
    return (
        settings.ACTIONSTEP_TOKEN_URL,
        settings.ACTIONSTEP_CLIENT_ID,
        settings.ACTIONSTEP_CLIENT_SECRET,
        "client_secret_post",
    )


def _refresh_grant(credential: OAuthCredential) -> dict:
    token_url, client_id, client_secret, auth_method = _oauth_settings(credential.provider)
    with OAuth2Session(client_id, client_secret, token_endpoint_auth_method=auth_method) as session:
        return dict(
            session.refresh_token(
                token_url,
                refresh_token=credential.refresh_token,
                timeout=settings.HTTP_TIMEOUT_SECONDS,
            )
        )


class CredentialTokenSource:
    """The tokens of one OAuthCredential row. The access token is kept in memory between calls
    and re-read from the database only when it is about to expire or was refused."""

    def __init__(self, credential_id: int):
        self.credential_id = credential_id
        self._token = ""
        self._expires_at: datetime | None = None

    @classmethod
    def loaded(cls, credential: OAuthCredential) -> "CredentialTokenSource":
        """A source starting from a row already read (saves reading it again)."""
        source = cls(credential.pk)
        source._remember(credential)
        return source

    def __repr__(self):
        return f"<CredentialTokenSource credential={self.credential_id}>"

    def access_token(self) -> str:
        if self._token and not _expiring(self._expires_at):
            return self._token
        credential = OAuthCredential.objects.get(pk=self.credential_id)
        if credential.access_token and not _expiring(credential.expires_at):
            return self._remember(credential)
        return self.refresh(credential.access_token)

    def refresh(self, stale_token: str) -> str:
        failure = None
        with transaction.atomic():
            credential = _readable(
                OAuthCredential.objects.select_for_update().get(pk=self.credential_id)
            )
            if (
                credential.access_token
                and credential.access_token != stale_token
                and not _expiring(credential.expires_at)
            ):
                return self._remember(credential)  # another process refreshed first
            try:
                token = _refresh_grant(credential)
            except OAuthError as exc:
                # The error code only: descriptions are free text from the provider.
                credential.last_error = f"Token refresh refused: {exc.error}"
                credential.last_error_at = timezone.now()
                credential.save(update_fields=["last_error", "last_error_at"])
                failure = AuthExpired(credential.last_error, api=credential.provider)
            except requests.HTTPError as exc:
                status = exc.response.status_code
                kind = ServerError if status >= 500 else Unreachable
                failure = kind(
                    f"the token endpoint answered HTTP {status}",
                    status=status,
                    api=credential.provider,
                )
            except (requests.RequestException, ValueError) as exc:
                failure = Unreachable(
                    f"the token endpoint did not answer ({type(exc).__name__})",
                    api=credential.provider,
                )
            else:
                credential = store_token(credential.connection, credential.provider, token)
                return self._remember(credential)
        # Raised outside the transaction so that the recorded error is committed.
        raise failure

    def _remember(self, credential: OAuthCredential) -> str:
        self._token = _readable(credential).access_token
        self._expires_at = credential.expires_at
        return self._token
