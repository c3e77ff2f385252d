import os
from importlib.metadata import version
from random import randint

from pyramid.response import Response
from pyramid.view import view_config
from sqlalchemy import select, text

from .models import Fortune, World

ENDPOINTS = ["plaintext", "json", "db", "queries", "fortunes", "updates", "health"]


def query_count(request) -> int:
    try:
        return min(max(int(request.GET.get("queries", "1")), 1), 500)
    except ValueError:
        return 1


def html_utf8(response) -> None:
    # WebOb's default would be "text/html; charset=UTF-8"; the contract spells it in lower case.
    response.content_type = "text/html"
    response.charset = "utf-8"


def get_world(dbsession, world_id: int) -> World:
    # A SELECT every time: Session.get would answer a repeated id from the identity map.
    return dbsession.execute(select(World).where(World.id == world_id)).scalar_one()


@view_config(route_name="index", renderer="templates/index.jinja2")
def index(request):
    html_utf8(request.response)
    return {
        "framework": "Pyramid",
        "framework_version": version("pyramid"),
        "server": os.environ.get("LAB_SERVER_LABEL", ""),
        "endpoints": ENDPOINTS,
    }


@view_config(route_name="plaintext")
def plaintext(request):
    return Response(body=b"Hello, World!", content_type="text/plain", charset=None)


@view_config(route_name="json", renderer="json")
def json(request):
    return {"message": "Hello, World!"}


@view_config(route_name="db", renderer="json")
def single_query(request):
    return get_world(request.dbsession, randint(1, 10000))


@view_config(route_name="queries", renderer="json")
def multiple_queries(request):
    return [get_world(request.dbsession, randint(1, 10000)).__json__() for _ in range(query_count(request))]


@view_config(route_name="updates", renderer="json")
def updates(request):
    # Sorted ids: concurrent requests then lock rows in the same order and cannot deadlock.
    ids = sorted(randint(1, 10000) for _ in range(query_count(request)))
    # Read every row first, then change them: a SELECT in between would autoflush the changes
    # one UPDATE at a time instead of leaving them to one batched flush.
    rows = [get_world(request.dbsession, world_id) for world_id in ids]
    worlds = []
    for world in rows:
        world.randomnumber = randint(1, 10000)
        worlds.append(world.__json__())
    # pyramid_tm flushes the changes (one executemany) and commits once the view has returned,
    # before the response goes out; a failed commit turns into an error response.
    return worlds


@view_config(route_name="fortunes", renderer="templates/fortunes.jinja2")
def fortunes(request):
    rows = request.dbsession.execute(select(Fortune)).scalars().all()
    entries = [(f.id, f.message) for f in rows]
    entries.append((0, "Additional fortune added at request time."))
    entries.sort(key=lambda entry: entry[1])
    html_utf8(request.response)
    return {"fortunes": entries}


@view_config(route_name="health", renderer="json")
def health(request):
    try:
        request.dbsession.execute(text("SELECT 1"))
        return {"status": "ok"}
    except Exception as exc:  # any database failure means "not ready"
        request.tm.doom()  # pyramid_tm aborts the request's transaction instead of committing it
        request.response.status_int = 503
        return {"status": "unavailable", "reason": type(exc).__name__}
