"""Pages of long lists: numbered pages (`paginate`), and keyset pages for long, newest-first
lists (runs, audit events): a keyset page is found by the (time, id) of the last row of the
previous page, through the index that orders the list; nothing counts the whole table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.core.paginator import Paginator
from django.db.models import Q

PAGE_SIZE = 25


def paginate(request, queryset, per_page=PAGE_SIZE):
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


@dataclass
class KeysetPage:
    rows: list
    next_cursor: str | None
    is_first: bool


def encode(row, time_field: str) -> str:
    return f"{getattr(row, time_field).isoformat()}~{row.pk}"


def decode(cursor: str | None) -> tuple[datetime, int] | None:
    if not cursor or "~" not in cursor:
        return None
    stamp, _, pk = cursor.rpartition("~")
    try:
        moment = datetime.fromisoformat(stamp.replace(" ", "+"))
        number = int(pk)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment, number


def keyset_page(queryset, cursor: str | None, *, time_field: str, size: int) -> KeysetPage:
    """Rows of `queryset` (ordered newest first by time_field, then id) after `cursor`."""
    position = decode(cursor)
    if position is not None:
        moment, pk = position
        queryset = queryset.filter(
            Q(**{f"{time_field}__lt": moment}) | Q(**{time_field: moment, "pk__lt": pk})
        )
    rows = list(queryset.order_by(f"-{time_field}", "-pk")[: size + 1])
    has_more = len(rows) > size
    rows = rows[:size]
    return KeysetPage(
        rows=rows,
        next_cursor=encode(rows[-1], time_field) if has_more else None,
        is_first=position is None,
    )
