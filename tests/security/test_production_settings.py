"""The production profile (DEBUG off, a real SECRET_KEY), loaded in a fresh interpreter as a
deployment would load it: cookie flags, HTTPS, and the headers of a real response."""

import json

from tests.test_settings import PRODUCTION as REAL_DEPLOYMENT
from tests.test_settings import run_python

PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client

names = [
    "DEBUG", "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_SAMESITE",
    "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_SSL_REDIRECT", "SECURE_CONTENT_TYPE_NOSNIFF", "X_FRAME_OPTIONS",
    "SECURE_REFERRER_POLICY", "SECURE_CROSS_ORIGIN_OPENER_POLICY",
]
client = Client()
page = client.get("/accounts/login/", secure=True)  # needs no database
plain = client.get("/accounts/login/")
csrf = page.cookies["csrftoken"]
print(json.dumps({
    "settings": {name: getattr(settings, name, None) for name in names},
    "status": page.status_code,
    "headers": dict(page.headers),
    "html": page.content.decode(),
    "plain": [plain.status_code, plain.get("Location")],
    "csrf_cookie": {"secure": bool(csrf["secure"]), "samesite": csrf["samesite"]},
}))
"""
# DEBUG off, its own secrets, PostgreSQL and the real APIs' settings
PRODUCTION = {**REAL_DEPLOYMENT, "ALLOWED_HOSTS": "testserver"}


def test_production_profile_sets_cookie_flags_https_and_headers(tmp_path):
    result = run_python(PROBE, PRODUCTION, tmp_path)
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.strip().splitlines()[-1])

    loaded = probe["settings"]
    assert loaded["DEBUG"] is False
    assert loaded["SESSION_COOKIE_SECURE"] is True
    assert loaded["SESSION_COOKIE_HTTPONLY"] is True
    assert loaded["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert loaded["CSRF_COOKIE_SECURE"] is True
    assert loaded["SECURE_HSTS_SECONDS"] > 0
    assert loaded["SECURE_SSL_REDIRECT"] is True
    assert loaded["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert loaded["X_FRAME_OPTIONS"] == "DENY"

    assert probe["status"] == 200
    headers = probe["headers"]
    csp = [directive.strip() for directive in headers["Content-Security-Policy"].split(";")]
    assert {"script-src 'self'", "style-src 'self'", "default-src 'self'"} <= set(csp)
    assert not any("unsafe-" in directive for directive in csp)
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Strict-Transport-Security"].startswith(
        f"max-age={loaded['SECURE_HSTS_SECONDS']}"
    )
    # htmx is served from our own static files, under the policy's script-src 'self'
    assert '<script src="/static/vendor/htmx-' in probe["html"]

    assert probe["csrf_cookie"] == {"secure": True, "samesite": "Lax"}
    status, location = probe["plain"]
    assert status == 301 and location.startswith("https://testserver/")
