"""The worker's side of the mail outbox (`manage.py send_queued_mail`): claim a due mail,
render it, send it outside any transaction, record what happened.

- **Claim**: one short transaction takes the pending mail due first (`FOR UPDATE SKIP LOCKED` on
  PostgreSQL, so several workers never wait for each other; SQLite's transactions begin
  IMMEDIATE, which serialises them) and moves its `next_attempt_at` to the end of a lease
  (`MAIL_LEASE` seconds) while counting the attempt. A worker killed mid-send (SIGKILL, a lost
  machine) leaves a row that is due again when the lease ends, for any worker: at least once,
  nothing lost.
- **Send**, with no transaction open and no row locked: the kind's renderer (console/mail.py)
  makes the message, the mail server gets it.
- **Record**, only while this worker still holds the claim (the row's worker and attempt
  count, as claimed): sent, nothing to send (skipped), or a failure. A mail server that is down,
  slow or answers 4xx: the mail is due again after a delay that doubles with each attempt
  (`MAIL_RETRY_DELAY`, then twice that, ... up to `MAIL_RETRY_MAX_DELAY`, each with ±20 %
  jitter so that many mails do not come back at once), for as long as it takes. A permanent
  refusal (5xx for the recipient or the message) ends as failed, with the error, logged.

Why not django-tasks (the backport of Django 6's tasks framework) and its database backend:
a task whose worker is SIGKILLed stays RUNNING for ever (no lease, nothing takes it back:
upstream issue #46), there are no retries or backoff, and its ImmediateBackend sends at enqueue
even when the transaction then rolls back. The outbox is as small as the patches would be.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import smtplib
import socket
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules

from .mail import RENDERERS
from .models import OutboundMail

logger = logging.getLogger(__name__)

PENDING, SENT, SKIPPED, FAILED = (OutboundMail.Status.PENDING, OutboundMail.Status.SENT,
                                  OutboundMail.Status.SKIPPED, OutboundMail.Status.FAILED)
_discovered = False


def discover() -> None:
    """Import every app's `mail` module, where the renderers of its kinds are registered."""
    global _discovered
    if not _discovered:
        autodiscover_modules("mail")
        _discovered = True


def worker_id() -> str:
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"


def backoff(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt: doubling, capped, jittered."""
    base, cap = settings.MAIL_RETRY_DELAY, settings.MAIL_RETRY_MAX_DELAY
    delay = min(cap, base * 2 ** min(attempts - 1, 30)) * random.uniform(0.8, 1.2)
    return timedelta(seconds=max(1.0, min(cap, delay)))


def permanent(error: Exception) -> bool:
    """A refusal that trying again will not change: 5xx for the recipient or for the message.
    (A refused sender or failed authentication is the console's configuration: tried again.)"""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return bool(error.recipients) and all(code >= 500 for code, _ in
                                              error.recipients.values())
    if isinstance(error, smtplib.SMTPDataError):
        return error.smtp_code >= 500
    return False


def claim(worker: str) -> OutboundMail | None:
    """The pending mail due first, claimed by `worker` for one lease; None when none is due."""
    now = timezone.now()
    due = OutboundMail.objects.filter(status=PENDING, next_attempt_at__lte=now)
    if not due.exists():  # nothing to do: no lock taken (SQLite locks the whole database)
        return None
    with transaction.atomic():
        mail = (due.order_by("next_attempt_at", "id")
                .select_for_update(skip_locked=True).first())
        if mail is None:
            return None
        mail.attempts += 1
        mail.claimed_by = worker
        mail.next_attempt_at = now + timedelta(seconds=settings.MAIL_LEASE)
        mail.save(update_fields=["attempts", "claimed_by", "next_attempt_at"])
    return mail


def deliver(mail: OutboundMail, worker: str) -> str:
    """Render and send a claimed mail; record the outcome if the claim still holds. Returns
    "sent", "skipped", "retry" or "failed"."""
    held = OutboundMail.objects.filter(pk=mail.pk, status=PENDING, claimed_by=worker,
                                       attempts=mail.attempts)
    try:
        render = RENDERERS.get(mail.kind)
        if render is None:  # a newer release's kind, met by an older worker: another will
            raise LookupError(f"this worker cannot render mail of kind {mail.kind!r}")
        message = render(mail)
        if message is not None:
            message.send(fail_silently=False)
    except Exception as error:
        problem = f"{type(error).__name__}: {error}"[:2000]
        if permanent(error):
            held.update(status=FAILED, claimed_by="", last_error=problem,
                        finished_at=timezone.now())
            logger.error("Mail %s (%s to %s) was refused by the mail server and will not be "
                         "tried again: %s", mail.pk, mail.kind, mail.to, problem)
            return "failed"
        delay = backoff(mail.attempts)
        held.update(claimed_by="", last_error=problem, next_attempt_at=timezone.now() + delay)
        logger.warning("Mail %s (%s to %s) could not be sent (attempt %d); trying again in "
                       "%d s: %s", mail.pk, mail.kind, mail.to, mail.attempts,
                       delay.total_seconds(), problem)
        return "retry"
    outcome = SENT if message is not None else SKIPPED
    if not held.update(status=outcome, claimed_by="", last_error="", finished_at=timezone.now()):
        logger.warning("Mail %s (%s) was sent, but its claim had lapsed meanwhile: it may go "
                       "twice", mail.pk, mail.kind)
    logger.info("Mail %s (%s to %s): %s", mail.pk, mail.kind, message.to[0] if message else
                mail.to, "sent" if message is not None else "nothing to send")
    return str(outcome)


def send_due(*, worker: str | None = None, stop: Callable[[], bool] = lambda: False) -> Counter:
    """Send every mail that is due now, one after the other; how many of each outcome. A mail
    that fails is due again only later, so this ends."""
    discover()
    worker = worker or worker_id()
    done: Counter = Counter()
    while not stop():
        mail = claim(worker)
        if mail is None:
            break
        done[deliver(mail, worker)] += 1
    return done


def prune() -> int:
    """Forget mail finished more than `MAIL_KEEP_DAYS` days ago; how many rows went."""
    before = timezone.now() - timedelta(days=settings.MAIL_KEEP_DAYS)
    deleted, _ = OutboundMail.objects.filter(finished_at__lt=before).delete()
    return deleted
