"""gunicorn's access log with secrets blanked out of the path (`logger_class` in
config/gunicorn.py). Plain Python, loaded by gunicorn's master before Django is set up."""

from gunicorn.glogging import Logger

from .scrubbing import scrub


class ScrubbingGunicornLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("U", "r", "f"):
            if isinstance(atoms.get(key), str):
                atoms[key] = scrub(atoms[key])
        return atoms
