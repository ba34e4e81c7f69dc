"""Deployment checks of our own (`manage.py check --deploy`)."""

from django.conf import settings
from django.core.checks import Tags, Warning, register

PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@register(Tags.security, deploy=True)
def shared_cache(app_configs, **kwargs):
    """Sign-in limits, the API throttle and the leak-report limit count in the cache: a cache
    per process lets every worker count on its own."""
    if settings.CACHES["default"]["BACKEND"] in PER_PROCESS_CACHES:
        return [Warning(
            "CACHE_URL is not set: sign-in limits and the API's throttle are counted per "
            "process, so several workers or servers each allow the full number of attempts.",
            hint="Set CACHE_URL to a shared cache, e.g. redis://127.0.0.1:6379/0.",
            id="console.W001",
        )]
    return []
