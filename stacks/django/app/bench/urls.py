from django.urls import path

from . import views

urlpatterns = [
    path("", views.index, name="index"),
    path("plaintext", views.plaintext, name="plaintext"),
    path("json", views.json, name="json"),
    path("db", views.single_query, name="db"),
    path("queries", views.multiple_queries, name="queries"),
    path("fortunes", views.fortunes, name="fortunes"),
    path("updates", views.updates, name="updates"),
    path("health", views.health, name="health"),
]
