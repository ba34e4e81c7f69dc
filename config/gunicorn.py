"""gunicorn settings for production: `gunicorn -c config/gunicorn.py config.asgi:application`
(`make serve` runs exactly this).

Each worker is an event loop (uvicorn, config/workers.py) running config/asgi.py: Codex CLI
turns stream on the loop and hold no thread, so one process holds thousands of open turns;
the API and the pages are served by pools of threads of their own beside them (sized in
config/asgi.py). WEB_CONCURRENCY processes (default 2, one per CPU).

Rolling restarts drain: on SIGTERM or a reload (SIGHUP) a worker stops accepting and its open
turns go on for up to GATEWAY_DRAIN_SECONDS (default 600) while new connections go to the new
workers (or, behind the load balancer, to the other servers).

The access log names the path only, never the query string: a client that wrongly puts an
access token in the URL must not have it written to a log.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:" + os.environ.get("PORT", "8000"))
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "config.workers.ConsoleWorker"
# Idle keep-alive connections cost a loop nothing: the load balancer may keep them.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "75"))
# How long a worker's loop may go without answering the master before it counts as stuck.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = int(os.environ.get("GATEWAY_DRAIN_SECONDS", "600"))
backlog = 4096
accesslog = "-"
# Paths can carry secrets (an invitation's key, a password reset token): blanked out.
logger_class = "console.accesslog.ScrubbingGunicornLogger"
errorlog = "-"
