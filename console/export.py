"""CSV exports that stream, so a long list never sits in memory."""

import csv
import io

from django.http import StreamingHttpResponse

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 64 * 1024  # characters sent at a time: one write per row would cost more than the row

def _safe(value):
    # Spreadsheets run cells that start like a formula; make them text.
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_response(filename: str, header: list[str], rows) -> StreamingHttpResponse:
    def chunks():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        for row in rows:
            writer.writerow([_safe(v) for v in row])
            if buffer.tell() >= CHUNK:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    response = StreamingHttpResponse(chunks(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


def day_range(start, end):
    """[start of `start`, start of the day after `end`) in UTC, either end open."""
    from datetime import UTC, datetime, time, timedelta

    low = datetime.combine(start, time.min, tzinfo=UTC) if start else None
    high = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC) if end else None
    return low, high
