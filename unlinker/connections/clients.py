"""The API clients of a stored connection, with its tokens and its tenants' shared throttles.

unlinker.integrations knows nothing of connections; this is where the two meet."""

from unlinker.integrations.actionstep import ActionstepClient
from unlinker.integrations.errors import AuthExpired
from unlinker.integrations.throttle import throttle_for
from unlinker.integrations.xero import XeroClient

from .models import Connection, OAuthCredential, Provider
from .tokens import CredentialTokenSource


def _tokens(connection: Connection, provider: str) -> CredentialTokenSource:
    credential = (
        OAuthCredential.objects.filter(connection=connection, provider=provider)
        .order_by("pk")
        .first()
    )
    if credential is None:
        raise AuthExpired(f"{connection} is not connected to {provider}", api=provider)
    return CredentialTokenSource.loaded(credential)


def xero_tokens_for(connection: Connection) -> CredentialTokenSource:
    return _tokens(connection, Provider.XERO)


def actionstep_client_for(connection: Connection) -> ActionstepClient:
    if not connection.actionstep_api_endpoint:
        raise AuthExpired(f"{connection} has no Actionstep API endpoint", api=Provider.ACTIONSTEP)
    return ActionstepClient(
        connection.actionstep_api_endpoint,
        _tokens(connection, Provider.ACTIONSTEP),
        throttle=throttle_for(Provider.ACTIONSTEP, connection.actionstep_org_key),
    )


def xero_client_for(connection: Connection) -> XeroClient:
    if not connection.xero_tenant_id:
        raise AuthExpired(f"{connection} is not paired with a Xero tenant", api=Provider.XERO)
    return XeroClient(
        connection.xero_tenant_id,
        xero_tokens_for(connection),
        throttle=throttle_for(Provider.XERO, connection.xero_tenant_id),
    )
