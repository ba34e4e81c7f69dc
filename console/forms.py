"""What every form of the console shares, and the forms that read a page's query string."""

from datetime import date

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator

from . import paging


class ConsoleForm(forms.Form):
    """Labels without a trailing colon, as everywhere in the console."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class QueryForm(ConsoleForm):
    """A page's query string, read as a form: every parameter the page reads is a field of it,
    so a value the page cannot read (a NUL character, too long, a date out of range, a page or
    cursor that is not one) is that field's error, shown on the page with status 400, and never
    reaches the database. Always bound: an empty query string is a valid one."""

    # Where a list's page starts: when it cannot be read, the list shows from its start.
    PAGING = frozenset({"page", "after"})

    def __init__(self, query, *args, **kwargs):
        super().__init__(query, *args, **kwargs)

    def read(self, name: str):
        """A parameter's value as read, or None when it cannot be read."""
        self.is_valid()
        return self.cleaned_data.get(name)

    def filters_read(self) -> bool:
        """Whether the page's filters could be read (an error, if any, is only where the page
        starts)."""
        return self.is_valid() or set(self.errors) <= self.PAGING

    def status(self, status: int = 200) -> int:
        """The page's status: 400 when the query string cannot be read, unless the page
        answers an action with a status of its own (`status`, other than 200)."""
        return 400 if status == 200 and not self.is_valid() else status


class PageField(forms.IntegerField):
    """`?page=`: a page number (past the last page: the last page)."""

    widget = forms.HiddenInput

    def __init__(self, **kwargs):
        message = ("The page number in this address is not valid (use 1, 2, 3 and so on): "
                   "this is the first page.")
        super().__init__(label="Page", required=False, min_value=1, max_value=10**9,
                         error_messages={"invalid": message, "min_value": message,
                                         "max_value": message}, **kwargs)


class CursorField(forms.CharField):
    """`?after=`: where a keyset page starts (`paging.encode`), cleaned to (time, id)."""

    widget = forms.HiddenInput

    def __init__(self, **kwargs):
        super().__init__(label="Older entries", required=False, max_length=100,
                         error_messages={"max_length": paging.BAD_CURSOR}, **kwargs)

    def clean(self, value):
        text = super().clean(value)
        if not text:
            return None
        position = paging.decode(text)
        if position is None:
            raise forms.ValidationError(paging.BAD_CURSOR, code="invalid")
        return position


class PageQueryForm(QueryForm):
    """A page whose list has numbered pages and no filter."""

    page = PageField()


# The days a filter may name: a range ends at the start of the day after its last day, which
# must exist, and a period of days counted back from its end must not fall before year 1.
EARLIEST_DAY, LATEST_DAY = date(1970, 1, 1), date(9999, 12, 30)


def _day_field(label):
    out_of_range = f"Enter a date from {EARLIEST_DAY:%Y-%m-%d} to {LATEST_DAY:%Y-%m-%d}."
    return forms.DateField(
        label=label, required=False, widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"invalid": "Enter a date as YYYY-MM-DD."},
        validators=[MinValueValidator(EARLIEST_DAY, out_of_range),
                    MaxValueValidator(LATEST_DAY, out_of_range)],
    )


class DateRangeForm(QueryForm):
    """A list filter over whole days, From and To both included (UTC)."""

    start = _day_field("From")
    end = _day_field("To")

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            self.add_error("end", "The end date must be on or after the start date.")
        return data
