"""The site's error pages (`handler400` and friends in config/urls.py): under the API's paths,
the JSON error shape instead of a page; a member missing a permission is told what to ask
for."""

from django.shortcuts import render

from console.errors import api_error

from ..access import MissingPermission


def bad_request(request, exception=None):
    return api_error(request, 400, "invalid_request", "The request could not be understood.") \
        or render(request, "400.html", status=400)


def permission_denied(request, exception=None):
    api = api_error(request, 403, "forbidden", "This request is not allowed.")
    if api:
        return api
    context = {"advice": None, "workspace": None}
    if isinstance(exception, MissingPermission):
        context["advice"] = str(exception)
        context["workspace"] = exception.membership.workspace
    return render(request, "403.html", context, status=403)


def not_found(request, exception=None):
    return api_error(request, 404, "not_found", "There is no such API call.") \
        or render(request, "404.html", status=404)


def server_error(request):
    return api_error(request, 500, "server_error", "Something went wrong on our side.") \
        or render(request, "500.html", status=500)

