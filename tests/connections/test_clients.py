"""Clients built for a stored connection: its stored tokens and its tenants' shared throttles."""

import pytest

from unlinker.connections.clients import actionstep_client_for, xero_client_for
from unlinker.connections.models import Connection, OAuthCredential, Provider
from unlinker.connections.tokens import CredentialTokenSource
from unlinker.integrations.errors import AuthExpired


@pytest.fixture
def pair(db):
    connection = Connection.objects.create(
        name="Smith & Co",
        actionstep_org_key="smithco",
        actionstep_api_endpoint="https://ap-southeast-2.actionstep.com/api/",
        xero_tenant_id="tenant-9",
    )
    for provider in (Provider.ACTIONSTEP, Provider.XERO):
        OAuthCredential.objects.create(connection=connection, provider=provider, access_token="a")
    return connection


def test_clients_of_a_connection(pair):
    actionstep, xero = actionstep_client_for(pair), xero_client_for(pair)
    assert actionstep.base_url == "https://ap-southeast-2.actionstep.com/api/rest"
    assert isinstance(actionstep.tokens, CredentialTokenSource)
    assert actionstep.throttle.name == "actionstep:smithco"
    assert xero.tenant_id == "tenant-9" and xero.throttle.name == "xero:tenant-9"
    assert xero.throttle.concurrent is not None and actionstep.throttle.concurrent is None
    # every client of a tenant shares its throttle
    assert xero_client_for(pair).throttle is xero.throttle


def test_a_connection_without_credentials_must_be_reauthorised(pair):
    OAuthCredential.objects.filter(connection=pair, provider=Provider.XERO).delete()
    with pytest.raises(AuthExpired):
        xero_client_for(pair)
    pair.actionstep_api_endpoint = ""
    with pytest.raises(AuthExpired):
        actionstep_client_for(pair)
