"""Unlinker settings: everything that varies between machines comes from the environment.

Every variable read here is in the README's configuration table (a test holds the two
together). Values are parsed by the env_* readers below: a wrong one stops start-up with a
message that names it. Defaults make a single-machine demo work once `unlinker init` has made
var/ (SQLite and generated secrets there; `make run` does it). With DEBUG off the settings are
the production profile and refuse the sandbox's URLs and demo credentials, unless
UNLINKER_SANDBOX=1 says the deployment runs the sandbox on purpose. Importing this module writes
no file.
"""

import os
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from unlinker import vardir
from unlinker.integrations import actionstep_resources

BASE_DIR = vardir.BASE_DIR
TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def env_str(name: str, default: str) -> str:
    """The variable's value; unset and empty alike mean the default (docker-compose passes
    `${NAME:-}` as an empty string)."""
    return os.environ.get(name) or default


def env_bool(name: str, default: bool) -> bool:
    value = env_str(name, "").strip().lower()
    if not value:
        return default
    if value in TRUE | FALSE:
        return value in TRUE
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}")


def _number(name: str, default, kind, minimum):
    value = env_str(name, "").strip()
    if not value:
        return default
    try:
        number = kind(value)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ImproperlyConfigured(f"{name} must be {what}, not {value!r}") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value!r}")
    return number


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    return _number(name, default, int, minimum)


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    return _number(name, default, float, minimum)


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def _from_var(name: str, filename: str) -> str:
    """A secret generated into var/ by `unlinker init`, for a single machine that sets none."""
    value = vardir.read_secret(VAR_DIR, filename)
    if not value:
        raise ImproperlyConfigured(
            f"{name} is not set and {VAR_DIR / filename} does not exist. Set {name} (every "
            "machine of a deployment the same), or run `unlinker init` once to generate it "
            "into var/ (make run does)."
        )
    return value


def _token_keys() -> list[str]:
    """The Fernet keys of UNLINKER_TOKEN_KEY, each checked: a malformed key would otherwise
    surface as tokens that cannot be read."""
    keys, source = env_list("UNLINKER_TOKEN_KEY", ""), "UNLINKER_TOKEN_KEY"
    if not keys:
        keys = [_from_var("UNLINKER_TOKEN_KEY", vardir.TOKEN_KEY_FILE)]
        source = str(VAR_DIR / vardir.TOKEN_KEY_FILE)
    for number, key in enumerate(keys, 1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            which = f"key {number} of {len(keys)}" if len(keys) > 1 else "the key"
            raise ImproperlyConfigured(
                f"{source}: {which} is not a Fernet key (32 url-safe base64-encoded bytes). "
                "Make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            ) from None
    return keys


VAR_DIR = vardir.var_dir()  # UNLINKER_VAR_DIR
DEBUG = env_bool("DEBUG", False)
# This deployment runs the sandbox on purpose (docker-compose.yml's demo stack, the tests).
UNLINKER_SANDBOX = env_bool("UNLINKER_SANDBOX", False)

SECRET_KEY = env_str("SECRET_KEY", "") or _from_var("SECRET_KEY", vardir.SECRET_KEY_FILE)

# Fernet keys for OAuth tokens at rest. Comma-separated: the first encrypts, all decrypt, so a
# key can be rotated without losing stored tokens.
UNLINKER_TOKEN_KEYS = _token_keys()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    # the Django admin, for superusers only (accounts/admin_site.py)
    "unlinker.accounts.admin_site.SuperuserAdminConfig",
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
    "unlinker.webhooks",
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
    "unlinker.accounts.middleware.TemporaryPasswordMiddleware",
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
DATABASE_URL = env_str("DATABASE_URL", "")
if not DATABASE_URL and not VAR_DIR.is_dir():
    raise ImproperlyConfigured(
        f"DATABASE_URL is not set and {VAR_DIR} does not exist for the demo's SQLite file: set "
        "DATABASE_URL, or run `unlinker init` (make run does)."
    )
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL or f"sqlite:///{VAR_DIR / vardir.SQLITE_FILE}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
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

# --- Email: the set-password links sent to people added to the team ------------------------
# The demo (DEBUG) writes each message to a file under var/sent-mail/ instead of sending it.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "") or (
    "django.core.mail.backends.filebased.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend"
)
EMAIL_FILE_PATH = str(VAR_DIR / "sent-mail")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Unlinker <unlinker@localhost>")
# The address people open Unlinker at, for the links in emails sent from the command line
# (`manage.py adduser --send-link`); the pages use the address they were opened at.
PUBLIC_URL = env_str("PUBLIC_URL", "").rstrip("/")
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT", 3 * 24 * 3600)

LANGUAGE_CODE = "en-au"
TIME_ZONE = env_str("TIME_ZONE", "Australia/Sydney")
USE_I18N = True
USE_TZ = True
# One date and one date-time format everywhere, Django's own included (unlinker/core/display.py).
FORMAT_MODULE_PATH = ["unlinker.formats"]

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / vardir.STATIC_FOLDER)))
STATICFILES_DIRS = [BASE_DIR / "static"]
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
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if HTTPS else 0, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    # /healthz is probed over plain HTTP inside the compose network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    if env_bool("BEHIND_TLS_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# check --deploy's W021 (HSTS preload) is a decision for the firm's domain owner, not for us.
SILENCED_SYSTEM_CHECKS = env_list("SILENCED_SYSTEM_CHECKS", "security.W021")

# --- Celery -------------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
# make run switches to kombu's filesystem transport when no Redis answers (see launcher.py).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "") or REDIS_URL or "redis://127.0.0.1:6379/0"
if CELERY_BROKER_URL.startswith("filesystem://"):
    _folders = {name: vardir.broker_folder(VAR_DIR, name) for name in vardir.BROKER_FOLDERS}
    if not all(folder.is_dir() for folder in _folders.values()):
        raise ImproperlyConfigured(
            f"The filesystem broker's folders under {VAR_DIR / 'broker'} do not exist: run "
            "`unlinker init` (make run does)."
        )
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_folders["queue"]),
        "data_folder_out": str(_folders["queue"]),
        "processed_folder": str(_folders["processed"]),
        "control_folder": str(_folders["control"]),
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
MIRROR_SYNC_MINUTES = env_int("MIRROR_SYNC_MINUTES", 15, minimum=1)
CELERY_BEAT_SCHEDULE: dict = {
    "heartbeat": {"task": "core.heartbeat", "schedule": 60.0},
    "mirror-sync": {"task": "mirror.sync_all", "schedule": MIRROR_SYNC_MINUTES * 60.0},
    "unlink-sweep": {"task": "unlinking.sweep", "schedule": 60.0},
    "webhooks-pending": {"task": "webhooks.process_pending", "schedule": 60.0},
    "reconcile": {
        "task": "reconciliation.reconcile_all",
        "schedule": env_int("RECONCILE_HOURS", 24, minimum=1) * 3600.0,
    },
}
# A step claimed longer ago than this lost its worker: the sweep runs it again (safe: every
# step re-reads upstream first). Well above CELERY_TASK_TIME_LIMIT.
STEP_STALE_SECONDS = env_int("STEP_STALE_SECONDS", 600, minimum=1)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- External APIs --------------------------------------------------------------------------
# The sandbox (unlinker/sandbox) stands in for both APIs unless these point elsewhere.
SANDBOX_URL = env_str("SANDBOX_URL", "http://127.0.0.1:8001").rstrip("/")
SANDBOX_DEFAULTS = {
    "ACTIONSTEP_AUTHORIZE_URL": f"{SANDBOX_URL}/actionstep/api/oauth/authorize",
    "ACTIONSTEP_TOKEN_URL": f"{SANDBOX_URL}/actionstep/api/oauth/token",
    "ACTIONSTEP_CLIENT_ID": "unlinker-demo",
    "ACTIONSTEP_CLIENT_SECRET": "sandbox-secret",
    "XERO_AUTHORIZE_URL": f"{SANDBOX_URL}/xero/identity/connect/authorize",
    "XERO_TOKEN_URL": f"{SANDBOX_URL}/xero/identity/connect/token",
    "XERO_CONNECTIONS_URL": f"{SANDBOX_URL}/xero/api/connections",
    "XERO_REVOCATION_URL": f"{SANDBOX_URL}/xero/identity/connect/revocation",
    "XERO_API_URL": f"{SANDBOX_URL}/xero/api/api.xro/2.0",
    "XERO_CLIENT_ID": "unlinker-demo",
    "XERO_CLIENT_SECRET": "sandbox-secret",
}
ACTIONSTEP_AUTHORIZE_URL = env_str(
    "ACTIONSTEP_AUTHORIZE_URL", SANDBOX_DEFAULTS["ACTIONSTEP_AUTHORIZE_URL"]
)
ACTIONSTEP_TOKEN_URL = env_str("ACTIONSTEP_TOKEN_URL", SANDBOX_DEFAULTS["ACTIONSTEP_TOKEN_URL"])
ACTIONSTEP_CLIENT_ID = env_str("ACTIONSTEP_CLIENT_ID", SANDBOX_DEFAULTS["ACTIONSTEP_CLIENT_ID"])
ACTIONSTEP_CLIENT_SECRET = env_str(
    "ACTIONSTEP_CLIENT_SECRET", SANDBOX_DEFAULTS["ACTIONSTEP_CLIENT_SECRET"]
)
ACTIONSTEP_SCOPES = env_str("ACTIONSTEP_SCOPES", "all")
ACTIONSTEP_CALLS_PER_MINUTE = env_int("ACTIONSTEP_CALLS_PER_MINUTE", 600, minimum=1)

XERO_AUTHORIZE_URL = env_str("XERO_AUTHORIZE_URL", SANDBOX_DEFAULTS["XERO_AUTHORIZE_URL"])
XERO_TOKEN_URL = env_str("XERO_TOKEN_URL", SANDBOX_DEFAULTS["XERO_TOKEN_URL"])
XERO_CONNECTIONS_URL = env_str("XERO_CONNECTIONS_URL", SANDBOX_DEFAULTS["XERO_CONNECTIONS_URL"])
XERO_REVOCATION_URL = env_str("XERO_REVOCATION_URL", SANDBOX_DEFAULTS["XERO_REVOCATION_URL"])
XERO_API_URL = env_str("XERO_API_URL", SANDBOX_DEFAULTS["XERO_API_URL"]).rstrip("/")
XERO_CLIENT_ID = env_str("XERO_CLIENT_ID", SANDBOX_DEFAULTS["XERO_CLIENT_ID"])
XERO_CLIENT_SECRET = env_str("XERO_CLIENT_SECRET", SANDBOX_DEFAULTS["XERO_CLIENT_SECRET"])
XERO_SCOPES = env_str(
    "XERO_SCOPES",
    # accounting.settings.read: GET /Organisation, for the lock dates and the time zone
    "offline_access accounting.invoices accounting.payments accounting.settings.read",
)
# The webhook key Xero shows for the app's webhook (developer.xero.com > the app > Webhooks);
# without it /webhooks/xero/ accepts nothing.
XERO_WEBHOOK_KEY = env_str("XERO_WEBHOOK_KEY", "")
# The connect buttons' forms are redirected to the providers' authorize URLs, whose origins the
# Connections page's CSP (form-action) allows; list here any other origin a provider's authorize
# page redirects to within the same navigation (e.g. a separate login host).
OAUTH_CONSENT_ORIGINS = env_list("OAUTH_CONSENT_ORIGINS", "")
XERO_CALLS_PER_MINUTE = env_int("XERO_CALLS_PER_MINUTE", 60, minimum=1)
XERO_CONCURRENT_CALLS = env_int("XERO_CONCURRENT_CALLS", 5, minimum=1)
XERO_CALLS_PER_DAY = env_int("XERO_CALLS_PER_DAY", 5000, minimum=1)
# The lists link each record to its page in Xero (a documented pattern on this base) and in
# Actionstep (patterns that are assumptions: see unlinker/integrations/weblinks.py).
XERO_WEB_URL = env_str("XERO_WEB_URL", "https://go.xero.com").rstrip("/")
ACTIONSTEP_MATTER_URL = env_str("ACTIONSTEP_MATTER_URL", actionstep_resources.MATTER_PAGE_URL)
ACTIONSTEP_INVOICE_URL = env_str("ACTIONSTEP_INVOICE_URL", actionstep_resources.INVOICE_PAGE_URL)
# What "free the number" appends to a Xero invoice's number in the call that voids it, so that
# the invoice approved again in Actionstep can be created in Xero under its own number.
XERO_VOID_NUMBER_SUFFIX = env_str("XERO_VOID_NUMBER_SUFFIX", "-VOID")
if not XERO_VOID_NUMBER_SUFFIX.strip() or len(XERO_VOID_NUMBER_SUFFIX) > 32:
    raise ImproperlyConfigured(
        f"XERO_VOID_NUMBER_SUFFIX must be 1 to 32 characters, not {XERO_VOID_NUMBER_SUFFIX!r}"
    )
HTTP_TIMEOUT_SECONDS = env_float("HTTP_TIMEOUT_SECONDS", 30.0, minimum=0.1)
# How long a call waits for its tenant's throttle before giving up (RateLimited).
API_THROTTLE_MAX_WAIT_SECONDS = env_float("API_THROTTLE_MAX_WAIT_SECONDS", 120.0, minimum=0)
# Benchmarks against the sandbox compress time: 60 makes the clients' "minute" last a second.
API_TIME_SCALE = env_float("API_TIME_SCALE", 1.0, minimum=0.001)

if not DEBUG and not UNLINKER_SANDBOX:
    _still_sandbox = [name for name, value in SANDBOX_DEFAULTS.items() if globals()[name] == value]
    if _still_sandbox:
        raise ImproperlyConfigured(
            "DEBUG is off but these settings still have the sandbox's values: "
            f"{', '.join(_still_sandbox)}. Set them for the real Actionstep and Xero apps "
            "(README, 'Registering the OAuth apps'), or set UNLINKER_SANDBOX=1 if this "
            "deployment runs the sandbox on purpose."
        )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
