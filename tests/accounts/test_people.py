"""People from a shell and in the demo: `manage.py adduser`, the three demo logins, and the
Django admin, which is for superusers only."""

import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

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


def adduser(*args) -> str:
    out = StringIO()
    call_command("adduser", *args, stdout=out)
    return out.getvalue()


def test_adduser_with_a_temporary_password(firm):
    out = adduser("tara", "--role", "viewer", "--connection", str(firm.pk), "--temporary-password")
    tara = get_user_model().objects.get(username="tara")
    (password,) = re.findall(r"Temporary password \(shown once; to change at login\): (\S+)", out)
    assert f"tara: viewer; member of Harbour Legal (#{firm.pk})." in out
    assert tara.check_password(password) and role_of(tara) == "viewer"
    assert tara in firm.members.all()
    assert TemporaryPassword.objects.filter(user=tara).exists()


def test_adduser_needs_a_way_to_a_password_and_a_role(firm):
    with pytest.raises(CommandError, match="Say how they get a password"):
        call_command("adduser", "tara", "--role", "viewer")
    with pytest.raises(CommandError, match="needs --role"):
        call_command("adduser", "tara", "--temporary-password")
    with pytest.raises(CommandError, match="No live connection 999"):
        call_command("adduser", "tara", "--role", "viewer", "--connection", "999")
    assert not get_user_model().objects.filter(username="tara").exists()


def test_adduser_sends_a_set_password_link(firm, mailbox, settings):
    settings.PUBLIC_URL = "https://unlinker.harbour.example"
    out = adduser(
        "sam", "--role", "operator", "--connection", str(firm.pk),
        "--email", "sam@harbour.example", "--first-name", "Sam", "--send-link",
    )  # fmt: skip
    assert "A link to choose a password went to sam@harbour.example." in out
    (message,) = mailbox.wait_for(1)
    assert "https://unlinker.harbour.example/accounts/set-password/" in message.get_content()
    sam = get_user_model().objects.get(username="sam")
    assert not sam.has_usable_password() and role_of(sam) == "operator"


def test_a_link_from_the_shell_needs_public_url(firm, settings):
    settings.PUBLIC_URL = ""
    with pytest.raises(CommandError, match="Set PUBLIC_URL"):
        adduser("sam", "--role", "viewer", "--email", "sam@harbour.example", "--send-link")


def test_adduser_on_an_existing_login_changes_its_role_and_adds_it(firm, make_user):
    vera = make_user("vera", "viewer")
    out = adduser("vera", "--role", "operator", "--connection", str(firm.pk))
    assert role_of(vera) == "operator" and vera in firm.members.all()
    assert "Temporary password" not in out and vera.check_password("pw")


def test_the_demo_has_a_login_per_role_in_each_connection(settings, firm):
    settings.DEBUG = True
    out = StringIO()
    call_command("create_demo_user", stdout=out)
    for username, role in (("demo", "admin"), ("operator", "operator"), ("viewer", "viewer")):
        user = get_user_model().objects.get(username=username)
        assert role_of(user) == role and user.check_password(
            username if role != "admin" else "demo"
        )
        assert user in firm.members.all() and not user.is_staff
        assert f"Demo login: {username} / " in out.getvalue()
    call_command("create_demo_user", stdout=StringIO())  # again: nothing doubles
    assert get_user_model().objects.filter(username="viewer").get().groups.count() == 1


def test_the_django_admin_is_for_superusers_only(make_user, django_user_model):
    staff_admin = make_user("staffer", "admin", is_staff=True)
    client = Client()
    client.force_login(staff_admin)
    refused = client.get("/admin/")
    assert refused.status_code == 302 and refused["Location"].startswith("/admin/login/")

    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(root)
    page = client.get("/admin/")
    assert page.status_code == 200
    assert b"superusers only" in page.content and b"Users" in page.content
