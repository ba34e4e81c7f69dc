"""The core's one table: the mail outbox (console/mail.py queues, console/outbox.py sends)."""

from django.db import models
from django.utils import timezone


class OutboundMail(models.Model):
    """A mail to send: its kind and what it is about (ids and plain words, never a secret),
    queued in the transaction of the change that causes it and rendered by the worker when it
    goes. A pending row is due at `next_attempt_at`; a worker that claims it moves that to the
    end of its lease, so a worker that dies mid-send leaves a row that is due again later."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Nothing to send"  # no such account, the token or invitation gone
        FAILED = "failed", "Failed"  # refused for good by the mail server

    kind = models.CharField(max_length=50)
    to = models.CharField("to", max_length=254, blank=True)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    claimed_by = models.CharField(max_length=64, blank=True)
    last_error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The worker's question: the pending mail due first.
            models.Index(fields=["next_attempt_at", "id"], name="outbound_mail_due",
                         condition=models.Q(status="pending")),
            models.Index(fields=["finished_at"], name="outbound_mail_finished",
                         condition=models.Q(finished_at__isnull=False)),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "sent", "skipped", "failed"]),
                name="outbound_mail_status_valid"),
        ]

    def __str__(self):
        return f"{self.kind} to {self.to or '(to be found)'} ({self.status})"
