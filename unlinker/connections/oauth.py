"""The OAuth2 authorization-code flows, through Authlib's Django client (state kept in the
session and checked on the callback; PKCE for Xero)."""

from urllib.parse import urlsplit

from authlib.integrations.django_client import OAuth
from django.conf import settings


def oauth_app(provider: str):
    """Built per call so that settings changed at run time (tests, another deployment) apply."""
    registry = OAuth()
    if provider == "actionstep":
        return registry.register(
            name="actionstep",
            client_id=settings.ACTIONSTEP_CLIENT_ID,
            client_secret=settings.ACTIONSTEP_CLIENT_SECRET,
            authorize_url=settings.ACTIONSTEP_AUTHORIZE_URL,
            access_token_url=settings.ACTIONSTEP_TOKEN_URL,
            client_kwargs={
                "scope": settings.ACTIONSTEP_SCOPES,
                "timeout": settings.HTTP_TIMEOUT_SECONDS,
            },
        )
    if provider == "xero":
        return registry.register(
            name="xero",
            client_id=settings.XERO_CLIENT_ID,
            client_secret=settings.XERO_CLIENT_SECRET,
            authorize_url=settings.XERO_AUTHORIZE_URL,
            access_token_url=settings.XERO_TOKEN_URL,
            client_kwargs={
                "scope": settings.XERO_SCOPES,
                "code_challenge_method": "S256",
                "timeout": settings.HTTP_TIMEOUT_SECONDS,
            },
        )
    raise ValueError(f"unknown provider {provider!r}")


def authorize_origins() -> list[str]:
    """The origins of both providers' authorize URLs, and any that OAUTH_CONSENT_ORIGINS adds:
    where the connect buttons' forms may be redirected (the CSP's form-action)."""
    urls = [settings.ACTIONSTEP_AUTHORIZE_URL, settings.XERO_AUTHORIZE_URL]
    origins = [_origin(url) for url in urls] + list(settings.OAUTH_CONSENT_ORIGINS)
    return list(dict.fromkeys(origin for origin in origins if origin))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}"
