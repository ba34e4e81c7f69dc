"""gunicorn's access log with secrets blanked out of the path (`logger_class` in
config/gunicorn.py). Plain Python, loaded by gunicorn's master before Django is set up."""

import logging

from gunicorn.glogging import Logger

from .scrubbing import scrub


class ScrubbingGunicornLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("U", "r", "f"):
            if isinstance(atoms.get(key), str):
                atoms[key] = scrub(atoms[key])
        return atoms


class ScrubbingUvicornFilter(logging.Filter):
    """uvicorn's access log lines (config/workers.py) as gunicorn's were: the client's address,
    the method and the path only (never the query string), secrets blanked out, the status.
    uvicorn's arguments are (client, method, path with query, HTTP version, status)."""

    def filter(self, record):
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            client = str(args[0]).rsplit(":", 1)[0]
            record.msg = '%s "%s %s" %s'
            record.args = (client, args[1], scrub(args[2].split("?", 1)[0]), args[4])
        return True
