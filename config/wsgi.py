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

from django.conf import settings  # noqa: E402  (configured by get_wsgi_application)
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402

from tokens.api import API_PREFIXES  # noqa: E402

API_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]


# The calls automation makes most: resolved once, at start-up, through the URLconf.
HOT_PATHS = (
    "/api/v1/whoami", "/api/v1/runs", "/codex/auth/v1/user-auth-credential/whoami",
    "/codex/backend-api/wham/config/bundle", "/codex/api/responses",
)


class APIHandler(WSGIHandler):
    """Django's WSGI handler with `API_MIDDLEWARE` instead of `settings.MIDDLEWARE`, and the
    hot paths' URL resolutions remembered (walking the URLconf costs as much as the token
    check's own Python)."""

    def __init__(self):
        super().__init__()
        from django.urls import resolve

        self.hot = {path: resolve(path) for path in HOT_PATHS}

    def resolve_request(self, request):
        match = self.hot.get(request.path_info)
        if match is None:
            return super().resolve_request(request)
        request.resolver_match = match
        return match

    def load_middleware(self, is_async=False):
        # Django builds the chain from settings.MIDDLEWARE only; swap it for this one build,
        # at start-up, before any request is served.
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = API_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


api = APIHandler()


def application(environ, start_response):
    if environ.get("PATH_INFO", "").startswith(API_PREFIXES):
        return api(environ, start_response)
    return site(environ, start_response)
