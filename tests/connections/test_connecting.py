"""Connecting and reconnecting, through the sandbox's real consent and token endpoints: the
Connections page's CSP lets exactly the providers' consent pages in, each consent answer acts
on the connection it was started for, connecting or reconnecting syncs, and the messages say
what is left to do."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import responses
from django.urls import reverse
from django.utils import timezone

from unlinker.connections.clients import xero_tokens_for
from unlinker.connections.models import Connection, OAuthCredential
from unlinker.integrations.errors import AuthExpired
from unlinker.mirror.models import SyncRun

from .test_oauth_flow import consent, local

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client_for):
    return client_for("admin")


def connect_actionstep(client, orgkey: str, **fields):
    start = client.post(reverse("connections:actionstep_start"), fields)
    assert start.status_code == 302, start.content
    return client.get(local(consent(start["Location"], choose=orgkey)), follow=True)


def connect_xero(client, connection):
    start = client.post(reverse("connections:xero_start", args=[connection.pk]))
    assert start.status_code == 302, start.content
    return client.get(local(consent(start["Location"])), follow=True)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def refuse_the_refresh_token(connection, provider: str) -> OAuthCredential:
    """What happens when a provider refuses a refresh token (revoked, or unused too long): the
    next call's refresh fails for real against the sandbox and is recorded."""
    credential = OAuthCredential.objects.get(connection=connection, provider=provider)
    credential.refresh_token = "revoked-long-ago"
    credential.expires_at = timezone.now() - timedelta(minutes=1)
    credential.save()
    from unlinker.connections.clients import _tokens

    with pytest.raises(AuthExpired):
        _tokens(connection, provider).access_token()
    credential.refresh_from_db()
    assert credential.last_error.startswith("Token refresh refused")
    return credential


def test_the_connections_page_lets_its_forms_reach_exactly_the_consent_pages(admin, upstream):
    csp = admin.get(reverse("connections:list"))["Content-Security-Policy"]
    (form_action,) = [d.strip() for d in csp.split(";") if d.strip().startswith("form-action")]
    origin = f"{urlsplit(upstream.base_url).scheme}://{urlsplit(upstream.base_url).netloc}"
    # both providers live in the sandbox here: one origin
    assert form_action == f"form-action 'self' {origin}"
    # every other page keeps form-action 'self' (tests/security/test_pages.py checks them all)
    other = admin.get(reverse("connections:team", args=[Connection.objects.create(name="x").pk]))
    assert "form-action 'self';" in other["Content-Security-Policy"]


def test_each_provider_origin_is_allowed_and_extra_ones_by_setting(admin, settings):
    settings.ACTIONSTEP_AUTHORIZE_URL = "https://go.actionstep.com/api/oauth/authorize"
    settings.XERO_AUTHORIZE_URL = "https://login.xero.com/identity/connect/authorize"
    settings.OAUTH_CONSENT_ORIGINS = ["https://login.example.com"]
    csp = admin.get(reverse("connections:list"))["Content-Security-Policy"]
    assert (
        "form-action 'self' https://go.actionstep.com https://login.xero.com "
        "https://login.example.com;" in csp
    )


def test_connecting_actionstep_stores_the_chosen_zone_and_starts_the_first_sync(admin, upstream):
    firm = upstream.seed(invoices=3)["firm"]
    done = connect_actionstep(admin, firm["orgkey"], timezone="Australia/Perth")
    connection = Connection.objects.get()
    assert connection.timezone == "Australia/Perth"
    (run,) = SyncRun.objects.filter(connection=connection)
    assert run.requested_by == admin.user and run.full
    assert messages_of(done) == [
        f"Actionstep org {firm['orgkey']} is connected, and its first sync has started. "
        "Now connect Xero."
    ]


def test_an_unknown_zone_connects_nothing(admin, upstream):
    response = admin.post(
        reverse("connections:actionstep_start"), {"timezone": "Mars/Olympus_Mons"}, follow=True
    )
    assert "Nothing was connected" in messages_of(response)[0]
    assert not Connection.objects.exists()


def test_without_a_choice_the_zone_is_the_settings_one(admin, upstream, settings):
    settings.TIME_ZONE = "Pacific/Auckland"
    connect_actionstep(admin, upstream.seed(invoices=1)["firm"]["orgkey"])
    assert Connection.objects.get().timezone == "Pacific/Auckland"


def test_pairing_takes_the_xero_organisations_time_zone(admin, upstream):
    firm = upstream.seed(invoices=2)["firm"]
    connect_actionstep(admin, firm["orgkey"], timezone="Australia/Perth")
    connection = Connection.objects.get()
    # The sandbox does not answer GET /Organisation yet (its Xero side is another piece of
    # work): the organisation alone is answered here, everything else reaches the sandbox.
    with responses.RequestsMock(assert_all_requests_are_fired=True) as api:
        api.add_passthru(upstream.base_url)
        api.get(
            f"{upstream.xero_api_url}/Organisation",
            json={"Organisations": [{"Name": "Harbour", "Timezone": "NEWZEALANDSTANDARDTIME"}]},
        )
        done = connect_xero(admin, connection)
    connection.refresh_from_db()
    assert connection.is_paired and connection.timezone == "Pacific/Auckland"
    assert messages_of(done) == [
        f"{connection.name} is paired and ready: its time zone is Pacific/Auckland, the Xero "
        "organisation's. A sync has started."
    ]


def test_pairing_keeps_the_chosen_zone_when_xero_does_not_give_one(admin, upstream):
    firm = upstream.seed(invoices=2)["firm"]
    upstream.set_organisation(firm["tenantId"], timezone="")  # Xero names no zone
    connect_actionstep(admin, firm["orgkey"], timezone="Australia/Perth")
    connection = Connection.objects.get()
    done = connect_xero(admin, connection)
    connection.refresh_from_db()
    assert connection.is_paired and connection.timezone == "Australia/Perth"
    assert "its time zone is Australia/Perth, as chosen when connecting" in messages_of(done)[0]
    # connecting Actionstep started one sync; pairing started another or kept that one going
    assert SyncRun.objects.filter(connection=connection).exists()


def test_reconnecting_xero_after_a_refused_token_stores_fresh_tokens_and_syncs(
    admin, upstream, connect
):
    connection = connect(upstream.seed(invoices=2)["firm"])
    refused = refuse_the_refresh_token(connection, "xero")
    page = admin.get(reverse("connections:list")).content.decode()
    assert "needs reconnecting" in page and "Reconnect Xero" in page

    done = connect_xero(admin, connection)
    credential = OAuthCredential.objects.get(pk=refused.pk)
    assert credential.last_error == "" and credential.refresh_token != "revoked-long-ago"
    assert xero_tokens_for(connection).access_token()  # works again
    (run,) = SyncRun.objects.filter(connection=connection)
    assert run.requested_by == admin.user
    assert messages_of(done) == [f"Xero is reconnected for {connection}; a sync has started."]
    assert "Reconnect Xero" not in done.content.decode()


def test_reconnecting_xero_with_a_login_that_does_not_reach_the_organisation_changes_nothing(
    admin, upstream, connect
):
    connection = connect(upstream.seed(invoices=1)["firm"])
    Connection.objects.filter(pk=connection.pk).update(xero_tenant_id="another-organisation")
    before = OAuthCredential.objects.get(connection=connection, provider="xero").access_token
    done = connect_xero(admin, connection)
    assert "This Xero login does not reach" in messages_of(done)[0]
    after = OAuthCredential.objects.get(connection=connection, provider="xero").access_token
    assert after == before
    assert not SyncRun.objects.exists()


def test_reconnecting_actionstep_after_a_refused_token(admin, upstream, connect):
    firm = upstream.seed(invoices=2)["firm"]
    connection = connect(firm)
    refuse_the_refresh_token(connection, "actionstep")
    assert "Reconnect Actionstep" in admin.get(reverse("connections:list")).content.decode()

    done = connect_actionstep(admin, firm["orgkey"], connection=connection.pk)
    assert Connection.objects.get() == connection  # the same connection, its history kept
    credential = OAuthCredential.objects.get(connection=connection, provider="actionstep")
    assert credential.last_error == ""
    assert SyncRun.objects.filter(connection=connection).count() == 1
    # Xero is connected: nothing says to connect it
    assert messages_of(done) == [
        f"Actionstep org {firm['orgkey']} is reconnected, and a sync has started."
    ]


def test_reconnecting_actionstep_as_another_org_changes_nothing(admin, upstream, connect):
    first = upstream.seed(invoices=1, name="First Firm")["firm"]
    second = upstream.seed(invoices=1, name="Second Firm")["firm"]
    connection = connect(first)
    done = connect_actionstep(admin, second["orgkey"], connection=connection.pk)
    assert f"Access was allowed to the Actionstep org {second['orgkey']}" in messages_of(done)[0]
    assert Connection.objects.count() == 1
    assert not SyncRun.objects.exists()


def test_each_consent_answer_acts_on_the_connection_it_was_started_for(admin, upstream):
    """Two consent pages open at once (two tabs): each answer goes to its own connection, not
    to whichever was started last."""
    first = upstream.seed(invoices=1, name="First Firm")["firm"]
    second = upstream.seed(invoices=1, name="Second Firm")["firm"]
    for firm in (first, second):
        connect_actionstep(admin, firm["orgkey"])
    one, two = Connection.objects.order_by("pk")
    started_one = admin.post(reverse("connections:xero_start", args=[one.pk]))["Location"]
    started_two = admin.post(reverse("connections:xero_start", args=[two.pk]))["Location"]
    answer_one = consent(started_one)
    admin.get(local(answer_one))
    assert OAuthCredential.objects.filter(connection=one, provider="xero").exists()
    assert not OAuthCredential.objects.filter(connection=two, provider="xero").exists()
    admin.get(local(consent(started_two)))
    assert OAuthCredential.objects.filter(connection=two, provider="xero").exists()
    # an answer is used once
    replay = admin.get(local(answer_one), follow=True)
    assert messages_of(replay) == ["Xero was not connected: start from the Connections page."]


def test_a_consent_answer_for_another_provider_is_refused(admin, upstream):
    upstream.seed(invoices=1)
    answer = consent(admin.post(reverse("connections:actionstep_start"))["Location"])
    to_xero = local(answer).replace(
        reverse("connections:actionstep_callback"), reverse("connections:xero_callback")
    )
    response = admin.get(to_xero, follow=True)
    assert messages_of(response) == ["Xero was not connected: start from the Connections page."]
    assert not Connection.objects.exists()


def test_now_connect_xero_is_said_only_while_xero_is_not_connected(admin, upstream, connect):
    firm = upstream.seed(invoices=1)["firm"]
    connection = connect(firm)  # paired, both sides connected
    done = connect_actionstep(admin, firm["orgkey"])  # re-authorising the same org
    assert Connection.objects.get() == connection
    assert "Now connect Xero" not in messages_of(done)[0]


def test_connections_show_xero_lock_dates_and_switch_history_notes(
    admin, client_for, connect, upstream
):
    from datetime import date

    from unlinker.mirror.services import refresh_xero_organisation

    built = upstream.build([{"total": "10.00"}], organisation={"period_lock_date": "2026-09-30"})
    connection = connect(built["firm"])
    page = admin.get(reverse("connections:list")).content.decode()
    assert "Lock dates: not read yet" in page and "History notes in Xero: on" in page

    from unlinker.connections.clients import xero_client_for

    refresh_xero_organisation(connection.pk, xero_client_for(connection))
    connection.refresh_from_db()
    assert connection.xero_period_lock_date == date(2026, 9, 30)
    assert (
        "Lock dates: period 30 Sep 2026" in admin.get(reverse("connections:list")).content.decode()
    )

    url = reverse("connections:set_history_notes", args=[connection.pk])
    done = admin.post(url, {"notes": "off"}, follow=True)
    connection.refresh_from_db()
    assert not connection.xero_history_notes
    assert messages_of(done) == [
        f"Changes in Xero for {connection.name} no longer add history notes."
    ]
    assert "History notes in Xero: off" in done.content.decode()
    assert admin.post(url, {"notes": "maybe"}).status_code == 302  # refused, nothing changed
    connection.refresh_from_db()
    assert not connection.xero_history_notes
    admin.post(url, {"notes": "on"})
    connection.refresh_from_db()
    assert connection.xero_history_notes
    # operators see no Connections page, and cannot switch the notes
    operator = client_for("operator")
    assert operator.post(url, {"notes": "off"}).status_code == 403
    connection.refresh_from_db()
    assert connection.xero_history_notes
