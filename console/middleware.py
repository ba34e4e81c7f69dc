"""Response headers every page needs: the Content-Security-Policy, and the private caching of
signed-in pages."""

from dataclasses import asdict

from csp.constants import HEADER
from csp.middleware import CSPMiddleware
from csp.utils import build_policy
from django.utils.cache import add_never_cache_headers


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, without its one exception: with DEBUG on it leaves Django's
    technical 404 and 500 pages without the policy (so that their inline styles apply). The
    policy holds on every HTML response, those pages included; they read plainly unstyled."""

    def process_response(self, request, response):
        response = super().process_response(request, response)
        if HEADER not in response and not getattr(response, "_csp_exempt", False):
            policy = build_policy(**asdict(self.get_policy_parts(request=request,
                                                                 response=response)))
            if policy:
                response[HEADER] = policy
        return response


class PrivatePagesMiddleware:
    """Every response to a signed-in user: `Cache-Control: private, no-store` (nothing about a
    workspace stays in a browser's or a proxy's cache)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            add_never_cache_headers(response)  # no-cache, no-store, must-revalidate, private
        return response
