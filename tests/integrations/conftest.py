import pytest

from unlinker.integrations.actionstep import ActionstepClient
from unlinker.integrations.tokens import StaticTokenSource
from unlinker.integrations.xero import XeroClient

AS_API = "https://as.test/api"
AS_REST = f"{AS_API}/rest"
XERO_API = "https://xero.test/api.xro/2.0"
TENANT = "tenant-1"


class CountingTokens(StaticTokenSource):
    """Hands out token-1, then token-2, ... on each refresh."""

    def __init__(self):
        super().__init__("token-1")
        self.refreshes = 0

    def refresh(self, stale_token):
        self.refreshes += 1
        self._token = f"token-{self.refreshes + 1}"
        return self._token


@pytest.fixture
def tokens():
    return CountingTokens()


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def actionstep(tokens, sleeps):
    client = ActionstepClient(AS_API, tokens, timeout=5)
    client.sleep = sleeps.append
    return client


@pytest.fixture
def xero(tokens, sleeps):
    client = XeroClient(TENANT, tokens, api_url=XERO_API, timeout=5)
    client.sleep = sleeps.append
    return client
