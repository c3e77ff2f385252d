"""The site's URLs are the benchmark app's (stacks/CONTRACT.md)."""

from django.urls import include, path

urlpatterns = [
    path("", include("bench.urls")),
]
