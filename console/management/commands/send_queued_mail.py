import logging
import signal
import threading
import time

from django.core.management.base import BaseCommand
from django.db import DatabaseError, InterfaceError, close_old_connections, connections

from console import outbox

logger = logging.getLogger("console.outbox")

PRUNE_EVERY = 3600  # seconds


class Command(BaseCommand):
    help = (
        "Send the queued mail (password resets, invitations, token notices and reminders): "
        "run one or more per cluster, always on. SIGTERM or Ctrl-C: the mail in hand is "
        "finished, then it exits. A worker that dies without finishing leaves nothing behind: "
        "its mail is taken up again by any worker when its lease ends."
    )

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true",
                            help="send what is due now, then exit (instead of running on)")
        parser.add_argument("--interval", type=float, default=1.0,
                            help="seconds to wait when nothing is due (default 1)")

    def handle(self, *args, once, interval, **options):
        stopping = threading.Event()

        def stop(signum, frame):
            stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        worker = outbox.worker_id()
        if once:
            done = outbox.send_due(worker=worker, stop=stopping.is_set)
            self.stdout.write(", ".join(f"{n} {what}" for what, n in sorted(done.items()))
                              or "Nothing was due.")
            return
        logger.info("Mail worker %s started: sending queued mail", worker)
        pruned_at = 0.0
        while not stopping.is_set():
            close_old_connections()
            done = None
            try:
                done = outbox.send_due(worker=worker, stop=stopping.is_set)
                if time.monotonic() - pruned_at > PRUNE_EVERY:
                    outbox.prune()
                    pruned_at = time.monotonic()
            except (DatabaseError, InterfaceError):
                # The database restarting, or PgBouncer without a server: wait and go on.
                logger.warning("Mail worker %s: the database cannot be reached; trying again "
                               "in %s s", worker, interval, exc_info=True)
                connections.close_all()
            if not done:
                stopping.wait(interval)
        logger.info("Mail worker %s stopped", worker)
