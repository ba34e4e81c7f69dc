"""Django's error reports (`DEFAULT_EXCEPTION_REPORTER_FILTER`) with secrets hidden: the
Authorization header always, and anything token-shaped in the request's headers and form."""

from django.views.debug import SafeExceptionReporterFilter

from .scrubbing import has_secret, scrub


class SecretSafeExceptionReporterFilter(SafeExceptionReporterFilter):
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
            if isinstance(value, str) and has_secret(value):
                cleaned[key] = self.cleansed_substitute
        return cleaned
