"""gunicorn settings for production: `gunicorn -c config/gunicorn.py config.wsgi`.

Threaded workers (gthread): a Codex CLI turn streams the model's answer for as long as the model
writes, often minutes, and holds its thread meanwhile; the other threads keep answering
everything else. WEB_CONCURRENCY processes x GUNICORN_THREADS threads is how many requests,
streams included, are served at once (`make bench` measures 50 streams of 30 s beside whoami).

The access log names the path only (%(U)s), never the query string: a client that wrongly puts
an access token in the URL must not have it written to a log.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "40"))
# A worker takes a connection only when one of its threads is free to serve it (see
# on_starting). Idle keep-alive connections would count against that limit, so there are none:
# the load balancer opens a connection per request, which costs little on its network.
keepalive = 0
# A stream is one long response: gthread's timeout is about a stuck worker, not a slow request.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
accesslog = "-"
# Paths can carry secrets (an invitation's key, a password reset token): blanked out.
logger_class = "console.accesslog.ScrubbingGunicornLogger"
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms "%(a)s"'
errorlog = "-"


def on_starting(server):
    """At most as many connections per worker as it has threads (`--threads` included).
    Otherwise a worker whose threads all hold streams would accept calls and queue them behind
    the streams, for minutes, while another worker has threads to spare: the kernel hands a
    connection to whichever worker asks first, not to one that can serve it."""
    server.cfg.set("worker_connections", server.cfg.threads)


on_reload = on_starting  # a reload (SIGHUP) reads this file again: the cap goes on again
