"""gunicorn settings for production: `gunicorn -c config/gunicorn.py config.wsgi`.

The access log names the path only (%(U)s), never the query string: a client that wrongly puts
an access token in the URL must not have it written to a log.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
accesslog = "-"
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms "%(a)s"'
errorlog = "-"
