"""Settings for the workspace console: one module, every knob from the environment.

Variables (and an optional ``.env`` file beside manage.py) are listed with their defaults in the
README's configuration table.
"""

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

_DEV_SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. With DEBUG off the console needs a real secret key: "
            "set SECRET_KEY to a long random string (or set DEBUG=true for development)."
        )
    SECRET_KEY = _DEV_SECRET_KEY
elif not DEBUG and (SECRET_KEY.startswith("django-insecure") or len(SECRET_KEY) < 50
                    or len(set(SECRET_KEY)) < 5):
    raise ImproperlyConfigured(
        "SECRET_KEY is too weak for production: use at least 50 random characters "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "ALLOWED_HOSTS is not set. With DEBUG off list the host names the console is served "
        "under, comma-separated (for example ALLOWED_HOSTS=console.example.com)."
    )
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "axes",
    "csp",
    "console",
    "workspaces",
    "tokens",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "console.middleware.ContentSecurityPolicyMiddleware",
    "console.middleware.PrivatePagesMiddleware",
    # Last, as django-axes asks: it turns a refused sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# django-axes refuses locked-out sign-ins before the password is checked; then Django's own.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "workspaces.signin.PeopleOnlyBackend",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
            ],
        },
    },
]

# Databases: embedded SQLite unless DATABASE_URL says otherwise. PostgreSQL keeps its
# connections open between requests (a new connection per request made a token check ~5x
# slower) and checks them before reuse.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=600)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    # The API's token check binds on the server (tokens/api.py) so PostgreSQL can keep its plan:
    # planning that lookup costs ~20x running it. Only those server-binding statements are
    # prepared; Django's own queries bind on the client and are unaffected. Set
    # DB_PREPARED_STATEMENTS=false behind a pooler that cannot keep them (PgBouncer < 1.21 in
    # transaction mode).
    if env.bool("DB_PREPARED_STATEMENTS", default=True):
        DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 0)
else:
    # Writers take the lock when their transaction begins, so two at once wait for each other
    # instead of failing with "database is locked" (a double-clicked form, say).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )
    # Tests use a file, not shared-cache memory, so that concurrent tests see SQLite's real
    # locking (memory databases fail at once where a file waits for the lock).
    DATABASES["default"].setdefault("TEST", {}).setdefault(
        "NAME", str(Path(tempfile.gettempdir()) / f"console-test-{os.getpid()}.sqlite3")
    )

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

# Mail: password resets, invitations and token notices, queued in the database and sent by the
# worker (`manage.py send_queued_mail`, console/outbox.py). In development they print on the
# worker's console; with DEBUG off there is no default, and a backend that delivers nothing
# (console, file, memory, dummy) is refused, so nothing meant for a person lands in a log.
EMAIL_URL = env.str("EMAIL_URL", default="consolemail://" if DEBUG else "")
if not EMAIL_URL:
    raise ImproperlyConfigured(
        "EMAIL_URL is not set. With DEBUG off the console mails password resets, invitations "
        "and token notices: set EMAIL_URL (for example smtp+tls://user:pass@smtp.example.com:587)."
    )
vars().update(env.email_url_config(EMAIL_URL))
_NOT_DELIVERING = {"console": "prints mail on the console", "filebased": "writes mail to files",
                   "locmem": "keeps mail in memory", "dummy": "throws mail away"}
_backend = EMAIL_BACKEND.removeprefix("django.core.mail.backends.").removesuffix(".EmailBackend")  # noqa: F821
if not DEBUG and _backend in _NOT_DELIVERING:
    raise ImproperlyConfigured(
        f"EMAIL_URL={EMAIL_URL.split(':', 1)[0]}://... names a mail backend that "
        f"{_NOT_DELIVERING[_backend]} instead of delivering it. With DEBUG off password resets, "
        "invitations and token notices must reach people: set EMAIL_URL to your mail server "
        "(for example smtp+tls://user:pass@smtp.example.com:587)."
    )
# Seconds the worker waits on a mail server that does not answer (per step of a send).
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Codex workspace console <console@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# The queue (console/outbox.py): a worker holds a mail it sends for MAIL_LEASE seconds (far
# longer than a send can take: EMAIL_TIMEOUT per step), after which another worker may take it
# up; a failed attempt is tried again after MAIL_RETRY_DELAY seconds, doubling each time up to
# MAIL_RETRY_MAX_DELAY; finished mail is forgotten after MAIL_KEEP_DAYS days.
MAIL_LEASE = env.int("MAIL_LEASE", default=300)
MAIL_RETRY_DELAY = env.int("MAIL_RETRY_DELAY", default=30)
MAIL_RETRY_MAX_DELAY = env.int("MAIL_RETRY_MAX_DELAY", default=3600)
MAIL_KEEP_DAYS = env.int("MAIL_KEEP_DAYS", default=30)
# The console's own address, for links in mail (the worker renders it outside any request).
# In development it follows PORT, the port `make run` serves on (`PORT=8123 make run`).
PORT = env.int("PORT", default=8000)
SITE_URL = env.str("SITE_URL", default=f"http://127.0.0.1:{PORT}" if DEBUG else
                   f"https://{ALLOWED_HOSTS[0].lstrip('.')}").rstrip("/")

AUTH_USER_MODEL = "workspaces.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Security. With DEBUG off: secure cookies, HSTS and an HTTPS redirect. Behind a proxy that
# terminates TLS set SECURE_PROXY_SSL_HEADER=true (it must strip X-Forwarded-Proto from
# clients), and SECURE_SSL_REDIRECT=false when the proxy already redirects.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # load balancers probe over plain HTTP
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_HSTS_SECONDS = 0 if DEBUG else env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# The API throttles failed attempts per client address. The address is REMOTE_ADDR unless a
# trusted proxy header is named here (for example HTTP_X_FORWARDED_FOR behind a proxy that
# appends to it): the last address in that header, the one the proxy itself wrote, is used.
TRUSTED_PROXY_HEADER = env.str("TRUSTED_PROXY_HEADER", default="")
API_FAILURE_LIMIT = env.int("API_FAILURE_LIMIT", default=30)
API_FAILURE_WINDOW = env.int("API_FAILURE_WINDOW", default=300)
# The leak report (POST /api/v1/tokens/revoke) takes no credential: every call counts.
LEAK_REPORT_LIMIT = env.int("LEAK_REPORT_LIMIT", default=60)
LEAK_REPORT_WINDOW = env.int("LEAK_REPORT_WINDOW", default=3600)
# GitHub's secret scanning partner program signs its leak reports: the public keys to check
# them against (tokens/secret_scanning.py).
SECRET_SCANNING_KEYS_URL = env.str(
    "SECRET_SCANNING_KEYS_URL",
    default="https://api.github.com/meta/public_keys/secret_scanning")

# The Codex CLI's gateway (/codex/api/responses) forwards each turn to this model provider's
# Responses endpoint, with this key (never the user's token). The URL is a base URL as the
# OpenAI SDK takes it (https://api.openai.com/v1, to which /responses is added) or the full
# /responses address (tokens/provider.py). With DEBUG on and no provider, a
# built-in demo model answers, so the CLI works against a laptop's `make run`.
CODEX_UPSTREAM_URL = env.str("CODEX_UPSTREAM_URL", default="")
CODEX_UPSTREAM_API_KEY = env.str("CODEX_UPSTREAM_API_KEY", default="")
CODEX_GATEWAY_MAX_BODY = env.int("CODEX_GATEWAY_MAX_BODY", default=32 * 1024 * 1024)

# The governance record keeps runs this many days; `manage.py prune_runs` (cron, daily) removes
# older ones.
RUN_RETENTION_DAYS = env.int("RUN_RETENTION_DAYS", default=400)

# Sign-in guarding (django-axes, workspaces/signin.py): an email is refused after
# SIGN_IN_EMAIL_LIMIT failures, an address after SIGN_IN_ADDRESS_LIMIT, each within
# SIGN_IN_WINDOW seconds, and stays refused for SIGN_IN_WINDOW seconds after its last failure.
SIGN_IN_EMAIL_LIMIT = env.int("SIGN_IN_EMAIL_LIMIT", default=10)
SIGN_IN_ADDRESS_LIMIT = env.int("SIGN_IN_ADDRESS_LIMIT", default=50)
SIGN_IN_WINDOW = env.int("SIGN_IN_WINDOW", default=900)
PASSWORD_RESET_EMAIL_LIMIT = env.int("PASSWORD_RESET_EMAIL_LIMIT", default=5)  # per hour
PASSWORD_RESET_ADDRESS_LIMIT = env.int("PASSWORD_RESET_ADDRESS_LIMIT", default=20)  # per hour
AXES_HANDLER = "workspaces.signin.SignInGuard"
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "workspaces.signin.username_of"
AXES_CLIENT_IP_CALLABLE = "workspaces.signin.address_of"
AXES_COOLOFF_TIME = timedelta(seconds=SIGN_IN_WINDOW)
# SignInGuard decides when to refuse (from the attempt after the limit, the right password
# included); axes itself locks nothing at the moment of a failure.
AXES_LOCK_OUT_AT_FAILURE = False
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "workspaces.signin.locked_out"
AXES_VERBOSE = False
AXES_DISABLE_ACCESS_LOG = True

# Content-Security-Policy on every response: our own scripts, styles and images only, nothing
# inline, no frames, no plugins.
from csp.constants import NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "object-src": [NONE],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"scrub_tokens": {"()": "console.scrubbing.ScrubFilter"}},
    "formatters": {
        "plain": {
            "()": "console.scrubbing.ScrubbingFormatter",
            "format": "{asctime} {levelname} {name} {message}",
            "style": "{",
        }
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "plain",
            "filters": ["scrub_tokens"],
        },
    },
    "root": {"handlers": ["stdout"], "level": env.str("LOG_LEVEL", default="INFO")},
    # Django's own loggers write through the same scrubbing handler (runserver's request
    # lines include query strings).
    "loggers": {
        "django": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
    },
}
DEFAULT_EXCEPTION_REPORTER_FILTER = "console.reporting.SecretSafeExceptionReporterFilter"
