"""What every form of the console shares."""

from django import forms


class ConsoleForm(forms.Form):
    """Labels without a trailing colon, as everywhere in the console."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class DateRangeForm(ConsoleForm):
    """A list filter over whole days, From and To both included (UTC)."""

    start = forms.DateField(label="From", required=False,
                            widget=forms.DateInput(attrs={"type": "date"}),
                            error_messages={"invalid": "Enter a date as YYYY-MM-DD."})
    end = forms.DateField(label="To", required=False,
                          widget=forms.DateInput(attrs={"type": "date"}),
                          error_messages={"invalid": "Enter a date as YYYY-MM-DD."})

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            self.add_error("end", "The end date must be on or after the start date.")
        return data
