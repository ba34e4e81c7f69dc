"""Loaded with ``-p`` before Django is configured: the environment a test run needs.

A test run is a development run as far as settings go (DEBUG on, the development secret key);
pytest-django still switches DEBUG off while each test runs. Values already in the environment
win, so ``DATABASE_URL=postgres://... make test`` runs the suite on PostgreSQL.
"""

import os

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
