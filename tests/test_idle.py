"""Idle tokens on the Access tokens page: active tokens not used in the last 30 days (never used
and older than that, or last used before then), as the `?status=idle` filter and as a badge."""

from datetime import timedelta

import pytest
from django.utils import timezone

from .factories import make_token, row_of, table_of

LIST = "/w/acme/admin/access-tokens/"


@pytest.fixture
def tokens(owner):
    """One token of each kind, by name, all the owner's."""
    now = timezone.now()
    long_ago = now - timedelta(days=90)
    kinds = {
        "never-used-old": {"created_at": long_ago, "expires_at": None},
        "used-long-ago": {"created_at": long_ago, "last_used_at": now - timedelta(days=31)},
        "used-recently": {"created_at": long_ago, "last_used_at": now - timedelta(days=2)},
        "used-29-days-ago": {"created_at": long_ago, "last_used_at": now - timedelta(days=29)},
        "never-used-new": {"created_at": now - timedelta(days=5)},
        "revoked-unused": {"created_at": long_ago, "revoked_at": now - timedelta(days=1)},
        "expired-unused": {"created_at": long_ago, "expires_at": now - timedelta(days=1)},
    }
    return {name: make_token(owner, name=name, **fields)[0] for name, fields in kinds.items()}


IDLE = {"never-used-old", "used-long-ago"}


def names_in(response, tokens) -> set[str]:
    rows = table_of(response)
    return {name for name, token in tokens.items() if f'data-token-id="{token.pk}"' in rows}


def test_the_idle_filter_lists_active_tokens_not_used_in_30_days(client, owner, tokens):
    client.force_login(owner.user)
    response = client.get(LIST, {"status": "idle"})
    assert response.status_code == 200
    assert names_in(response, tokens) == IDLE


def test_idle_rows_carry_the_idle_badge_in_the_unfiltered_list_too(client, owner, tokens):
    client.force_login(owner.user)
    response = client.get(LIST)
    assert names_in(response, tokens) == set(tokens)
    for name, token in tokens.items():
        row = row_of(response, token)
        assert ("badge-idle" in row) == (name in IDLE), name
    assert ">Idle</span>" in row_of(response, tokens["used-long-ago"])


def test_a_member_sees_only_their_own_idle_tokens(
    client, owner, member_with_token_permission, tokens
):
    doras, _ = make_token(member_with_token_permission, name="doras-idle",
                          created_at=timezone.now() - timedelta(days=40), expires_at=None)
    doras_busy, _ = make_token(member_with_token_permission, name="doras-busy",
                               created_at=timezone.now() - timedelta(days=40),
                               last_used_at=timezone.now() - timedelta(hours=1))
    client.force_login(member_with_token_permission.user)
    rows = table_of(client.get(LIST, {"status": "idle"}))
    assert f'data-token-id="{doras.pk}"' in rows
    assert f'data-token-id="{doras_busy.pk}"' not in rows
    for token in tokens.values():
        assert f'data-token-id="{token.pk}"' not in rows
    client.force_login(owner.user)
    rows = table_of(client.get(LIST, {"status": "idle"}))
    assert f'data-token-id="{doras.pk}"' in rows  # owners see every idle token


def test_the_filter_is_in_the_status_select(client, owner, tokens):
    client.force_login(owner.user)
    html = client.get(LIST).content.decode()
    select = html.split('<select id="filter-status" name="status">', 1)[1].split("</select>", 1)[0]
    assert '<option value="idle">Idle' in select
    html = client.get(LIST, {"status": "idle"}).content.decode()
    select = html.split('<select id="filter-status" name="status">', 1)[1].split("</select>", 1)[0]
    assert '<option value="idle" selected>Idle' in select
    assert "Clear filters" in html


def test_no_idle_tokens_says_so(client, owner):
    make_token(owner, name="busy", created_at=timezone.now() - timedelta(days=40),
               last_used_at=timezone.now() - timedelta(days=1))
    client.force_login(owner.user)
    response = client.get(LIST, {"status": "idle"})
    assert table_of(response) == ""
    assert b"No access tokens match these filters" in response.content
