"""A connection's team, managed by its admins from the product: add someone who has a login or
create one (a temporary password, or a set-password link sent through a real SMTP server),
change a role, remove a member; and the connection's time zone."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from unlinker.accounts.models import TemporaryPassword
from unlinker.accounts.roles import role_of
from unlinker.connections.models import Connection

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def firm(db):
    return Connection.objects.create(name="Harbour Legal", actionstep_org_key="harbour")


@pytest.fixture
def admin(client_for, firm):
    client = client_for("admin", "amelia")
    firm.members.add(client.user)
    return client


def team_url(firm) -> str:
    return reverse("connections:team", args=[firm.pk])


def post(client, name: str, firm, data: dict, **kwargs):
    return client.post(reverse(f"connections:{name}", args=[firm.pk]), data, **kwargs)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_the_team_page_lists_members_with_their_roles_and_who_else_sees_it(admin, firm, make_user):
    firm.members.add(make_user("vera", "viewer", first_name="Vera", last_name="Vu"))
    make_user("otto", "operator")  # not a member
    boss = make_user("bea", "admin")  # an admin who is not a member still sees it
    html = admin.get(team_url(firm)).content.decode()
    assert "Vera Vu" in html and 'id="role-' in html
    assert "amelia" in html and "admin (you)" in html  # no role control for oneself
    assert f"Also sees this one: {boss.username}" in html
    # the add form offers the people who are not members
    assert ">otto, operator</option>" in html and ">bea, admin</option>" in html


def test_add_someone_who_has_a_login_and_give_them_a_role(admin, firm, make_user):
    otto = make_user("otto", "viewer")
    done = post(admin, "add_member", firm, {"existing-user": otto.pk, "existing-role": "operator"})
    assert done.status_code == 302
    assert otto in firm.members.all() and role_of(otto) == "operator"
    assert otto.groups.count() == 1  # one role, never two


def test_add_keeping_their_role(admin, firm, make_user):
    otto = make_user("otto", "operator")
    post(admin, "add_member", firm, {"existing-user": otto.pk, "existing-role": ""})
    assert otto in firm.members.all() and role_of(otto) == "operator"


def test_someone_without_a_role_is_added_only_with_one(admin, firm, make_user):
    nobody = make_user("nobody")
    refused = post(admin, "add_member", firm, {"existing-user": nobody.pk})
    assert refused.status_code == 400
    assert "nobody has no role yet: choose one." in refused.content.decode()
    assert nobody not in firm.members.all()


def test_a_new_login_with_a_temporary_password_must_choose_its_own(admin, firm):
    data = {
        "new-username": "tara",
        "new-first_name": "Tara",
        "new-role": "viewer",
        "new-password": "temporary",
    }
    done = post(admin, "new_person", firm, data, follow=True)
    html = done.content.decode()
    tara = get_user_model().objects.get(username="tara")
    assert tara in firm.members.all() and role_of(tara) == "viewer"
    (password,) = re.findall(r'<code class="secret">([^<]+)</code>', html)
    assert tara.check_password(password) and TemporaryPassword.objects.filter(user=tara).exists()
    assert password not in admin.get(team_url(firm)).content.decode()  # shown once

    person = Client()
    assert person.post(reverse("login"), {"username": "tara", "password": password}).status_code
    # every page sends them to choose a password first
    blocked = person.get(reverse("mirror:invoices"))
    assert blocked.status_code == 302 and blocked["Location"] == reverse("password_change")
    chosen = person.post(
        reverse("password_change"),
        {
            "old_password": password,
            "new_password1": "harbour lights at dusk",
            "new_password2": "harbour lights at dusk",
        },
    )
    assert chosen.status_code == 302
    assert not TemporaryPassword.objects.filter(user=tara).exists()
    assert person.get(reverse("mirror:invoices")).status_code == 302  # to their connection
    assert person.get(reverse("mirror:invoice_list", args=[firm.pk])).status_code == 200


def test_a_new_login_gets_a_set_password_link_by_email(admin, firm, mailbox, settings):
    settings.PASSWORD_RESET_TIMEOUT = 3 * 86400
    data = {
        "new-username": "sam",
        "new-first_name": "Sam",
        "new-last_name": "Stone",
        "new-email": "sam@harbour.example",
        "new-role": "operator",
        "new-password": "link",
    }
    done = post(admin, "new_person", firm, data, follow=True)
    assert messages_of(done) == [
        "Sam Stone is in the team. A link to choose a password went to sam@harbour.example; "
        "they log in as sam."
    ]
    sam = get_user_model().objects.get(username="sam")
    assert not sam.has_usable_password()
    (message,) = mailbox.wait_for(1)
    assert message.envelope_to == ["sam@harbour.example"]
    assert message["Subject"] == "Your Unlinker login: choose your password"
    body = message.get_content()
    assert "Your login: sam" in body and "for 3 days" in body
    (link,) = re.findall(r"http://testserver(/accounts/set-password/\S+/)", body)

    person = Client()
    form = person.get(link, follow=True)
    assert b"Choose your password" in form.content
    chosen = person.post(
        form.redirect_chain[-1][0],
        {"new_password1": "sails over the bay", "new_password2": "sails over the bay"},
    )
    assert chosen.status_code == 302 and chosen["Location"] == reverse("set_password_done")
    sam.refresh_from_db()
    assert sam.check_password("sails over the bay")
    assert b"This link no longer works" in Client().get(link, follow=True).content  # once only
    assert person.post(reverse("login"), {"username": "sam", "password": "sails over the bay"})
    assert person.get(reverse("mirror:invoice_list", args=[firm.pk])).status_code == 200


def test_a_link_needs_an_email_address(admin, firm):
    data = {"new-username": "sam", "new-role": "viewer", "new-password": "link"}
    refused = post(admin, "new_person", firm, data)
    assert refused.status_code == 400
    assert "The link is sent by email: give their address." in refused.content.decode()
    assert not get_user_model().objects.filter(username="sam").exists()


def test_a_taken_username_is_refused(admin, firm, make_user):
    make_user("Sam")
    data = {"new-username": "sam", "new-role": "viewer", "new-password": "temporary"}
    refused = post(admin, "new_person", firm, data)
    assert refused.status_code == 400 and "sam has a login already" in refused.content.decode()


def test_when_the_mail_server_is_down_the_login_stays_and_the_link_can_be_sent_again(
    admin, firm, mailbox, settings
):
    port = settings.EMAIL_PORT
    settings.EMAIL_PORT = 1  # nothing listens there
    data = {
        "new-username": "sam",
        "new-email": "sam@harbour.example",
        "new-role": "viewer",
        "new-password": "link",
    }
    done = post(admin, "new_person", firm, data, follow=True)
    (said,) = messages_of(done)
    assert said.startswith("sam is in the team, but The email to sam@harbour.example could not")
    sam = get_user_model().objects.get(username="sam")
    assert sam in firm.members.all()

    settings.EMAIL_PORT = port
    again = post(admin, "send_link", firm, {"user": sam.pk}, follow=True)
    assert messages_of(again) == ["A link to choose a password went to sam@harbour.example."]
    assert mailbox.wait_for(1)[0].envelope_to == ["sam@harbour.example"]


def test_change_a_members_role(admin, firm, make_user):
    vera = make_user("vera", "viewer")
    firm.members.add(vera)
    done = post(admin, "change_role", firm, {"user": vera.pk, "role": "operator"}, follow=True)
    assert role_of(vera) == "operator" and vera.groups.count() == 1
    assert messages_of(done) == ["vera is now operator."]


def test_nobody_changes_their_own_role_or_a_superusers(admin, firm, django_user_model):
    mine = post(admin, "change_role", firm, {"user": admin.user.pk, "role": "viewer"}, follow=True)
    assert messages_of(mine) == ["You cannot change your own role: ask another admin."]
    assert role_of(admin.user) == "admin"
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    firm.members.add(root)
    theirs = post(admin, "change_role", firm, {"user": root.pk, "role": "viewer"}, follow=True)
    assert "root is a superuser" in messages_of(theirs)[0]
    assert role_of(root) is None


def test_a_role_is_changed_only_for_a_member_of_the_connection(admin, firm, make_user):
    stranger = make_user("stranger", "viewer")
    answer = post(admin, "change_role", firm, {"user": stranger.pk, "role": "admin"})
    assert answer.status_code == 404 and role_of(stranger) == "viewer"


def test_remove_a_member_after_confirming(admin, firm, make_user):
    vera = make_user("vera", "viewer")
    firm.members.add(vera)
    url = reverse("connections:remove_member", args=[firm.pk])
    page = admin.get(url, {"user": vera.pk})
    assert page.status_code == 200
    html = page.content.decode()
    assert "Remove vera from Harbour Legal?" in html
    assert "no longer see this connection" in html
    assert vera in firm.members.all()  # asking is not doing

    done = admin.post(url, {"user": vera.pk}, follow=True)
    assert vera not in firm.members.all()
    assert messages_of(done) == ["vera is no longer in the team of Harbour Legal."]
    assert get_user_model().objects.filter(pk=vera.pk).exists()  # the login stays
    viewer = Client()
    viewer.force_login(vera)
    assert viewer.get(reverse("mirror:invoice_list", args=[firm.pk])).status_code == 404


def test_removing_an_admin_says_they_still_see_every_connection(admin, firm, make_user):
    bea = make_user("bea", "admin")
    firm.members.add(bea)
    page = admin.get(reverse("connections:remove_member", args=[firm.pk]), {"user": bea.pk})
    assert "As an admin they still see every connection" in page.content.decode()


def test_change_the_time_zone(admin, firm):
    done = post(admin, "set_timezone", firm, {"timezone": "Australia/Perth"}, follow=True)
    firm.refresh_from_db()
    assert firm.timezone == "Australia/Perth"
    assert messages_of(done) == ["Harbour Legal now shows times in Australia/Perth."]
    refused = post(admin, "set_timezone", firm, {"timezone": "Perth"})
    assert refused.status_code == 400
    firm.refresh_from_db()
    assert firm.timezone == "Australia/Perth"


def test_the_zone_select_shows_a_stored_zone_it_does_not_offer(admin, firm):
    Connection.objects.filter(pk=firm.pk).update(timezone="Etc/GMT+2")  # as Xero may give it
    html = admin.get(team_url(firm)).content.decode()
    assert '<option value="Etc/GMT+2" selected>' in html
    assert '<optgroup label="Australia">' in html


def test_the_connections_page_names_the_team_and_the_zone(admin, firm, make_user):
    firm.members.add(make_user("vera", "viewer", first_name="Vera"))
    html = admin.get(reverse("connections:list")).content.decode()
    assert "2 members: amelia, Vera" in html
    assert firm.timezone in html
    assert reverse("connections:team", args=[firm.pk]) in html
