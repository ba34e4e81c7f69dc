"""The WSGI entry point: two handlers over one site.

Calls under `/api/` and `/codex/` (bearer tokens, JSON, no browser) go through a lean handler
with only the middleware they need (SecurityMiddleware and CommonMiddleware). Sessions,
authentication, CSRF, messages, the CSP and sign-in guarding serve browsers: on the API they
would only cost time (the token check runs on every Codex CLI call, four times per `codex exec`).
Everything else goes through the full stack of `settings.MIDDLEWARE`.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
site = get_wsgi_application()

from console.django_private import LeanHandler  # noqa: E402  (after Django is set up)
from console.errors import API_PREFIXES  # noqa: E402

API_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

# The calls automation makes most: resolved once, at start-up, through the URLconf.
HOT_PATHS = (
    "/api/v1/whoami", "/api/v1/runs", "/codex/auth/v1/user-auth-credential/whoami",
    "/codex/backend-api/wham/config/bundle", "/codex/api/responses",
)

api = LeanHandler(API_MIDDLEWARE, HOT_PATHS)


def application(environ, start_response):
    if environ.get("PATH_INFO", "").startswith(API_PREFIXES):
        return api(environ, start_response)
    return site(environ, start_response)
