"""The one way to connect a sandbox firm, as `make run`'s demo, `make bench` and the tests do."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from unlinker.connections.models import Connection, OAuthCredential
from unlinker.connections.services import CannotConnect, connect_sandbox_firm
from unlinker.mirror.models import LinkedInvoice

pytestmark = pytest.mark.django_db


def test_a_sandbox_firm_is_paired_with_its_tokens(upstream, make_user):
    firm = upstream.build([{"total": "100.00"}], name="Harbour Legal")["firm"]
    member = make_user("olivia", "operator")
    connection = connect_sandbox_firm(upstream, firm["orgkey"], members=[member])
    assert connection.is_paired and connection.name == "Harbour Legal"
    assert connection.xero_tenant_name == "Harbour Legal"
    assert list(connection.members.all()) == [member]
    assert set(OAuthCredential.objects.values_list("provider", flat=True)) == {
        "actionstep",
        "xero",
    }
    with pytest.raises(CannotConnect, match="no firm 'nope'"):
        connect_sandbox_firm(upstream, "nope")


def test_the_demo_command_connects_and_syncs_the_first_firm_once(upstream, make_user, settings):
    settings.DEBUG = True
    upstream.build([{"total": "100.00", "payments": [{"amount": "10.00"}]}], name="Demo Firm")
    make_user("demo", "admin")
    out = StringIO()
    call_command("connect_sandbox", sandbox_url=upstream.base_url, stdout=out)
    connection = Connection.objects.get()
    assert connection.name == "Demo Firm (sandbox)" and connection.members.get().username == "demo"
    assert LinkedInvoice.objects.filter(connection=connection).exists()
    assert "Connected Demo Firm (sandbox): 2 linked records synced" in out.getvalue()
    call_command("connect_sandbox", sandbox_url=upstream.base_url, stdout=out)
    assert "nothing to do" in out.getvalue() and Connection.objects.count() == 1


def test_the_demo_command_is_refused_with_debug_off(upstream, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG is off"):
        call_command("connect_sandbox", sandbox_url=upstream.base_url)
