"""Mail in tests. A request only queues mail (console/mail.py); `delivered()` runs the worker
once over what is due, as `manage.py send_queued_mail --once` does, and returns what went out
(Django's test outbox). `SMTPServer` is a real SMTP server (aiosmtpd) on loopback that records
the connections it gets and the messages it accepts, and can hold a message's DATA or refuse
recipients."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from django.core import mail

from console import outbox

from .processes import database_url, free_port

ROOT = Path(__file__).resolve().parent.parent


def delivered() -> list:
    """Send every mail that is due (the worker's pass, in this process); Django's test outbox."""
    outbox.send_due()
    return mail.outbox


class Inbox:
    """aiosmtpd's handler: what the server accepted. `refuse` answers every recipient with
    it (e.g. "550 No such user"); `hold`, while not set, keeps each message's DATA unanswered."""

    def __init__(self):
        self.messages = []  # envelopes whose DATA arrived
        self.connections = 0
        self.refuse: str | None = None
        self.hold: threading.Event | None = None
        self.delay = 0.0  # seconds before each message's DATA is answered
        self.data_arrived = threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        self.data_arrived.set()
        if self.hold is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.hold.wait, 60)
        await asyncio.sleep(self.delay)
        return "250 Message accepted"

    def to(self) -> list[str]:
        return sorted(address for envelope in self.messages for address in envelope.rcpt_tos)


class SMTPServer(Controller):
    """A real SMTP server on 127.0.0.1:`port` (a free one by default) until `stop()`."""

    def __init__(self, port: int | None = None):
        self.inbox = Inbox()
        super().__init__(self.inbox, hostname="127.0.0.1", port=port or free_port())

    def factory(self):
        inbox = self.inbox

        class Counting(SMTP):
            def connection_made(self, transport):
                inbox.connections += 1
                super().connection_made(transport)

        return Counting(self.handler, **self.SMTP_kwargs)

    def start(self):
        super().start()
        self.inbox.connections = 0  # the controller's own check that the server answers

    def use(self, settings) -> None:
        """Make the console send through this server (Django's SMTP backend)."""
        use_smtp_port(settings, self.port)


def use_smtp_port(settings, port: int) -> None:
    """Send through whatever listens on `port` (nothing, maybe: a mail server that is down)."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""


def start_worker(smtp_port: int, *args: str, log: Path, **env: str) -> subprocess.Popen:
    """`manage.py send_queued_mail` in its own process, on the test database, sending through
    127.0.0.1:`smtp_port`."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "manage.py", "send_queued_mail", *args], cwd=ROOT,
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "DEBUG": "true", "DATABASE_URL": database_url(),
                 "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}", "LOG_LEVEL": "INFO", **env})
