"""The framework-lab contract in Falcon, with SQLAlchemy Core and Jinja2 (stacks/CONTRACT.md)."""

import os
from importlib.metadata import version
from random import randint

import falcon
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import URL, Column, Integer, MetaData, String, Table, bindparam, create_engine, select, text

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


def database_url() -> URL:
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


# The engine connects lazily, so the app starts while the database is still unreachable;
# connect_timeout keeps /health from hanging on a database that does not answer.
engine = create_engine(
    database_url(),
    pool_size=8,
    max_overflow=4,
    pool_pre_ping=True,
    connect_args={"connect_timeout": 2},
)

ENDPOINTS = ["/plaintext", "/json", "/db", "/queries", "/fortunes", "/updates", "/health"]


def query_count(req: falcon.Request) -> int:
    try:
        return min(max(int(req.get_param("queries", default="1")), 1), 500)
    except ValueError:
        return 1


def random_world(conn, world_id: int) -> dict:
    row = conn.execute(WORLD_BY_ID, {"world_id": world_id}).one()
    return {"id": row.id, "randomNumber": row.randomnumber}


class IndexResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        # Falcon has no URL builder: req.app is the SCRIPT_NAME prefix the app is mounted under.
        resp.content_type = falcon.MEDIA_HTML
        resp.text = templates.get_template("index.html").render(
            framework="Falcon",
            framework_version=version("falcon"),
            server=os.environ.get("LAB_SERVER_LABEL", ""),
            links=[req.app + path for path in ENDPOINTS],
        )


class PlaintextResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_TEXT
        resp.data = b"Hello, World!"


class JsonResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"message": "Hello, World!"}


class SingleQueryResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with engine.connect() as conn:
            resp.media = random_world(conn, randint(1, 10000))


class QueriesResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with engine.connect() as conn:
            resp.media = [random_world(conn, randint(1, 10000)) for _ in range(query_count(req))]


class UpdatesResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        # Sorted ids: concurrent requests then lock rows in the same order and cannot deadlock.
        ids = sorted(randint(1, 10000) for _ in range(query_count(req)))
        with engine.connect() as conn:
            worlds = [random_world(conn, world_id) for world_id in ids]
            for w in worlds:
                w["randomNumber"] = randint(1, 10000)
            conn.execute(UPDATE_WORLD, [{"world_id": w["id"], "number": w["randomNumber"]} for w in worlds])
            conn.commit()
        resp.media = worlds


class FortunesResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with engine.connect() as conn:
            rows = [(row.id, row.message) for row in conn.execute(select(fortune.c.id, fortune.c.message))]
        rows.append((0, "Additional fortune added at request time."))
        rows.sort(key=lambda row: row[1])
        resp.content_type = falcon.MEDIA_HTML
        resp.text = templates.get_template("fortunes.html").render(fortunes=rows)


class HealthResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            resp.media = {"status": "ok"}
        except Exception as exc:  # any database failure means "not ready"
            resp.status = falcon.HTTP_503
            resp.media = {"status": "unavailable", "reason": type(exc).__name__}


app = falcon.App()
app.add_route("/", IndexResource())
app.add_route("/plaintext", PlaintextResource())
app.add_route("/json", JsonResource())
app.add_route("/db", SingleQueryResource())
app.add_route("/queries", QueriesResource())
app.add_route("/updates", UpdatesResource())
app.add_route("/fortunes", FortunesResource())
app.add_route("/health", HealthResource())
