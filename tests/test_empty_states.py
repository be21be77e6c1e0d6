"""Each empty page tells its reader what they may do next, and offers nothing they may not: a
viewer is never told to select invoices, press Refresh or run the reconciliation."""

import pytest
from django.urls import reverse

from unlinker.connections.models import Connection

pytestmark = pytest.mark.django_db

# What an empty page says, per page, to someone who may act and to someone who may not.
SAYS = {
    "unlinking:history": (
        "select invoices or payments in a linked list to start one",
        "Operators and admins start them from the linked lists",
    ),
    "reconciliation:connection_report": (
        "Run the reconciliation now",
        "an operator or admin can run it now",
    ),
    "mirror:invoice_list": ("Refresh from Actionstep", "synced from Actionstep on a schedule"),
    "mirror:payment_list": ("Refresh from Actionstep", "synced from Actionstep on a schedule"),
}


@pytest.fixture
def firm(db):
    return Connection.objects.create(name="Smith & Co", actionstep_org_key="smith")


def page(client, name: str, firm) -> str:
    args = [] if name == "unlinking:history" else [firm.pk]
    response = client.get(reverse(name, args=args))
    assert response.status_code == 200, name
    return response.content.decode()


@pytest.mark.parametrize("name", list(SAYS))
def test_a_viewer_is_told_what_a_viewer_may_do(client_for, firm, name):
    client = client_for("viewer")
    firm.members.add(client.user)
    html = page(client, name, firm)
    for_those_who_act, for_viewers = SAYS[name]
    assert for_viewers in html
    assert for_those_who_act not in html
    assert "refresh to sync" not in html.lower()


@pytest.mark.parametrize("role", ["operator", "admin"])
@pytest.mark.parametrize("name", list(SAYS))
def test_operators_and_admins_are_offered_the_next_step(client_for, firm, name, role):
    client = client_for(role)
    firm.members.add(client.user)
    html = page(client, name, firm)
    for_those_who_act, for_viewers = SAYS[name]
    assert for_those_who_act in html
    assert for_viewers not in html
