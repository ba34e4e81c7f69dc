"""The bare Django floor: a separate minimal project in the same virtualenv, with only
SecurityMiddleware and CommonMiddleware and one JSON view, no database. What Django and
gunicorn cost on this machine before any application does anything: the API's requests per
second are reported as a fraction of it (as the peers' figures were taken)."""

SECRET_KEY = "bench-floor-only-never-serves-anything-else-0123456789abcdefghijkl"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "bench.floor.urls"
INSTALLED_APPS = []
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
DATABASES = {}
USE_TZ = True
WSGI_APPLICATION = "bench.floor.wsgi.application"
