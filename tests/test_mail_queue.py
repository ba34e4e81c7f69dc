"""No mail is sent inside a request: it is queued in the transaction of the change that causes
it, and the worker (`manage.py send_queued_mail`, console/outbox.py) sends it. A mail survives a
worker killed mid-send and a mail server that is down: it is tried again with growing delays and
sent once it can be (at least once; nothing lost). Several workers at once send each mail once.
With a real SMTP server throughout."""

import logging
import os
import re
import signal
import subprocess
import threading
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from console import outbox
from console.audit import Actor
from console.models import OutboundMail
from tokens.models import AccessToken
from tokens.services import lifecycle
from workspaces.models import Invitation, Role
from workspaces.services import members, users

from .factories import UserFactory, make_token
from .mailbox import SMTPServer, delivered, start_worker, use_smtp_port
from .processes import free_port

RESET = "/accounts/password_reset/"


# Queued in the request, sent by the worker ---------------------------------------------------


def test_no_request_opens_a_connection_to_the_mail_server(
        client, owner, member_with_token_permission, smtp_server):
    dora = member_with_token_permission
    single, _ = make_token(dora, name="single")
    selected, _ = make_token(dora, name="selected")
    _, leaked = make_token(dora, name="leaked")
    make_token(dora, name="one of all")
    client.post(RESET, {"email": "alice@acme.test"})
    client.post(RESET, {"email": "ghost@acme.test"})
    client.force_login(owner.user)
    client.post("/w/acme/admin/members/invite/", {"email": "new@acme.test", "role": "member"})
    invitation = Invitation.objects.get()
    client.post(f"/w/acme/admin/invitations/{invitation.pk}/resend/")
    client.post(f"/w/acme/admin/access-tokens/{single.pk}/revoke/")
    client.post("/w/acme/admin/access-tokens/revoke/", {"ids": [selected.pk]})
    client.post("/api/v1/tokens/revoke", {"tokens": [leaked]}, content_type="application/json")
    client.post(f"/w/acme/admin/members/{dora.pk}/revoke-tokens/")
    assert not AccessToken.objects.filter(created_by=dora.user, revoked_at__isnull=True).exists()
    assert smtp_server.connections == 0 and smtp_server.messages == []
    assert OutboundMail.objects.filter(status="pending").count() == 8
    out = StringIO()
    call_command("send_queued_mail", "--once", stdout=out)
    # Nothing goes for the email without an account, nor for the invitation's first mail,
    # which was sent again after it (the later mail carries the link); the leak report's job
    # sends nothing itself: it queues the notice to the token's creator, sent in the same pass.
    assert out.getvalue().strip() == "6 sent, 3 skipped"
    assert smtp_server.connections == 6
    assert smtp_server.to() == ["alice@acme.test", *["dora@acme.test"] * 4, "new@acme.test"]


def test_a_change_rolled_back_queues_no_mail(owner, member_with_token_permission):
    token, _ = make_token(member_with_token_permission, name="ci")

    def changes():
        members.member_invite(workspace=owner.workspace, acting=owner, actor=Actor(owner.user),
                              email="new@acme.test", role=Role.MEMBER)
        lifecycle.token_revoke(token=token, acting=owner, actor=Actor(owner.user))
        users.password_reset_request(email="alice@acme.test")

    with pytest.raises(RuntimeError), transaction.atomic():
        changes()
        assert OutboundMail.objects.count() == 3
        raise RuntimeError("something after the changes failed")
    assert not OutboundMail.objects.exists() and not Invitation.objects.exists()
    token.refresh_from_db()
    assert token.revoked_at is None
    assert delivered() == []
    changes()
    assert sorted(m.to[0] for m in delivered()) == ["alice@acme.test", "dora@acme.test",
                                                    "new@acme.test"]


def test_a_reset_does_the_same_work_whether_or_not_the_email_has_an_account(client, owner,
                                                                            time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    statements = {}
    for email in ("alice@acme.test", "ghost@acme.test"):
        with CaptureQueriesContext(connection) as captured:
            assert client.post(RESET, {"email": email}).status_code == 302
        statements[email] = [re.sub(r'"s\d+_x\d+"', "SAVEPOINT", q["sql"])
                             .replace(email, "EMAIL") for q in captured.captured_queries]
    assert statements["alice@acme.test"] == statements["ghost@acme.test"]
    assert len([q for q in statements["ghost@acme.test"] if "SAVEPOINT" not in q]) == 1
    # (the queued reset, and nothing else)
    assert list(OutboundMail.objects.values_list("kind", "params")) == [
        ("password_reset", {"email": "ghost@acme.test"}),
        ("password_reset", {"email": "alice@acme.test"})]


def test_a_queued_mail_holds_no_secret(client, owner, member_with_token_permission):
    """A mail is queued as what it is about; the reset link's token and the invitation's key
    are made when it goes, so they are in the mail only."""
    client.post(RESET, {"email": "alice@acme.test"})
    client.force_login(owner.user)
    client.post("/w/acme/admin/members/invite/", {"email": "new@acme.test", "role": "member"})
    queued = list(OutboundMail.objects.values("to", "params", "kind"))
    sent = delivered()
    secrets = [re.search(r"/(accounts/reset|invitations)/(\S+)/", m.body).group(2) for m in sent]
    assert len(secrets) == 2
    for secret in secrets:
        assert secret not in str(queued) and secret not in str(list(OutboundMail.objects.values()))


# A worker killed, stopped, several at once ---------------------------------------------------


@pytest.fixture
def held_server():
    """A real SMTP server that does not answer a message's DATA until `inbox.hold` is set."""
    server = SMTPServer()
    server.inbox.hold = threading.Event()
    server.start()
    yield server
    server.inbox.hold.set()
    server.stop()


def stop(worker: subprocess.Popen, sig=signal.SIGKILL) -> None:
    try:
        os.killpg(worker.pid, sig)
    except ProcessLookupError:
        pass


def test_a_worker_killed_mid_send_loses_nothing(transactional_db, held_server, tmp_path,
                                                time_machine, settings):
    UserFactory(email="alice@acme.test")
    users.password_reset_request(email="alice@acme.test")
    worker = start_worker(held_server.port, log=tmp_path / "worker.log", MAIL_LEASE="120")
    try:
        assert held_server.inbox.data_arrived.wait(60), (tmp_path / "worker.log").read_text()
        stop(worker)  # SIGKILL while the mail server holds the message's DATA
        worker.wait(10)
    finally:
        stop(worker)
    held_server.inbox.hold.set()
    mail = OutboundMail.objects.get()
    assert (mail.status, mail.attempts) == ("pending", 1) and mail.claimed_by
    lease_ends = mail.next_attempt_at
    assert lease_ends > timezone.now() + timedelta(seconds=100)
    held_server.use(settings)
    assert outbox.send_due() == {}  # claimed by the dead worker until its lease ends
    time_machine.move_to(lease_ends + timedelta(seconds=1), tick=False)
    assert outbox.send_due() == {"sent": 1}  # another worker
    mail.refresh_from_db()
    assert (mail.status, mail.attempts, mail.claimed_by) == ("sent", 2, "")
    assert held_server.inbox.to() == ["alice@acme.test"] * 2  # at least once


def test_sigterm_lets_the_worker_finish_the_mail_in_hand(transactional_db, held_server,
                                                         tmp_path):
    UserFactory(email="alice@acme.test")
    users.password_reset_request(email="alice@acme.test")
    users.password_reset_request(email="alice@acme.test")
    # PORT as `PORT=8123 make run` sets it: the links in mail name that port.
    worker = start_worker(held_server.port, log=tmp_path / "worker.log", PORT="8123")
    try:
        assert held_server.inbox.data_arrived.wait(60), (tmp_path / "worker.log").read_text()
        stop(worker, signal.SIGTERM)
        held_server.inbox.hold.set()
        assert worker.wait(30) == 0
    finally:
        stop(worker)
    assert list(OutboundMail.objects.order_by("id").values_list("status", "attempts")) == [
        ("sent", 1), ("pending", 0)]  # the mail in hand went; the next waits for a worker
    (envelope,) = held_server.inbox.messages
    assert "http://127.0.0.1:8123/accounts/reset/" in envelope.content.decode()
    log = (tmp_path / "worker.log").read_text()
    assert "Mail worker" in log and "stopped" in log


def test_several_workers_at_once_send_each_mail_once(transactional_db, tmp_path):
    """Three workers waiting for mail; thirty mails queued at once, each a little slow to send:
    the workers share them, and each goes once."""
    emails = [f"person{n:02}@acme.test" for n in range(30)]
    for email in emails:
        UserFactory(email=email)
    server = SMTPServer()
    server.inbox.delay = 0.1
    server.start()
    logs = [tmp_path / f"worker-{n}.log" for n in range(3)]
    workers = [start_worker(server.port, "--interval", "0.2", log=log) for log in logs]
    try:
        for log in logs:
            wait_for(lambda log=log: log.exists() and "started" in log.read_text(), workers)
        with transaction.atomic():
            for email in emails:
                users.password_reset_request(email=email)
        wait_for(lambda: not OutboundMail.objects.filter(status="pending").exists(), workers)
        for worker in workers:
            stop(worker, signal.SIGTERM)
        codes = [worker.wait(30) for worker in workers]
    finally:
        for worker in workers:
            stop(worker)
        server.stop()
    text = [log.read_text() for log in logs]
    assert codes == [0, 0, 0], "".join(text)
    assert server.inbox.to() == emails
    assert set(OutboundMail.objects.values_list("status", "attempts")) == {("sent", 1)}
    assert sum(": sent" in log for log in text) >= 2  # they did share the work


def wait_for(condition, workers, timeout=90.0):
    """Poll until `condition()` (every 0.1 s), failing early if a worker exits."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert all(worker.poll() is None for worker in workers), "a worker exited"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


# A mail server that is down, or refuses -------------------------------------------------------


def test_a_mail_server_down_for_a_while_gets_the_mail_later_with_growing_delays(
        db, time_machine, settings):
    settings.MAIL_RETRY_DELAY, settings.MAIL_RETRY_MAX_DELAY = 30, 300
    port = free_port()  # nothing listens there: connections are refused
    use_smtp_port(settings, port)
    UserFactory(email="alice@acme.test")
    UserFactory(email="adam@acme.test")
    users.password_reset_request(email="alice@acme.test")
    users.password_reset_request(email="adam@acme.test")
    now = timezone.now()
    time_machine.move_to(now, tick=False)
    delays = {"alice@acme.test": [], "adam@acme.test": []}
    for _ in range(6):
        assert outbox.send_due() == {"retry": 2}
        for mail in OutboundMail.objects.all():
            delays[mail.to].append((mail.next_attempt_at - now).total_seconds())
            assert "Connection refused" in mail.last_error
        now = max(OutboundMail.objects.values_list("next_attempt_at", flat=True))
        time_machine.move_to(now, tick=False)
    for seconds in delays.values():
        # 30 s, 60, 120, 240, then the 300 s cap, each within ±20 % (and at most the cap).
        for delay, nominal in zip(seconds, (30, 60, 120, 240, 300, 300), strict=True):
            assert 0.8 * nominal <= delay <= min(300, 1.2 * nominal)
        assert seconds[:4] == sorted(seconds[:4])
    server = SMTPServer(port)
    server.start()
    try:
        assert outbox.send_due() == {"sent": 2}
        assert outbox.send_due() == {}
    finally:
        server.stop()
    assert server.inbox.to() == ["adam@acme.test", "alice@acme.test"]  # each once
    assert set(OutboundMail.objects.values_list("status", "attempts", "last_error")) == {
        ("sent", 7, "")}


def test_a_permanent_refusal_ends_as_failed_and_is_logged(db, smtp_server, time_machine,
                                                          caplog):
    UserFactory(email="alice@acme.test")
    users.password_reset_request(email="alice@acme.test")
    smtp_server.refuse = "550 5.1.1 No such mailbox here"
    assert outbox.send_due() == {"failed": 1}
    mail = OutboundMail.objects.get()
    assert (mail.status, mail.attempts) == ("failed", 1)
    assert "550" in mail.last_error and mail.finished_at is not None
    assert any(r.levelno == logging.ERROR and "will not be tried again" in r.getMessage()
               for r in caplog.records)
    time_machine.move_to(timezone.now() + timedelta(days=1), tick=False)
    assert outbox.send_due() == {}


def test_a_temporary_refusal_is_tried_again(db, smtp_server, time_machine):
    UserFactory(email="alice@acme.test")
    users.password_reset_request(email="alice@acme.test")
    smtp_server.refuse = "450 4.2.1 Mailbox busy, try later"
    assert outbox.send_due() == {"retry": 1}
    smtp_server.refuse = None
    time_machine.move_to(OutboundMail.objects.get().next_attempt_at, tick=False)
    assert outbox.send_due() == {"sent": 1}
    assert smtp_server.to() == ["alice@acme.test"]


def test_finished_mail_is_forgotten_after_a_while(db, settings, time_machine):
    settings.MAIL_KEEP_DAYS = 30
    users.password_reset_request(email="ghost@acme.test")
    delivered()
    assert OutboundMail.objects.get().status == "skipped"
    users.password_reset_request(email="ghost@acme.test")  # still pending: kept
    time_machine.move_to(timezone.now() + timedelta(days=31), tick=False)
    assert outbox.prune() == 1
    assert list(OutboundMail.objects.values_list("status", flat=True)) == ["pending"]
