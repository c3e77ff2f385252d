"""The framework-lab contract in Django, with the Django ORM and templates (stacks/CONTRACT.md)."""

import os
from importlib.metadata import version
from random import randint

from django.db import Error as DatabaseError
from django.db import connection, transaction
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from .models import Fortune, World

ENDPOINTS = ["plaintext", "json", "db", "queries", "fortunes", "updates", "health"]


def query_count(request) -> int:
    try:
        return min(max(int(request.GET.get("queries", "1")), 1), 500)
    except ValueError:
        return 1


@require_safe
def index(request):
    context = {
        "framework": "Django",
        "framework_version": version("django"),
        "server": os.environ.get("LAB_SERVER_LABEL", ""),
        "endpoints": ENDPOINTS,
    }
    return render(request, "bench/index.html", context)


@require_safe
def plaintext(request):
    return HttpResponse(b"Hello, World!", content_type="text/plain")


@require_safe
def json(request):
    return JsonResponse({"message": "Hello, World!"})


@require_safe
def single_query(request):
    return JsonResponse(World.objects.get(id=randint(1, 10000)).to_json())


@require_safe
def multiple_queries(request):
    worlds = [World.objects.get(id=randint(1, 10000)).to_json() for _ in range(query_count(request))]
    return JsonResponse(worlds, safe=False)


@require_safe
def updates(request):
    # Sorted ids: concurrent transactions lock rows in the same order, so they cannot deadlock.
    ids = sorted(randint(1, 10000) for _ in range(query_count(request)))
    response, changed = [], {}
    with transaction.atomic():
        for world_id in ids:
            world = World.objects.get(id=world_id)
            world.randomnumber = randint(1, 10000)
            response.append(world.to_json())
            changed[world_id] = world  # a repeated id: the last value read and set wins
        World.objects.bulk_update(changed.values(), ["randomnumber"])
    return JsonResponse(response, safe=False)


@require_safe
def fortunes(request):
    rows = list(Fortune.objects.all())
    rows.append(Fortune(id=0, message="Additional fortune added at request time."))
    rows.sort(key=lambda fortune: fortune.message)
    return render(request, "bench/fortunes.html", {"fortunes": rows})


@require_safe
def health(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:  # any database failure means "not ready"
        return JsonResponse({"status": "unavailable", "reason": type(exc).__name__}, status=503)
    return JsonResponse({"status": "ok"})
