# The framework-lab contract (stacks/CONTRACT.md) as web2py controller functions; routes.py maps
# the short URLs (/db, /fortunes, ...) to them (/plaintext and /json: controllers/hello.py). web2py exposes every function here that
# takes no arguments and does not start with two underscores. Models and controller share one
# namespace: a function named db would replace the DAL, hence single_query.
# web2py commits the DAL's transaction after the function returns, before the response is sent.

import os
from importlib.metadata import version
from random import randint


def __query_count():
    try:
        return min(max(int(request.get_vars.queries), 1), 500)
    except (TypeError, ValueError):  # missing, empty, non-numeric or given more than once
        return 1


def __serialize(world):
    return dict(id=world.id, randomNumber=world.randomnumber)


def index():
    # views/default/index.html; its links come from URL() through routes.py's routes_out
    return dict(
        framework="Web2py",
        framework_version=request.env.web2py_version,  # VERSION, written by the Dockerfile
        server=os.environ.get("LAB_SERVER_LABEL", ""),
        links=[URL("hello", f) for f in ("plaintext", "json")]
        + [URL(f) for f in ("single_query", "queries", "fortunes", "updates", "health")],
    )


def single_query():
    return response.json(__serialize(db.world[randint(1, 10000)]))


def queries():
    # db.world[id] is one SELECT ... WHERE id = ... per row
    return response.json([__serialize(db.world[randint(1, 10000)]) for _ in range(__query_count())])


def updates():
    worlds = []
    # in id order, so that concurrent requests take their row locks in the same order
    for world_id in sorted(randint(1, 10000) for _ in range(__query_count())):
        world = db.world[world_id]
        world.update_record(randomnumber=randint(1, 10000))  # UPDATE world ... WHERE id = ...
        worlds.append(__serialize(world))
    db.commit()
    return response.json(worlds)


def fortunes():
    # views/default/fortunes.html
    entries = [(row.id, row.message) for row in db(db.fortune).select()]
    entries.append((0, "Additional fortune added at request time."))
    entries.sort(key=lambda entry: entry[1])
    return dict(fortunes=entries)


def health():
    if db_error is not None:  # models/db.py could not connect
        # pydal's message carries the traceback; its last unindented line is the driver's error
        lines = [line for line in str(db_error).splitlines() if line[:1].strip()]
        return __unavailable(lines[-1])
    try:
        db.executesql("SELECT 1")
    except Exception as exc:  # any database failure means "not ready"
        return __unavailable(type(exc).__name__)
    return response.json(dict(status="ok"))


def __unavailable(reason):
    response.status = 503
    return response.json(dict(status="unavailable", reason=reason))
