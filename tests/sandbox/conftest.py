"""Fixtures calling the sandbox's two APIs as a real client would."""

import pytest

from tests.sandbox.support import ACTIONSTEP_MEDIA, Api


@pytest.fixture
def actionstep(sandbox):
    """Call with `actionstep()` once the firm exists: the token names its org."""

    def connect(orgkey: str | None = None) -> Api:
        token = sandbox.issue_tokens("actionstep", orgkey=orgkey)
        headers = {
            "Authorization": f"Bearer {token['access_token']}",
            "Accept": ACTIONSTEP_MEDIA,
            "Content-Type": ACTIONSTEP_MEDIA,
        }
        return Api(f"{token['api_endpoint']}/rest", headers)

    return connect


@pytest.fixture
def xero(sandbox):
    """Call with `xero(tenant_id)`."""

    def connect(tenant_id: str) -> Api:
        token = sandbox.issue_tokens("xero")
        headers = {
            "Authorization": f"Bearer {token['access_token']}",
            "Xero-tenant-id": tenant_id,
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        return Api(sandbox.xero_api_url, headers)

    return connect
