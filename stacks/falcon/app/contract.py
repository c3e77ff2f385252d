"""What the WSGI app (app.py) and the ASGI app (asgi.py) share: the tables and statements (SQLAlchemy
Core), the database URL, the Jinja2 pages, the routes and the contract's rules (clamping, the extra
fortune, the JSON shapes). Only the responders differ: plain methods there, coroutines here."""

import os
from collections.abc import Iterable
from importlib.metadata import version
from random import randint

import falcon
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import URL, Column, Integer, MetaData, String, Table, bindparam, select, text

HERE = os.path.dirname(os.path.abspath(__file__))
templates = Environment(
    loader=FileSystemLoader(os.path.join(HERE, "templates")),
    autoescape=select_autoescape(["html"]),
)

metadata = MetaData()
world = Table(
    "world",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("randomnumber", Integer, nullable=False),
)
fortune = Table(
    "fortune",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("message", String(2048), nullable=False),
)

WORLD_BY_ID = select(world.c.id, world.c.randomnumber).where(world.c.id == bindparam("world_id"))
UPDATE_WORLD = world.update().where(world.c.id == bindparam("world_id")).values(randomnumber=bindparam("number"))
ALL_FORTUNES = select(fortune.c.id, fortune.c.message)
PING = text("SELECT 1")

# The engines connect lazily, so the app starts while the database is still unreachable;
# connect_timeout keeps /health from hanging on a database that does not answer.
ENGINE_OPTIONS = {"pool_size": 8, "max_overflow": 4, "pool_pre_ping": True, "connect_args": {"connect_timeout": 2}}

# Resource class names (in app.py and asgi.py alike) by route.
ROUTES = {
    "/": "IndexResource",
    "/plaintext": "PlaintextResource",
    "/json": "JsonResource",
    "/db": "SingleQueryResource",
    "/queries": "QueriesResource",
    "/updates": "UpdatesResource",
    "/fortunes": "FortunesResource",
    "/health": "HealthResource",
}
ENDPOINTS = [path for path in ROUTES if path != "/"]


def database_url() -> URL:
    """psycopg 3: create_engine uses it as is, create_async_engine its asyncio API."""
    with open(os.environ["DB_PASSWORD_FILE"]) as secret:
        password = secret.read().strip()
    return URL.create(
        "postgresql+psycopg",
        username=os.environ["DB_USER"],
        password=password,
        host=os.environ["DB_HOST"],
        port=int(os.environ["DB_PORT"]),
        database=os.environ["DB_NAME"],
    )


def add_routes(app: falcon.App, resources: dict, prefix: str = "") -> None:
    """One instance of each resource class of the module whose namespace is `resources`, by route."""
    for path, name in ROUTES.items():
        app.add_route(prefix + path, resources[name]())


def query_count(req: falcon.Request) -> int:
    try:
        return min(max(int(req.get_param("queries", default="1")), 1), 500)
    except ValueError:
        return 1


def random_ids(req: falcon.Request) -> list[int]:
    return [randint(1, 10000) for _ in range(query_count(req))]


def world_json(row) -> dict:
    return {"id": row.id, "randomNumber": row.randomnumber}


def new_numbers(worlds: list[dict]) -> list[dict]:
    """Give each world a new random number; the parameters of UPDATE_WORLD that write them."""
    for w in worlds:
        w["randomNumber"] = randint(1, 10000)
    return [{"world_id": w["id"], "number": w["randomNumber"]} for w in worlds]


def render_index(resp: falcon.Response, root: str) -> None:
    """Falcon has no URL builder: the links are the route paths under the app's root."""
    resp.content_type = falcon.MEDIA_HTML
    resp.text = templates.get_template("index.html").render(
        framework="Falcon",
        framework_version=version("falcon"),
        server=os.environ.get("LAB_SERVER_LABEL", ""),
        links=[root + path for path in ENDPOINTS],
    )


def plaintext(resp: falcon.Response) -> None:
    resp.content_type = falcon.MEDIA_TEXT
    resp.data = b"Hello, World!"


def render_fortunes(resp: falcon.Response, rows: Iterable) -> None:
    fortunes = [(row.id, row.message) for row in rows]
    fortunes.append((0, "Additional fortune added at request time."))
    fortunes.sort(key=lambda entry: entry[1])
    resp.content_type = falcon.MEDIA_HTML
    resp.text = templates.get_template("fortunes.html").render(fortunes=fortunes)


def unavailable(resp: falcon.Response, exc: Exception) -> None:
    resp.status = falcon.HTTP_503
    resp.media = {"status": "unavailable", "reason": type(exc).__name__}
