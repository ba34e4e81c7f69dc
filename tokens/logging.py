"""Keep access tokens (and the other secrets that travel in URLs) out of logs and error
reports."""

import logging

from django.views.debug import SafeExceptionReporterFilter

from config.scrubbing import scrub

from .codec import SCRUB_RE


class ScrubTokensFilter(logging.Filter):
    """Blank out anything token-shaped (or an invitation key or reset token in a path) in a log
    record's message and arguments."""

    def filter(self, record):
        message = record.getMessage()
        scrubbed = scrub(message)
        if scrubbed != message:
            record.msg = scrubbed
            record.args = None
        return True


class ScrubbingFormatter(logging.Formatter):
    """The last line of defence: the formatted line, traceback included, is scrubbed too."""

    def format(self, record):
        return scrub(super().format(record))


class TokenSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's error reports, with the Authorization header and token-shaped text hidden."""

    def get_safe_request_meta(self, request):
        meta = super().get_safe_request_meta(request)
        if "HTTP_AUTHORIZATION" in meta:
            meta["HTTP_AUTHORIZATION"] = self.cleansed_substitute
        for key, value in meta.items():
            if isinstance(value, str):
                meta[key] = scrub(value)
        return meta

    def get_post_parameters(self, request):
        params = super().get_post_parameters(request)
        cleaned = params.copy() if hasattr(params, "copy") else dict(params)
        for key in list(cleaned.keys()):
            value = cleaned.get(key)
            if isinstance(value, str) and SCRUB_RE.search(value):
                cleaned[key] = self.cleansed_substitute
        return cleaned
