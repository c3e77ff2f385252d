"""The framework-lab contract in Bottle, with psycopg 3 and SimpleTemplate (stacks/CONTRACT.md)."""

import os
import threading
from importlib.metadata import version
from random import randint

import bottle
from bottle import Bottle, SimpleTemplate, request, response, template, view
from psycopg_pool import ConnectionPool

HERE = os.path.dirname(os.path.abspath(__file__))
bottle.TEMPLATE_PATH.insert(0, os.path.join(HERE, "views"))

app = Bottle()
# Templates build their links with url(name): Bottle's get_url honours SCRIPT_NAME (the prefix).
SimpleTemplate.defaults["url"] = app.get_url


def connection_kwargs() -> dict:
    with open(os.environ["DB_PASSWORD_FILE"]) as secret:
        password = secret.read().strip()
    return {
        "host": os.environ["DB_HOST"],
        "port": int(os.environ["DB_PORT"]),
        "dbname": os.environ["DB_NAME"],
        "user": os.environ["DB_USER"],
        "password": password,
        "connect_timeout": 2,
    }


# One pool per gunicorn worker. It is opened on first use, not at import, so the app starts
# (and answers /health with 503) while the database is still unreachable. A short
# reconnect_timeout keeps the pool's retry backoff short, so it notices a database that has come
# back within seconds; check= pings each connection as it is handed out (as the SQLAlchemy
# stacks' pool_pre_ping does), so one left broken by a database restart is replaced, not used.
_pool = ConnectionPool(
    kwargs=connection_kwargs(),
    min_size=2,
    max_size=8,
    timeout=10,
    reconnect_timeout=5,
    check=ConnectionPool.check_connection,
    open=False,
)
_pool_lock = threading.Lock()
_pool_open = False


def pool() -> ConnectionPool:
    global _pool_open
    if not _pool_open:
        with _pool_lock:
            if not _pool_open:
                _pool.open()
                _pool_open = True
    return _pool


WORLD_BY_ID = "SELECT id, randomnumber FROM world WHERE id = %s"
UPDATE_WORLD = "UPDATE world SET randomnumber = %s WHERE id = %s"


def query_count() -> int:
    try:
        return min(max(int(request.query.get("queries", "1")), 1), 500)
    except ValueError:
        return 1


def json_response(data, status: int = 200) -> str:
    # Bottle turns a returned dict into JSON by itself, but not a list; spell both out alike.
    response.status = status
    response.content_type = "application/json"
    return bottle.json_dumps(data)


@app.get("/", name="index")
def index():
    response.content_type = "text/html; charset=utf-8"
    return template(
        "index",
        framework="Bottle",
        framework_version=version("bottle"),
        server=os.environ.get("LAB_SERVER_LABEL", ""),
        endpoints=["plaintext", "json", "db", "queries", "fortunes", "updates", "health"],
    )


@app.get("/plaintext", name="plaintext")
def plaintext():
    response.content_type = "text/plain"
    return b"Hello, World!"


@app.get("/json", name="json")
def json():
    return json_response({"message": "Hello, World!"})


@app.get("/db", name="db")
def single_query():
    with pool().connection() as conn:
        world_id, number = conn.execute(WORLD_BY_ID, (randint(1, 10000),)).fetchone()
    return json_response({"id": world_id, "randomNumber": number})


@app.get("/queries", name="queries")
def multiple_queries():
    worlds = []
    with pool().connection() as conn, conn.cursor() as cur:
        for _ in range(query_count()):
            world_id, number = cur.execute(WORLD_BY_ID, (randint(1, 10000),)).fetchone()
            worlds.append({"id": world_id, "randomNumber": number})
    return json_response(worlds)


@app.get("/updates", name="updates")
def updates():
    # Sorted ids: concurrent requests then lock rows in the same order and cannot deadlock.
    ids = sorted(randint(1, 10000) for _ in range(query_count()))
    worlds = []
    with pool().connection() as conn:
        with conn.cursor() as cur:
            for world_id in ids:
                cur.execute(WORLD_BY_ID, (world_id,)).fetchone()
                worlds.append({"id": world_id, "randomNumber": randint(1, 10000)})
            cur.executemany(UPDATE_WORLD, [(w["randomNumber"], w["id"]) for w in worlds])
        conn.commit()
    return json_response(worlds)


@app.get("/fortunes", name="fortunes")
@view("fortunes")
def fortunes():
    with pool().connection() as conn:
        rows = conn.execute("SELECT id, message FROM fortune").fetchall()
    rows.append((0, "Additional fortune added at request time."))
    rows.sort(key=lambda row: row[1])
    response.content_type = "text/html; charset=utf-8"
    return {"fortunes": rows}


@app.get("/health", name="health")
def health():
    try:
        # Never wait longer than the healthcheck does: 2 s for a pooled connection.
        with pool().connection(timeout=2) as conn:
            conn.execute("SELECT 1")
        return json_response({"status": "ok"})
    except Exception as exc:  # any database failure means "not ready"
        return json_response({"status": "unavailable", "reason": type(exc).__name__}, 503)
