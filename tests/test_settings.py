"""The settings module, loaded in a fresh interpreter with and without the environment."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG_VARS = [
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "UNLINKER_TOKEN_KEY",
    "CELERY_BROKER_URL",
    "SANDBOX_URL",
    "XERO_API_URL",
    "ACTIONSTEP_CLIENT_ID",
    "HTTPS",
]
PRINT_SETTINGS = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({
    "debug": settings.DEBUG,
    "engine": settings.DATABASES["default"]["ENGINE"],
    "db_name": str(settings.DATABASES["default"]["NAME"]),
    "broker": settings.CELERY_BROKER_URL,
    "hosts": settings.ALLOWED_HOSTS,
    "token_keys": len(settings.UNLINKER_TOKEN_KEYS),
    "secret_len": len(settings.SECRET_KEY),
    "xero_api": settings.XERO_API_URL,
    "ssl_redirect": getattr(settings, "SECURE_SSL_REDIRECT", False),
    "acks_late": settings.CELERY_TASK_ACKS_LATE,
    "serializer": settings.CELERY_TASK_SERIALIZER,
}))
"""


def run_python(code: str, env_extra: dict, tmp_path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS}
    env.update(
        {"UNLINKER_VAR_DIR": str(tmp_path / "var"), "DJANGO_SETTINGS_MODULE": "unlinker.settings"}
    )
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_settings_load_with_no_environment(tmp_path):
    result = run_python(PRINT_SETTINGS, {}, tmp_path)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["debug"] is False
    assert loaded["engine"] == "django.db.backends.sqlite3"
    assert loaded["db_name"] == str(tmp_path / "var" / "unlinker.sqlite3")
    assert loaded["broker"] == "redis://127.0.0.1:6379/0"
    assert loaded["hosts"] == ["localhost", "127.0.0.1", "[::1]"]
    assert loaded["secret_len"] >= 50 and loaded["token_keys"] == 1
    assert loaded["acks_late"] is True and loaded["serializer"] == "json"
    # the generated secrets are kept, owner-readable only, and reused on the next start
    secret_file = tmp_path / "var" / "secret_key"
    assert secret_file.stat().st_mode & 0o077 == 0
    again = run_python(PRINT_SETTINGS, {}, tmp_path)
    assert json.loads(again.stdout)["secret_len"] == loaded["secret_len"]
    assert secret_file.read_text() == (tmp_path / "var" / "secret_key").read_text()


def test_settings_load_from_environment(tmp_path):
    result = run_python(
        PRINT_SETTINGS,
        {
            "DATABASE_URL": "postgres://u:p@db.internal:5432/unlinker",
            "REDIS_URL": "redis://cache.internal:6379/2",
            "SECRET_KEY": "x" * 60,
            "DEBUG": "true",
            "ALLOWED_HOSTS": "unlinker.example.com, admin.example.com",
            "UNLINKER_TOKEN_KEY": f"{'a' * 43}=,{'b' * 43}=",
            "XERO_API_URL": "https://api.xero.com/api.xro/2.0/",
        },
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["debug"] is True
    assert loaded["engine"] == "django.db.backends.postgresql"
    assert loaded["db_name"] == "unlinker"
    assert loaded["broker"] == "redis://cache.internal:6379/2"
    assert loaded["hosts"] == ["unlinker.example.com", "admin.example.com"]
    assert loaded["token_keys"] == 2
    assert loaded["xero_api"] == "https://api.xero.com/api.xro/2.0"
    assert not (tmp_path / "var" / "secret_key").exists()


def test_bad_value_is_a_clear_message(tmp_path):
    result = run_python(PRINT_SETTINGS, {"DEBUG": "maybe"}, tmp_path)
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


def test_production_profile_passes_check_deploy(tmp_path):
    result = run_python(
        "import sys; from django.core.management import execute_from_command_line;"
        "execute_from_command_line(['manage.py', 'check', '--deploy', '--fail-level', 'WARNING'])",
        {
            "DEBUG": "0",
            "SECRET_KEY": "q8Jz-R2v_XcL0m4WbYp7tNs1Hk9DfGa3Eu6IoPrQ5lMx8VyZ2TbCnKdSe0",
            "ALLOWED_HOSTS": "unlinker.example.com",
        },
        tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("debug", ["0", "1"])
def test_demo_user_only_with_debug(tmp_path, debug):
    code = (
        "import django; django.setup();"
        "from django.core.management import call_command;"
        "call_command('migrate', verbosity=0); call_command('create_demo_user')"
    )
    result = run_python(code, {"DEBUG": debug}, tmp_path)
    if debug == "1":
        assert result.returncode == 0, result.stderr
        assert "demo / demo" in result.stdout
    else:
        assert result.returncode != 0
        assert "never created with DEBUG off" in result.stderr
