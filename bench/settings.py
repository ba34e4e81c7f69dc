"""The site's own settings, with one extra URL: the floor view the API is compared to.

Everything else (middleware, database, caches, security) stays exactly as configured from the
environment, so the numbers describe the site as deployed.
"""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.floor_urls"
