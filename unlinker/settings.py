"""Unlinker settings: everything that varies between machines comes from the environment.

Defaults make a single-machine demo work with nothing configured (SQLite under var/, secrets
generated once into var/). Production sets DEBUG=0 and real values (see README, docker-compose.yml).
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from unlinker.integrations import actionstep_resources as _actionstep

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("UNLINKER_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if value.strip().lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _generated_secret(filename: str, make) -> str:
    """A secret kept in var/ so that one machine with no configuration keeps its sessions and
    its encrypted tokens readable across restarts. Several machines must share one: set the
    environment variable instead."""
    path = VAR_DIR / filename
    if path.exists():
        return path.read_text().strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY") or _generated_secret(
    "secret_key", lambda: secrets.token_urlsafe(50)
)

# Fernet keys for OAuth tokens at rest. Comma-separated: the first encrypts, all decrypt, so a
# key can be rotated without losing stored tokens.
UNLINKER_TOKEN_KEYS = env_list("UNLINKER_TOKEN_KEY", "") or [
    _generated_secret("token_key", lambda: Fernet.generate_key().decode())
]

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "django_filters",
    "django_tables2",
    "unlinker.accounts",
    "unlinker.core",
    "unlinker.connections",
    "unlinker.mirror",
    "unlinker.unlinking",
    "unlinker.reconciliation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "unlinker.core.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "unlinker.urls"
WSGI_APPLICATION = "unlinker.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "unlinker.core.context_processors.navigation",
            ],
        },
    }
]

# SQLite is the zero-setup default of the demo only; PostgreSQL in production and CI.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'unlinker.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # web, worker and beat share the file: WAL lets readers run beside the one writer, and
    # IMMEDIATE transactions wait for the lock instead of failing half-way.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-au"
TIME_ZONE = os.environ.get("TIME_ZONE", "Australia/Sydney")
USE_I18N = True
USE_TZ = True
# One date and one date-time format everywhere, Django's own included (unlinker/core/display.py).
FORMAT_MODULE_PATH = ["unlinker.formats"]

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            # hashed names once `collectstatic` has written its manifest (production images)
            if env_bool("STATIC_MANIFEST", (STATIC_ROOT / "staticfiles.json").exists())
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Without a collectstatic run (tests, the demo) whitenoise serves straight from the finders.
WHITENOISE_USE_FINDERS = True

# --- Security: production values whenever DEBUG is off -------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if not DEBUG:
    HTTPS = env_bool("HTTPS", True)
    SESSION_COOKIE_SECURE = HTTPS
    CSRF_COOKIE_SECURE = HTTPS
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if HTTPS else 0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    # /healthz is probed over plain HTTP inside the compose network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    if env_bool("BEHIND_TLS_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# check --deploy's W021 (HSTS preload) is a decision for the firm's domain owner, not for us.
SILENCED_SYSTEM_CHECKS = env_list("SILENCED_SYSTEM_CHECKS", "security.W021")

# --- Celery -------------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
# make run switches to kombu's filesystem transport when no Redis answers (see launcher.py).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL or "redis://127.0.0.1:6379/0"
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "broker"
    for sub in ("queue", "processed"):
        (_queue_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir / "queue"),
        "data_folder_out": str(_queue_dir / "queue"),
        "processed_folder": str(_queue_dir / "processed"),
        "store_processed": False,
    }
else:
    # Redis redelivers an unacknowledged task after this long; retries stay well inside it.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # state lives in our own models, not in a result backend
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fix-up closes the worker's database connection before and after every task
# unless told to reuse it: a new PostgreSQL backend per unlink step. It closes them every 1,000
# tasks instead; between, Django's own rule applies after each task (CONN_MAX_AGE, health
# checks: unlinker/celery.py).
CELERY_DB_REUSE_MAX = 1000
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TIMEZONE = TIME_ZONE
MIRROR_SYNC_MINUTES = env_int("MIRROR_SYNC_MINUTES", 15)
CELERY_BEAT_SCHEDULE: dict = {
    "heartbeat": {"task": "core.heartbeat", "schedule": 60.0},
    "mirror-sync": {"task": "mirror.sync_all", "schedule": MIRROR_SYNC_MINUTES * 60.0},
    "unlink-sweep": {"task": "unlinking.sweep", "schedule": 60.0},
    "reconcile": {
        "task": "reconciliation.reconcile_all",
        "schedule": env_int("RECONCILE_HOURS", 24) * 3600.0,
    },
}
# A step claimed longer ago than this lost its worker: the sweep runs it again (safe: every
# step re-reads upstream first). Well above CELERY_TASK_TIME_LIMIT.
STEP_STALE_SECONDS = env_int("STEP_STALE_SECONDS", 600)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- External APIs --------------------------------------------------------------------------
# The sandbox (unlinker/sandbox) stands in for both APIs unless these point elsewhere.
SANDBOX_URL = os.environ.get("SANDBOX_URL", "http://127.0.0.1:8001").rstrip("/")
ACTIONSTEP_AUTHORIZE_URL = os.environ.get(
    "ACTIONSTEP_AUTHORIZE_URL", f"{SANDBOX_URL}/actionstep/api/oauth/authorize"
)
ACTIONSTEP_TOKEN_URL = os.environ.get(
    "ACTIONSTEP_TOKEN_URL", f"{SANDBOX_URL}/actionstep/api/oauth/token"
)
ACTIONSTEP_CLIENT_ID = os.environ.get("ACTIONSTEP_CLIENT_ID", "unlinker-demo")
ACTIONSTEP_CLIENT_SECRET = os.environ.get("ACTIONSTEP_CLIENT_SECRET", "sandbox-secret")
ACTIONSTEP_SCOPES = os.environ.get("ACTIONSTEP_SCOPES", "all")
ACTIONSTEP_CALLS_PER_MINUTE = env_int("ACTIONSTEP_CALLS_PER_MINUTE", 600)

XERO_AUTHORIZE_URL = os.environ.get(
    "XERO_AUTHORIZE_URL", f"{SANDBOX_URL}/xero/identity/connect/authorize"
)
XERO_TOKEN_URL = os.environ.get("XERO_TOKEN_URL", f"{SANDBOX_URL}/xero/identity/connect/token")
XERO_CONNECTIONS_URL = os.environ.get("XERO_CONNECTIONS_URL", f"{SANDBOX_URL}/xero/api/connections")
XERO_API_URL = os.environ.get("XERO_API_URL", f"{SANDBOX_URL}/xero/api/api.xro/2.0").rstrip("/")
XERO_CLIENT_ID = os.environ.get("XERO_CLIENT_ID", "unlinker-demo")
XERO_CLIENT_SECRET = os.environ.get("XERO_CLIENT_SECRET", "sandbox-secret")
XERO_SCOPES = os.environ.get(
    "XERO_SCOPES",
    "offline_access accounting.invoices accounting.payments",
)
XERO_CALLS_PER_MINUTE = env_int("XERO_CALLS_PER_MINUTE", 60)
XERO_CONCURRENT_CALLS = env_int("XERO_CONCURRENT_CALLS", 5)
XERO_CALLS_PER_DAY = env_int("XERO_CALLS_PER_DAY", 5000)
# The lists link each record to its page in Xero (a documented pattern on this base) and in
# Actionstep (patterns that are assumptions: see unlinker/integrations/weblinks.py).
XERO_WEB_URL = os.environ.get("XERO_WEB_URL", "https://go.xero.com").rstrip("/")
ACTIONSTEP_MATTER_URL = os.environ.get("ACTIONSTEP_MATTER_URL", _actionstep.MATTER_PAGE_URL)
ACTIONSTEP_INVOICE_URL = os.environ.get("ACTIONSTEP_INVOICE_URL", _actionstep.INVOICE_PAGE_URL)
HTTP_TIMEOUT_SECONDS = float(os.environ.get("HTTP_TIMEOUT_SECONDS", "30"))
# How long a call waits for its tenant's throttle before giving up (RateLimited).
API_THROTTLE_MAX_WAIT_SECONDS = float(os.environ.get("API_THROTTLE_MAX_WAIT_SECONDS", "120"))
# Benchmarks against the sandbox compress time: 60 makes the clients' "minute" last a second.
API_TIME_SCALE = float(os.environ.get("API_TIME_SCALE", "1"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
