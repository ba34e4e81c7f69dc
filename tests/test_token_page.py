"""A token's own page: name, creator, created, expires, status, last used (time and address),
allowed IP ranges, what it replaced or was replaced by, its latest 50 runs and the audit events
about it, in a constant number of queries; the same visibility as Revoke."""

from datetime import timedelta

import pytest
from django.utils import timezone

from console.audit import Actor
from workspaces.audit import record

from .factories import make_run, make_token

LIST = "/w/acme/admin/access-tokens/"


def page_of(token):
    return f"{LIST}{token.pk}/"


def test_it_shows_everything_about_the_token(client, owner):
    now = timezone.now()
    token, _ = make_token(owner, name="release-ci", expires_at=now + timedelta(days=20),
                          last_used_at=now - timedelta(hours=1), last_used_ip="203.0.113.5",
                          allowed_ips="203.0.113.0/24")
    make_run(token, client="github-actions", command="codex exec 'fix it'", model="gpt-5")
    client.force_login(owner.user)
    client.post(LIST + "new/", {"name": "another", "expiration": "7", "request_key": "k"})
    record(workspace=owner.workspace, actor=Actor(owner.user), action="token.revoked",
           target="release-ci", details={"token_id": token.pk, "reason": "a test"},
           token_id=token.pk)
    html = client.get(page_of(token)).content.decode()
    for text in ("release-ci", "alice@acme.test", "Created", "Expires", "Active", "Last used",
                 "203.0.113.5", "203.0.113.0/24", "github-actions", "codex exec", "gpt-5",
                 "Access token revoked", "a test"):
        assert text in html, text
    assert "another" not in html.split('id="events-heading"')[1]  # only events about this token


def test_it_shows_the_latest_fifty_runs(client, owner):
    token, _ = make_token(owner)
    now = timezone.now()
    for n in range(55):
        make_run(token, client=f"run-{n:02}", started_at=now - timedelta(minutes=n))
    client.force_login(owner.user)
    html = client.get(page_of(token)).content.decode()
    assert "run-00" in html and "run-49" in html and "run-50" not in html


@pytest.mark.parametrize("rows", [3, 30])
def test_it_costs_the_same_queries_whatever_its_history(client, owner, django_assert_num_queries,
                                                        rows):
    token, _ = make_token(owner)
    for n in range(rows):
        make_run(token, client=f"c{n}")
        record(workspace=owner.workspace, actor=Actor(owner.user), action="token.created",
               target=token.name, details={"token_id": token.pk}, token_id=token.pk)
    client.force_login(owner.user)
    client.get(page_of(token))
    # session, user, membership, the token (with what it replaces and its replacement), runs,
    # audit events, the sidebar's other workspaces
    with django_assert_num_queries(7):
        assert client.get(page_of(token)).status_code == 200


def test_members_see_their_own_only_and_outsiders_nothing(client, owner,
                                                          member_with_token_permission, outsider):
    theirs, _ = make_token(owner)
    mine, _ = make_token(member_with_token_permission)
    client.force_login(member_with_token_permission.user)
    assert client.get(page_of(mine)).status_code == 200
    assert client.get(page_of(theirs)).status_code == 404
    client.force_login(outsider.user)
    assert client.get(page_of(mine)).status_code == 404
    assert client.get(f"/w/globex/admin/access-tokens/{mine.pk}/").status_code == 404


def test_the_list_links_to_each_tokens_page(client, owner):
    token, _ = make_token(owner, name="linked")
    client.force_login(owner.user)
    assert f'href="{page_of(token)}"' in client.get(LIST).content.decode()


def test_a_suspended_token_says_why(client, member_with_token_permission):
    from workspaces.models import CustomRole

    token, _ = make_token(member_with_token_permission)
    CustomRole.objects.update(grants_access_tokens=False)
    client.force_login(member_with_token_permission.user)
    html = client.get(page_of(token)).content.decode()
    assert "Suspended" in html and "no longer holds the access token permission" in html
