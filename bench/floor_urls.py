"""The site's URLs plus `/bench/floor`: the cheapest JSON answer through the same middleware.

The floor is what Django, gunicorn and the middleware cost on this machine before any app
code runs; the API's requests per second are reported as a fraction of it.
"""

from django.http import JsonResponse
from django.urls import path

from config import urls as site_urls


def floor(request):
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/floor", floor, name="bench_floor"), *site_urls.urlpatterns]

handler403 = site_urls.handler403
handler404 = site_urls.handler404
handler500 = site_urls.handler500
