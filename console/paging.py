"""Pages of long lists: numbered pages (`paginate`), and keyset pages for long, newest-first
lists (runs, audit events): a keyset page is found by the (time, id) of the last row of the
previous page, through the index that orders the list; nothing counts the whole table. Exports
read the same way, batch after batch (`keyset_rows`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from django.core.paginator import Paginator
from django.db.models import Q

PAGE_SIZE = 25
EXPORT_BATCH = 2000
ID_MAX = 2**63 - 1  # the largest id a database column holds

BAD_CURSOR = ("The link to older entries in this address is not valid (it may have been cut "
              "short): these are the newest.")

Position = tuple[datetime, int]


def paginate(queryset, number: int | None, per_page=PAGE_SIZE):
    """Page `number` (from a `PageField`; None: the first) of `queryset`."""
    return Paginator(queryset, per_page).get_page(number)


@dataclass
class KeysetPage:
    rows: list
    next_cursor: str | None
    is_first: bool


def encode(row, time_field: str) -> str:
    return f"{getattr(row, time_field).isoformat()}~{row.pk}"


def decode(cursor: str) -> Position | None:
    """The (time, id) a cursor names, or None when it names none a database can compare."""
    if "~" not in cursor:
        return None
    stamp, _, pk = cursor.rpartition("~")
    try:
        moment = datetime.fromisoformat(stamp.replace(" ", "+"))
        number = int(pk, 10)
        if moment.tzinfo is None:
            return None
        moment = moment.astimezone(UTC)  # a time near year 1 or 9999 may not exist in UTC
    except (ValueError, OverflowError):
        return None
    if not 0 < number <= ID_MAX:
        return None
    return moment, number


def _ordered_after(queryset, time_field: str, position: Position | None):
    if position is not None:
        moment, pk = position
        queryset = queryset.filter(
            Q(**{f"{time_field}__lt": moment}) | Q(**{time_field: moment, "pk__lt": pk})
        )
    return queryset.order_by(f"-{time_field}", "-pk")


def keyset_page(queryset, position: Position | None, *, time_field: str,
                size: int) -> KeysetPage:
    """Rows of `queryset` (newest first by time_field, then id) after `position` (from a
    `CursorField`; None: from the newest)."""
    rows = list(_ordered_after(queryset, time_field, position)[: size + 1])
    has_more = len(rows) > size
    rows = rows[:size]
    return KeysetPage(
        rows=rows,
        next_cursor=encode(rows[-1], time_field) if has_more else None,
        is_first=position is None,
    )


def keyset_rows(queryset, *, time_field: str, batch: int = EXPORT_BATCH) -> Iterator:
    """Every row of `queryset`, newest first by time_field, then id (the list pages' order),
    read `batch` rows at a time, each batch one short query that starts after the last row of
    the one before. Memory stays constant, and nothing stays open on the database between
    batches: no server-side cursor (which a pooler in transaction mode loses between two
    fetches) and no transaction. Rows may be model instances or named `values_list` rows
    that carry `pk` and the time field."""
    position = None
    while True:
        rows = list(_ordered_after(queryset, time_field, position)[:batch])
        yield from rows
        if len(rows) < batch:
            return
        last = rows[-1]
        position = (getattr(last, time_field), last.pk)
