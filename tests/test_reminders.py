"""Expiry reminders (`manage.py send_token_reminders`, for cron every hour, queues them; the mail
worker sends them) and the Access tokens page's banner of the viewer's own tokens that expire
within 7 days.

A week before its expiry (for tokens that live longer than a week) and on the day itself, UTC
(for tokens that live longer than a day), a token's creator gets one mail each, however often
the command runs and however many run at once.
"""

import socket
import threading
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.mail.backends import locmem  # noqa: F401  (mail.backends.locmem below)
from django.core.management import call_command
from django.db import connections
from django.test import Client

from console import outbox
from console.models import OutboundMail
from tokens.models import AccessToken
from workspaces.models import User

from .factories import MembershipFactory, UserFactory, WorkspaceFactory, make_token, row_of
from .mailbox import delivered, use_smtp_port

LIST = "/w/acme/admin/access-tokens/"
NOW = datetime(2030, 3, 10, 15, 0, tzinfo=UTC)  # a Sunday afternoon, UTC
LOCMEM = "django.core.mail.backends.locmem.EmailBackend"


def remind() -> str:
    """Run the command as cron does, and the mail worker after it; returns what the command
    printed."""
    out = StringIO()
    call_command("send_token_reminders", stdout=out)
    delivered()
    return out.getvalue().strip()


def subjects() -> list[str]:
    return [message.subject for message in delivered()]


@pytest.fixture
def now(time_machine):
    time_machine.move_to(NOW, tick=False)
    return NOW


# When each reminder goes ------------------------------------------------------------------


@pytest.mark.parametrize("lifetime,expected", [
    (timedelta(days=10), ["expires in 7 days", "expires today"]),
    (timedelta(days=8), ["expires in 7 days", "expires today"]),
    # A week or less: the week reminder would come the moment it was created.
    (timedelta(days=7), ["expires today"]),
    (timedelta(days=3), ["expires today"]),
    (timedelta(hours=36), ["expires today"]),
    # A day or less: nothing to remind of.
    (timedelta(days=1), []),
])
def test_run_every_hour_through_a_tokens_life_each_reminder_goes_once(
    time_machine, now, owner, lifetime, expected
):
    token, _ = make_token(owner, name="CI", expires_at=now + lifetime)
    assert token.created_at == now
    moment = now
    while moment <= token.expires_at + timedelta(hours=1):
        time_machine.move_to(moment, tick=False)
        remind()
        moment += timedelta(hours=1)
    assert subjects() == [f"Your Codex access token “CI” {words}" for words in expected]
    assert all(message.to == ["alice@acme.test"] for message in mail.outbox)


def test_the_week_reminder_goes_seven_days_before_and_the_day_reminder_at_midnight_utc(
    time_machine, now, owner
):
    token, _ = make_token(owner, name="CI", expires_at=now + timedelta(days=10))
    moment = now
    while moment < token.expires_at:
        time_machine.move_to(moment, tick=False)
        remind()
        moment += timedelta(hours=1)
    token.refresh_from_db()
    assert token.reminded_week_at == datetime(2030, 3, 13, 15, 0, tzinfo=UTC)
    assert token.reminded_day_at == datetime(2030, 3, 20, 0, 0, tzinfo=UTC)


def test_running_it_twice_sends_each_reminder_once(now, owner):
    make_token(owner, name="CI", created_at=now - timedelta(days=20),
               expires_at=now + timedelta(days=3))
    assert remind() == "1 reminder queued."
    assert remind() == "0 reminders queued."
    assert subjects() == ["Your Codex access token “CI” expires in 3 days"]


def test_a_token_expiring_in_three_days_created_twenty_days_ago_gets_the_week_reminder(
    now, owner
):
    token, _ = make_token(owner, name="CI", created_at=now - timedelta(days=20),
                          expires_at=now + timedelta(days=3))
    remind()
    (message,) = delivered()
    assert message.subject == "Your Codex access token “CI” expires in 3 days"
    token.refresh_from_db()
    assert token.reminded_week_at == now and token.reminded_day_at is None


def test_a_token_expiring_today_with_no_reminder_yet_gets_only_the_on_the_day_one(now, owner):
    """Cron was not running during the week (or the token was shortened): on the day, the
    creator gets one mail that says today, not also one that says "in 0 days"."""
    make_token(owner, name="CI", created_at=now - timedelta(days=20),
               expires_at=now + timedelta(hours=3))
    remind()
    assert subjects() == ["Your Codex access token “CI” expires today"]


def _revoked(member, soon):
    return make_token(member, name="Theirs", revoked_at=NOW - timedelta(hours=1), **soon)


def _expired(member, soon):
    soon["expires_at"] = NOW - timedelta(hours=1)
    return make_token(member, name="Theirs", **soon)


def _replaced(member, soon):
    first, plaintext = make_token(member, name="Theirs", **soon)
    make_token(member, name="Theirs", replaces=first, expires_at=NOW + timedelta(days=60))
    return first, plaintext


def _deactivated(member, soon):
    # Straight to the row, without the console's revocation (as Django's own tools can): the
    # reminder's own rule about inactive creators is what is under test.
    User.objects.filter(pk=member.user_id).update(is_active=False)
    return make_token(member, name="Theirs", **soon)


@pytest.mark.parametrize("kind", [_revoked, _expired, _replaced, _deactivated],
                         ids=["revoked", "expired", "replaced", "deactivated creator"])
def test_these_tokens_get_no_reminder(time_machine, now, owner, member, kind):
    soon = {"created_at": now - timedelta(days=20), "expires_at": now + timedelta(days=3)}
    make_token(owner, name="Control", **soon)
    kind(member, dict(soon))
    remind()
    time_machine.move_to(now + timedelta(days=3) - timedelta(hours=2), tick=False)  # the day
    remind()
    assert subjects() == ["Your Codex access token “Control” expires in 3 days",
                          "Your Codex access token “Control” expires today"]
    assert all(message.to == ["alice@acme.test"] for message in mail.outbox)


# The mail ---------------------------------------------------------------------------------


@pytest.mark.parametrize("days_left,words", [(3, "expires in 3 days"), (0, "expires today")])
def test_the_mail_names_the_token_and_workspace_and_links_to_its_page(
    now, owner, settings, days_left, words
):
    token, plaintext = make_token(owner, name="nightly-docs", created_at=now - timedelta(days=5),
                                  expires_at=now + timedelta(days=days_left, hours=3))
    remind()
    (message,) = delivered()
    assert message.to == ["alice@acme.test"]
    assert message.subject == f"Your Codex access token “nightly-docs” {words}"
    assert "“nightly-docs”" in message.body
    assert "in Acme Corp" in message.body
    assert words in message.body
    assert f"{settings.SITE_URL}/w/acme/admin/access-tokens/{token.pk}/" in message.body
    for secret in (plaintext, token.digest):
        assert secret not in message.body and secret not in message.subject


def test_a_reminder_the_mail_server_cannot_take_goes_out_once_it_can(
    time_machine, now, owner, settings
):
    token, _ = make_token(owner, name="CI", created_at=now - timedelta(days=20),
                          expires_at=now + timedelta(days=3))
    use_smtp_port(settings, 1)  # nothing listens there
    assert remind() == "1 reminder queued."
    token.refresh_from_db()
    assert token.reminded_week_at == now  # claimed, and its mail queued: it goes once
    queued = OutboundMail.objects.get(kind="token_expiry")
    assert (queued.status, queued.attempts) == ("pending", 1) and queued.last_error
    assert remind() == "0 reminders queued."
    settings.EMAIL_BACKEND = LOCMEM
    time_machine.move_to(queued.next_attempt_at, tick=False)
    assert subjects() == ["Your Codex access token “CI” expires in 3 days"]
    queued.refresh_from_db()
    assert (queued.status, queued.attempts) == ("sent", 2)


class RevokeSecondOnFirstSend(mail.backends.locmem.EmailBackend):
    """The mail server is slow enough that the token "second" is revoked while the first
    reminder goes out."""

    def send_messages(self, messages):
        from console.audit import Actor
        from tokens.services import lifecycle
        from workspaces.models import Membership

        second = AccessToken.objects.filter(name="second", revoked_at__isnull=True).first()
        if second is not None and any("“first”" in m.subject for m in messages):
            creator = Membership.objects.get(user=second.created_by, workspace=second.workspace)
            lifecycle.token_revoke(token=second, acting=creator, actor=Actor(creator.user))
        return super().send_messages(messages)


def test_a_token_revoked_while_reminders_go_out_gets_none(now, owner, settings):
    for name in ("first", "second"):
        make_token(owner, name=name, created_at=now - timedelta(days=20),
                   expires_at=now + timedelta(days=3))
    settings.EMAIL_BACKEND = f"{__name__}.RevokeSecondOnFirstSend"
    assert remind() == "2 reminders queued."  # sent in the order the tokens were made
    assert subjects() == ["Your Codex access token “first” expires in 3 days"]
    second = AccessToken.objects.get(name="second")
    assert OutboundMail.objects.get(kind="token_expiry", params__token=second.pk).status == \
        "skipped"


# Two runs at once ---------------------------------------------------------------------------


def test_two_runs_started_at_once_send_each_reminder_once(transactional_db):
    workspace = WorkspaceFactory(slug="acme", name="Acme Corp")
    creators = [MembershipFactory(workspace=workspace, user=UserFactory(email=f"ci{n}@acme.test"))
                for n in range(2)]
    # Three days left: the week reminder is due whatever the time of day the test runs.
    names = []
    for n in range(20):
        token, _ = make_token(creators[n % 2], name=f"job-{n:02}",
                              created_at=datetime.now(UTC) - timedelta(days=20),
                              expires_at=datetime.now(UTC) + timedelta(days=3))
        names.append(token.name)
    barrier = threading.Barrier(2)
    printed = []

    def run():
        try:
            barrier.wait(10)
            printed.append(remind())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(printed) == 2
    assert sum(int(line.split()[0]) for line in printed) == 20
    assert OutboundMail.objects.filter(kind="token_expiry").count() == 20
    assert sorted(subjects()) == sorted(
        f"Your Codex access token “{name}” expires in 3 days" for name in names)
    assert not AccessToken.objects.filter(reminded_week_at__isnull=True).exists()


def test_a_mail_server_that_stops_answering_holds_up_no_api_call(transactional_db, settings):
    """The reminder's claim and its mail commit together, and the worker sends with no
    transaction open: while the mail server hangs, the token keeps working (its API calls
    update its row), and the mail is tried again later."""
    workspace = WorkspaceFactory(slug="acme", allow_codex_local=True, allow_access_tokens=True)
    owner = MembershipFactory(workspace=workspace, role="owner")
    token, plaintext = make_token(owner, created_at=datetime.now(UTC) - timedelta(days=20),
                                  expires_at=datetime.now(UTC) + timedelta(days=3))
    listener = socket.create_server(("127.0.0.1", 0))
    use_smtp_port(settings, listener.getsockname()[1])
    settings.EMAIL_TIMEOUT = 30
    out = StringIO()
    call_command("send_token_reminders", stdout=out)
    assert out.getvalue().strip() == "1 reminder queued."
    done = []

    def worker():
        try:
            done.append(outbox.send_due())
        finally:
            connections.close_all()

    sending = threading.Thread(target=worker)
    sending.start()
    listener.settimeout(10)
    mail_connection, _ = listener.accept()  # and never answers it
    answers = []

    def whoami():
        try:
            answers.append(Client().get("/api/v1/whoami",
                                        HTTP_AUTHORIZATION=f"Bearer {plaintext}").status_code)
        finally:
            connections.close_all()

    caller = threading.Thread(target=whoami)
    caller.start()
    caller.join(10)
    assert answers == [200]
    assert sending.is_alive()  # still waiting on the mail server
    mail_connection.close()
    listener.close()
    sending.join(30)
    assert done == [{"retry": 1}]
    token.refresh_from_db()
    assert token.reminded_week_at is not None and token.last_used_at is not None
    assert OutboundMail.objects.get().status == "pending"


# The banner on the Access tokens page -----------------------------------------------------


def banner_of(response) -> str:
    html = response.content.decode()
    if 'class="notice expiring"' not in html:
        return ""
    return html.split('class="notice expiring"', 1)[1].split("</div>", 1)[0]


def test_the_banner_lists_your_own_active_tokens_that_expire_within_seven_days(
    client, now, owner, admin
):
    made = {"created_at": now - timedelta(days=30)}  # made for longer than a week
    make_token(owner, name="due-today", expires_at=now + timedelta(hours=3), **made)
    make_token(owner, name="due-tomorrow", expires_at=now + timedelta(days=1), **made)
    make_token(owner, name="due-in-three", expires_at=now + timedelta(days=3), **made)
    make_token(owner, name="due-in-eight", expires_at=now + timedelta(days=8), **made)
    make_token(owner, name="never-expires", expires_at=None, **made)
    make_token(owner, name="revoked-soon", expires_at=now + timedelta(days=2),
               revoked_at=now - timedelta(hours=1), **made)
    make_token(owner, name="expired-already", created_at=now - timedelta(days=30),
               expires_at=now - timedelta(hours=1))
    make_token(admin, name="admins-token", expires_at=now + timedelta(days=2), **made)
    # Made for a week a moment ago: its creator knows, and no reminder is due.
    make_token(owner, name="made-for-a-week", expires_at=now + timedelta(days=7))
    client.force_login(owner.user)
    banner = banner_of(client.get(LIST))
    assert "Your tokens that expire within 7 days" in banner
    assert "due-today</a> — expires today" in banner
    assert "due-tomorrow</a> — in 1 day " in banner
    assert "due-in-three</a> — in 3 days" in banner
    for absent in ("due-in-eight", "never-expires", "revoked-soon", "expired-already",
                   "admins-token", "made-for-a-week"):
        assert absent not in banner
    # Soonest first.
    assert banner.index("due-today") < banner.index("due-tomorrow") < banner.index("due-in-three")


def test_the_banner_shows_a_member_their_own_tokens(client, now, owner, member_with_token_permission):
    soon = {"created_at": now - timedelta(days=28), "expires_at": now + timedelta(days=2)}
    make_token(member_with_token_permission, name="doras-ci", **soon)
    make_token(owner, name="alices-ci", **soon)
    client.force_login(member_with_token_permission.user)
    banner = banner_of(client.get(LIST))
    assert "doras-ci</a> — in 2 days" in banner
    assert "alices-ci" not in banner
    client.force_login(owner.user)
    banner = banner_of(client.get(LIST))
    assert "alices-ci</a> — in 2 days" in banner
    assert "doras-ci" not in banner


def test_no_banner_when_none_of_your_tokens_expire_soon(client, now, owner, admin):
    make_token(owner, name="later", expires_at=now + timedelta(days=30))
    make_token(admin, name="admins-soon", expires_at=now + timedelta(days=1))
    client.force_login(owner.user)
    response = client.get(LIST)
    assert response.status_code == 200
    assert banner_of(response) == ""


@pytest.mark.parametrize("hours_later", [0, 30, 24 * 5 + 7, 24 * 6 + 20])
def test_the_banner_the_list_and_the_reminders_follow_one_rule(client, time_machine, now, owner,
                                                               hours_later):
    """Whatever a token's lifetime and whenever one looks, the banner lists, and the list marks
    as expiring, exactly the tokens a reminder goes out about."""
    lifetimes = [timedelta(hours=20), timedelta(hours=36), timedelta(days=3), timedelta(days=7),
                 timedelta(days=7, minutes=1), timedelta(days=8), timedelta(days=30)]
    tokens = []
    for n, lifetime in enumerate(lifetimes):
        for age in (timedelta(0), lifetime - timedelta(days=6, hours=23),
                    lifetime - timedelta(hours=2)):
            if age >= timedelta(0):
                tokens.append(make_token(owner, name=f"t{n}-{age.total_seconds():.0f}",
                                         created_at=now - age, expires_at=now - age + lifetime)[0])
    time_machine.move_to(now + timedelta(hours=hours_later), tick=False)
    remind()
    reminded = {subject.split("“", 1)[1].split("”", 1)[0] for subject in subjects()}
    assert reminded  # the grid has some at every moment looked at
    client.force_login(owner.user)
    response = client.get(LIST)
    banner = banner_of(response)
    assert {t.name for t in tokens if f">{t.name}</a>" in banner} == reminded
    marked = {t.name for t in tokens if 'class="soon"' in row_of(response, t)}
    assert marked == reminded


def test_a_token_just_made_for_seven_days_is_not_expiring_soon(client, now, owner):
    token, _ = make_token(owner, name="weekly", expires_at=now + timedelta(days=7))
    client.force_login(owner.user)
    response = client.get(LIST)
    assert banner_of(response) == ""
    assert 'class="soon"' not in row_of(response, token)
    assert remind() == "0 reminders queued."
    assert subjects() == []
    assert not AccessToken.objects.expiring_soon(now).exists()
    assert not token.expiring_soon(now)
