"""The benchmark: `make bench` runs bench/run.py. Nothing here is part of the site."""
