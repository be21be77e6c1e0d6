"""The settings module with and without the environment: run afresh in this process for what the
module itself decides, in a fresh interpreter where Django must start (check --deploy)."""

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.test_configuration_table import variables_read
from unlinker import vardir

ROOT = Path(__file__).resolve().parent.parent
FERNET_KEY = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
SECRET = "q8Jz-R2v_XcL0m4WbYp7tNs1Hk9DfGa3Eu6IoPrQ5lMx8VyZ2TbCnKdSe0"
# Settings for the real APIs: what a production deployment sets.
REAL_APIS = {
    "ACTIONSTEP_AUTHORIZE_URL": "https://go.actionstep.com/api/oauth/authorize",
    "ACTIONSTEP_TOKEN_URL": "https://api.actionstep.com/api/oauth/token",
    "ACTIONSTEP_CLIENT_ID": "firm-app",
    "ACTIONSTEP_CLIENT_SECRET": "s3cr3t-from-actionstep",
    "XERO_AUTHORIZE_URL": "https://login.xero.com/identity/connect/authorize",
    "XERO_TOKEN_URL": "https://identity.xero.com/connect/token",
    "XERO_CONNECTIONS_URL": "https://api.xero.com/connections",
    "XERO_REVOCATION_URL": "https://identity.xero.com/connect/revocation",
    "XERO_API_URL": "https://api.xero.com/api.xro/2.0",
    "XERO_CLIENT_ID": "XEROAPPID",
    "XERO_CLIENT_SECRET": "s3cr3t-from-xero",
}
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": SECRET,
    "UNLINKER_TOKEN_KEY": FERNET_KEY,
    "DATABASE_URL": "postgres://u:p@db.internal:5432/unlinker",
    **REAL_APIS,
}
PRINT_SETTINGS = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({
    "debug": settings.DEBUG,
    "engine": settings.DATABASES["default"]["ENGINE"],
    "db_name": str(settings.DATABASES["default"]["NAME"]),
    "broker": settings.CELERY_BROKER_URL,
    "broker_options": settings.CELERY_BROKER_TRANSPORT_OPTIONS,
    "hosts": settings.ALLOWED_HOSTS,
    "token_keys": len(settings.UNLINKER_TOKEN_KEYS),
    "secret_len": len(settings.SECRET_KEY),
    "xero_api": settings.XERO_API_URL,
    "authorize": settings.ACTIONSTEP_AUTHORIZE_URL,
    "timeout": settings.HTTP_TIMEOUT_SECONDS,
    "ssl_redirect": getattr(settings, "SECURE_SSL_REDIRECT", False),
    "acks_late": settings.CELERY_TASK_ACKS_LATE,
    "serializer": settings.CELERY_TASK_SERIALIZER,
}))
"""
CHECK_DEPLOY = (
    "from django.core.management import execute_from_command_line;"
    "execute_from_command_line(['manage.py', 'check', '--deploy', '--fail-level', 'WARNING'])"
)


def run_python(code: str, env_extra: dict, tmp_path) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter whose environment sets none of the variables the project
    reads, except UNLINKER_VAR_DIR (an empty folder of the test's own) and `env_extra`."""
    env = {k: v for k, v in os.environ.items() if k not in variables_read()}
    env.update(
        {"UNLINKER_VAR_DIR": str(tmp_path / "var"), "DJANGO_SETTINGS_MODULE": "unlinker.settings"}
    )
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def load(monkeypatch, tmp_path):
    """Run unlinker/settings.py afresh, in this process, with none of the project's variables
    set but UNLINKER_VAR_DIR (an empty folder of the test's own) and `env`: its names, or the
    ImproperlyConfigured it raises."""

    def run(env: dict) -> dict:
        for name in variables_read():
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("UNLINKER_VAR_DIR", str(tmp_path / "var"))
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(ROOT / "unlinker" / "settings.py"))

    return run


def files_under(path: Path) -> list[Path]:
    return sorted(path.rglob("*")) if path.exists() else []


def test_with_nothing_configured_start_up_says_how_and_writes_nothing(load, tmp_path):
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY is not set.*unlinker init"):
        load({"DEBUG": "1"})
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL is not set.*unlinker init"):
        load({"DEBUG": "1", "SECRET_KEY": SECRET, "UNLINKER_TOKEN_KEY": FERNET_KEY})
    assert not (tmp_path / "var").exists()


def test_the_demo_loads_from_var_once_unlinker_init_made_it(tmp_path):
    init = subprocess.run(
        [sys.executable, "-m", "unlinker.cli", "init"],
        cwd=ROOT,
        env={**os.environ, "UNLINKER_VAR_DIR": str(tmp_path / "var")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert init.returncode == 0, init.stderr
    assert "is ready" in init.stdout
    secret_file = tmp_path / "var" / vardir.SECRET_KEY_FILE
    assert secret_file.stat().st_mode & 0o077 == 0  # owner-readable only
    made = files_under(tmp_path / "var")

    result = run_python(PRINT_SETTINGS, {"DEBUG": "1"}, tmp_path)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["debug"] is True
    assert loaded["engine"] == "django.db.backends.sqlite3"
    assert loaded["db_name"] == str(tmp_path / "var" / "unlinker.sqlite3")
    assert loaded["broker"] == "redis://127.0.0.1:6379/0"
    assert loaded["hosts"] == ["localhost", "127.0.0.1", "[::1]"]
    assert loaded["secret_len"] >= 50 and loaded["token_keys"] == 1
    assert loaded["acks_late"] is True and loaded["serializer"] == "json"
    again = run_python(PRINT_SETTINGS, {"DEBUG": "1"}, tmp_path)
    assert json.loads(again.stdout)["secret_len"] == loaded["secret_len"]
    assert files_under(tmp_path / "var") == made  # loading wrote nothing
    # a second init keeps the secrets (the stored tokens stay readable)
    before = secret_file.read_text()
    assert vardir.init(tmp_path / "var") == [] and secret_file.read_text() == before


def test_settings_load_from_environment(load, tmp_path):
    loaded = load(
        {
            "DATABASE_URL": "postgres://u:p@db.internal:5432/unlinker",
            "REDIS_URL": "redis://cache.internal:6379/2",
            "SECRET_KEY": "x" * 60,
            "DEBUG": "true",
            "ALLOWED_HOSTS": "unlinker.example.com, admin.example.com",
            "UNLINKER_TOKEN_KEY": f"{'a' * 43}=,{'b' * 43}=",
            "XERO_API_URL": "https://api.xero.com/api.xro/2.0/",
            "ACTIONSTEP_AUTHORIZE_URL": "",  # docker-compose's ${NAME:-}: the default
            "HTTP_TIMEOUT_SECONDS": "12.5",
        }
    )
    assert loaded["DEBUG"] is True
    assert loaded["DATABASES"]["default"]["ENGINE"] == "django.db.backends.postgresql"
    assert loaded["DATABASES"]["default"]["NAME"] == "unlinker"
    assert loaded["CELERY_BROKER_URL"] == "redis://cache.internal:6379/2"
    assert loaded["ALLOWED_HOSTS"] == ["unlinker.example.com", "admin.example.com"]
    assert len(loaded["UNLINKER_TOKEN_KEYS"]) == 2
    assert loaded["XERO_API_URL"] == "https://api.xero.com/api.xro/2.0"
    assert loaded["ACTIONSTEP_AUTHORIZE_URL"] == (
        "http://127.0.0.1:8001/actionstep/api/oauth/authorize"
    )
    assert loaded["HTTP_TIMEOUT_SECONDS"] == 12.5
    assert not (tmp_path / "var").exists()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG must be a boolean"),
        ("HTTP_TIMEOUT_SECONDS", "thirty", "HTTP_TIMEOUT_SECONDS must be a number, not 'thirty'"),
        ("API_TIME_SCALE", "0", "API_TIME_SCALE must be at least 0.001"),
        ("API_THROTTLE_MAX_WAIT_SECONDS", "2m", "API_THROTTLE_MAX_WAIT_SECONDS must be a number"),
        ("XERO_CALLS_PER_MINUTE", "1.5", "XERO_CALLS_PER_MINUTE must be a whole number"),
        ("XERO_CALLS_PER_DAY", "0", "XERO_CALLS_PER_DAY must be at least 1"),
        ("STEP_STALE_SECONDS", "ten", "STEP_STALE_SECONDS must be a whole number"),
        ("HTTPS", "2", "HTTPS must be a boolean"),
        ("XERO_VOID_NUMBER_SUFFIX", "   ", "XERO_VOID_NUMBER_SUFFIX must be 1 to 32 characters"),
        ("XERO_VOID_NUMBER_SUFFIX", "-" * 33, "XERO_VOID_NUMBER_SUFFIX must be 1 to 32"),
    ],
)
def test_a_bad_value_stops_start_up_with_a_message_naming_it(load, name, value, message):
    with pytest.raises(ImproperlyConfigured) as caught:
        load({**PRODUCTION, name: value})
    assert message in str(caught.value)
    # the message alone, not a ValueError's traceback above it
    shown = caught.value.__cause__ or (
        None if caught.value.__suppress_context__ else caught.value.__context__
    )
    assert shown is None


@pytest.mark.parametrize("key", ["hunter2", f"{FERNET_KEY},hunter2", "a" * 44])
def test_a_malformed_token_key_stops_start_up(load, key):
    with pytest.raises(ImproperlyConfigured) as caught:
        load({**PRODUCTION, "UNLINKER_TOKEN_KEY": key})
    message = str(caught.value)
    assert message.startswith("UNLINKER_TOKEN_KEY: ") and "is not a Fernet key" in message
    assert "hunter2" not in message  # a key, even a wrong one, is never printed


def test_a_malformed_token_key_in_var_is_named(load, tmp_path):
    vardir.init(tmp_path / "var")
    (tmp_path / "var" / vardir.TOKEN_KEY_FILE).write_text("hunter2")
    with pytest.raises(ImproperlyConfigured, match="token_key: the key is not a Fernet key"):
        load({"DEBUG": "1"})


def test_a_malformed_token_key_stops_check_deploy(tmp_path):
    result = run_python(CHECK_DEPLOY, {**PRODUCTION, "UNLINKER_TOKEN_KEY": "hunter2"}, tmp_path)
    assert result.returncode != 0
    assert "UNLINKER_TOKEN_KEY: the key is not a Fernet key" in result.stderr
    assert "hunter2" not in result.stderr


def test_with_debug_off_the_sandbox_values_are_refused(load):
    with pytest.raises(ImproperlyConfigured) as caught:
        load({**PRODUCTION, "XERO_API_URL": "", "XERO_CLIENT_SECRET": "sandbox-secret"})
    message = str(caught.value)
    assert "still have the sandbox's values: XERO_API_URL, XERO_CLIENT_SECRET." in message
    assert "UNLINKER_SANDBOX=1" in message


def test_a_deployment_that_runs_the_sandbox_on_purpose_says_so(load):
    without_apis = {k: v for k, v in PRODUCTION.items() if k not in REAL_APIS}
    with pytest.raises(ImproperlyConfigured, match="ACTIONSTEP_AUTHORIZE_URL, "):
        load(without_apis)
    assert load({**without_apis, "UNLINKER_SANDBOX": "1"})["UNLINKER_SANDBOX"] is True
    assert load({**without_apis, "DEBUG": "1"})["DEBUG"] is True  # development: no refusal


@pytest.mark.parametrize("apis", [REAL_APIS, {"UNLINKER_SANDBOX": "1"}], ids=["real", "sandbox"])
def test_production_profile_passes_check_deploy(tmp_path, apis):
    env = {
        "DEBUG": "0",
        "SECRET_KEY": SECRET,
        "UNLINKER_TOKEN_KEY": FERNET_KEY,
        "ALLOWED_HOSTS": "unlinker.example.com",
        "DATABASE_URL": "postgres://u:p@db.internal:5432/unlinker",
        **apis,
    }
    result = run_python(CHECK_DEPLOY, env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    assert not (tmp_path / "var").exists()


def test_the_filesystem_broker_keeps_all_its_folders_under_var(load, tmp_path):
    with pytest.raises(ImproperlyConfigured, match="broker's folders .* run `unlinker init`"):
        load({**PRODUCTION, "CELERY_BROKER_URL": "filesystem://"})
    vardir.init(tmp_path / "var")
    options = load({**PRODUCTION, "CELERY_BROKER_URL": "filesystem://"})[
        "CELERY_BROKER_TRANSPORT_OPTIONS"
    ]
    folders = {k: v for k, v in options.items() if "folder" in k}
    assert set(folders) == {
        "data_folder_in",
        "data_folder_out",
        "processed_folder",
        "control_folder",
    }
    assert all(Path(v).is_relative_to(tmp_path / "var" / "broker") for v in folders.values())


@pytest.mark.parametrize("debug", ["0", "1"])
def test_demo_user_only_with_debug(tmp_path, debug):
    vardir.init(tmp_path / "var")
    code = (
        "import django; django.setup();"
        "from django.core.management import call_command;"
        "call_command('migrate', verbosity=0); call_command('create_demo_user')"
    )
    result = run_python(code, {"DEBUG": debug, "UNLINKER_SANDBOX": "1"}, tmp_path)
    if debug == "1":
        assert result.returncode == 0, result.stderr
        assert "demo / demo" in result.stdout
    else:
        assert result.returncode != 0
        assert "never created with DEBUG off" in result.stderr
