"""CSV exports that stream, so a long list never sits in memory."""

import csv

from django.http import StreamingHttpResponse

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    def write(self, value):
        return value


def _safe(value):
    # Spreadsheets run cells that start like a formula; make them text.
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_response(filename: str, header: list[str], rows) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([_safe(v) for v in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


def day_range(start, end):
    """[start of `start`, start of the day after `end`) in UTC, either end open."""
    from datetime import UTC, datetime, time, timedelta

    low = datetime.combine(start, time.min, tzinfo=UTC) if start else None
    high = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC) if end else None
    return low, high
