"""What "active", "expired", "revoked", "idle", "expiring soon" and "outliving a limit" mean is
said once each in tokens/models.py, twice over: a QuerySet filter for lists and counts, and a
method of the same name for a row already loaded. Here every pair gives the same answer for
tokens in every state that matters."""

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from tokens.models import AccessToken

from .factories import make_token

DAY = timedelta(days=1)


@pytest.fixture
def grid(owner):
    """Tokens in every combination of: revoked or not; expiring in the past, today, within a
    week, later or never; created long ago or lately; last used never, long ago or lately."""
    now = timezone.now()
    expiries = [now - DAY, now + timedelta(hours=1), now + 6 * DAY, now + 7 * DAY,
                now + 7 * DAY + timedelta(seconds=1), now + 40 * DAY, None]
    created = [now - 45 * DAY, now - 2 * DAY, now - 30 * DAY + timedelta(seconds=1)]
    used = [None, now - 31 * DAY, now - 30 * DAY, now - DAY]
    for n, (revoked, expires, made, last) in enumerate(
            itertools.product([False, True], expiries, created, used)):
        make_token(owner, name=f"t{n}", expires_at=expires, created_at=made, last_used_at=last,
                   revoked_at=now - DAY if revoked else None)
    return now


def test_every_state_is_in_the_grid(grid):
    tokens = list(AccessToken.objects.all())
    assert len(tokens) == 168
    assert {t.status_at(grid) for t in tokens} == {"active", "expired", "revoked"}
    assert any(t.idle(grid) for t in tokens) and not all(t.idle(grid) for t in tokens)


@pytest.mark.parametrize("rule,args", [
    ("active", ()), ("idle", ()), ("expiring_soon", ()),
    ("outliving", (timedelta(days=30),)), ("outliving", (None,)),
])
def test_the_filter_and_its_twin_agree(grid, rule, args):
    args = tuple(grid + a if isinstance(a, timedelta) else a for a in args)
    rows = list(AccessToken.objects.all())
    filtered = set(getattr(AccessToken.objects, rule)(*args, grid).values_list("pk", flat=True))
    twin = {t.pk for t in rows if getattr(t, rule)(*args, grid)}
    assert filtered == twin
    assert rule == "outliving" and args == (None,) or 0 < len(twin) < len(rows)


@pytest.mark.parametrize("status", ["expired", "revoked"])
def test_the_status_filters_agree_with_the_status(grid, status):
    filtered = getattr(AccessToken.objects, status)(*(() if status == "revoked" else (grid,)))
    assert set(filtered.values_list("pk", flat=True)) == {
        t.pk for t in AccessToken.objects.all() if t.status_at(grid) == status}
