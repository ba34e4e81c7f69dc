"""The governance page's numbers: runs per day, per member and per token over a period.

Periods are whole days (UTC). Without filters the counts come from the roll-ups (`RunDay`,
`TokenRuns`), which the statement recording a run keeps, so a year costs what a month does;
with a member or token filter they come from the runs themselves, through the indexes that
filter uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

from .models import Run, RunDay, TokenRuns

TOP = 10
DEFAULT_DAYS = 30


@dataclass(frozen=True)
class Period:
    first: date  # the first day counted
    last: date  # the last day counted

    @property
    def low(self) -> datetime:
        return datetime.combine(self.first, time.min, tzinfo=UTC)

    @property
    def high(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time.min, tzinfo=UTC)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def period(start: date | None, end: date | None, today: date) -> Period:
    """The chosen days (From and To, either open), else the last 30 days, today included; at
    most 400 days, the longest runs are kept."""
    last = end or (max(today, start) if start else today)
    first = min(start or last - timedelta(days=DEFAULT_DAYS - 1), last)
    return Period(first=max(first, last - timedelta(days=399)), last=last)


@dataclass(frozen=True)
class Filters:
    """Who and which tokens the counts are about: None means everyone, every token."""

    user_id: int | None = None
    token_ids: list[int] | None = None

    @property
    def any(self) -> bool:
        return self.user_id is not None or self.token_ids is not None


def _runs_in(workspace, period: Period, filters: Filters):
    runs = Run.objects.filter(workspace=workspace, started_at__gte=period.low,
                              started_at__lt=period.high)
    if filters.user_id is not None:
        runs = runs.filter(user_id=filters.user_id)
    if filters.token_ids is not None:
        runs = runs.filter(token_id__in=filters.token_ids)
    return runs


def _run_days(workspace, period: Period, filters: Filters):
    """The daily roll-up's rows for the period (and the member filter): what the counts read
    when no token filter asks for the runs themselves."""
    rows = RunDay.objects.filter(workspace=workspace, day__gte=period.first, day__lte=period.last)
    if filters.user_id is not None:
        rows = rows.filter(user_id=filters.user_id)
    return rows


def per_day(workspace, period: Period, filters: Filters) -> list[tuple[date, int]]:
    """Runs on each day of the period, zeros included."""
    if filters.token_ids is None:
        counts = dict(_run_days(workspace, period, filters)
                      .values("day").annotate(n=Sum("runs")).values_list("day", "n"))
    else:
        counts = dict(_runs_in(workspace, period, filters)
                      .annotate(day=TruncDate("started_at", tzinfo=UTC))
                      .values("day").annotate(n=Count("id")).values_list("day", "n"))
    return [(day, counts.get(day, 0)) for day in period.days]


def top_members(workspace, period: Period, filters: Filters) -> list[tuple[int, int]]:
    """(user id, runs) of the ten members who started the most runs."""
    if filters.token_ids is None:
        rows = _run_days(workspace, period, filters).values("user_id").annotate(n=Sum("runs"))
    else:
        rows = _runs_in(workspace, period, filters).values("user_id").annotate(n=Count("*"))
    return list(rows.order_by("-n", "user_id").values_list("user_id", "n")[:TOP])


def top_tokens(workspace, period: Period, filters: Filters) -> list[tuple[int, int]]:
    """(token id, runs) of the ten tokens that started the most runs.

    Without filters, from whichever side of the period holds fewer runs (the roll-up says how
    many each side holds): the runs inside it, counted per token; or every token's total
    (`TokenRuns`) less the runs outside it. A year of a retention of 400 days counts the
    few weeks outside, not the year.
    """
    if filters.any:
        return _top_counted(_runs_in(workspace, period, filters))
    days = RunDay.objects.filter(workspace=workspace).aggregate(
        inside=Sum("runs", filter=Q(day__gte=period.first, day__lte=period.last)),
        everything=Sum("runs"))
    inside, everything = days["inside"] or 0, days["everything"] or 0
    if inside <= everything - inside:
        return _top_counted(_runs_in(workspace, period, filters))
    outside: dict[int, int] = {}
    everywhere = Run.objects.filter(workspace=workspace)
    parts = () if inside == everything else (everywhere.filter(started_at__lt=period.low),
                                            everywhere.filter(started_at__gte=period.high))
    for part in parts:
        for token_id, n in part.values("token_id").annotate(n=Count("*")).values_list(
                "token_id", "n"):
            outside[token_id] = outside.get(token_id, 0) + n
    return _top_of_totals(workspace, outside)


def _top_counted(runs) -> list[tuple[int, int]]:
    return list(runs.values("token_id").annotate(n=Count("*")).order_by("-n", "token_id")
                .values_list("token_id", "n")[:TOP])


def _top_of_totals(workspace, outside: dict[int, int]) -> list[tuple[int, int]]:
    """The top ten of (total - outside), reading totals from the largest down: a token's count
    in the period is at most its total, so once totals fall below the tenth best count found,
    nothing further can enter."""
    best: list[tuple[int, int]] = []
    totals = TokenRuns.objects.filter(workspace=workspace, runs__gt=0).order_by("-runs", "token_id")
    offset, batch = 0, 500
    while True:
        rows = list(totals.values_list("token_id", "runs")[offset:offset + batch])
        for token_id, runs in rows:
            if len(best) == TOP and runs < best[-1][1]:
                return best
            n = runs - outside.get(token_id, 0)
            if n > 0:
                best = sorted([*best, (token_id, n)], key=lambda row: (-row[1], row[0]))[:TOP]
        if len(rows) < batch:
            return best
        offset += batch


@dataclass(frozen=True)
class Bar:
    day: date
    runs: int
    x: float
    y: float
    width: float
    height: float


# The plot's own units: the SVG stretches to the card's width and a fixed height, so only the
# bars and grid lines are drawn in it. The axis labels are HTML around it, legible at any width.
WIDTH, HEIGHT = 720, 160


def chart(days: list[tuple[date, int]]) -> dict:
    """Geometry of a bar chart of runs per day, for an SVG drawn by the template, with its
    scale (grid lines at 0, half and the top) and three day labels (first, middle, last)."""
    peak = max((n for _, n in days), default=0)
    scale_top = _nice(peak)
    step = WIDTH / max(len(days), 1)
    gap = min(2.0, step * 0.25)
    bars = [
        Bar(day=day, runs=n, x=round(i * step + gap / 2, 2),
            y=round(HEIGHT - (n / scale_top) * HEIGHT, 2) if scale_top else HEIGHT,
            width=round(max(step - gap, 0.5), 2),
            height=round((n / scale_top) * HEIGHT, 2) if scale_top else 0)
        for i, (day, n) in enumerate(days)
    ]
    # Top to bottom, as the labels stand beside the plot.
    ticks = [{"value": v, "y": round(HEIGHT - (v / scale_top) * HEIGHT, 2)}
             for v in (scale_top, scale_top // 2, 0)] if scale_top else []
    places = {0: "start", len(days) // 2: "middle", len(days) - 1: "end"} if len(days) > 1 else (
        {0: "middle"} if days else {})
    labels = [{"day": days[i][0], "place": place} for i, place in sorted(places.items())]
    busiest = max(days, key=lambda row: row[1]) if days and peak else None
    return {"bars": bars, "ticks": ticks, "labels": labels, "width": WIDTH, "height": HEIGHT,
            "total": sum(n for _, n in days), "busiest": busiest, "days": len(days)}


def _nice(peak: int) -> int:
    """A round number at or above the peak, for the top of the chart's scale."""
    if peak <= 0:
        return 0
    magnitude = 10 ** (len(str(peak)) - 1)
    return next(int(m * magnitude) for m in (1, 1.5, 2, 3, 4, 5, 6, 8, 10) if m * magnitude >= peak)
