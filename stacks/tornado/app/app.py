"""The framework-lab contract in Tornado, with asyncpg and tornado.template (stacks/CONTRACT.md)."""

import asyncio
import json
import logging
import os
import re
from random import randint

import asyncpg
import tornado
import tornado.web
from tornado.web import url

log = logging.getLogger("lab.tornado")

HEALTH_TIMEOUT = 2.0  # seconds: /health answers 503 rather than hang when the database is down
CONNECT_TIMEOUT = 2.0
COMMAND_TIMEOUT = 10.0  # per statement, so a request never hangs on a vanished database


class Database:
    """One asyncpg pool per process, created lazily so the app starts without the database."""

    def __init__(self) -> None:
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                with open(os.environ["DB_PASSWORD_FILE"]) as secret:
                    password = secret.read().strip()
                self._pool = await asyncio.wait_for(
                    asyncpg.create_pool(
                        host=os.environ["DB_HOST"],
                        port=int(os.environ["DB_PORT"]),
                        database=os.environ["DB_NAME"],
                        user=os.environ["DB_USER"],
                        password=password,
                        min_size=2,
                        max_size=10,
                        timeout=CONNECT_TIMEOUT,  # per connection attempt
                        command_timeout=COMMAND_TIMEOUT,
                    ),
                    timeout=CONNECT_TIMEOUT + 1,
                )
            return self._pool

    async def warm_up(self) -> None:
        """Try to open the pool at start; a failure only means the first request tries again."""
        try:
            await self.pool()
        except Exception as exc:
            log.warning("database not reachable yet: %s", describe(exc))

    async def close(self) -> None:
        """Close the pool politely if the database answers within 2 s, else drop the sockets."""
        if self._pool is None:
            return
        closing = asyncio.ensure_future(self._pool.close())
        closing.add_done_callback(lambda task: task.cancelled() or task.exception())
        await asyncio.wait({closing}, timeout=2)
        if not closing.done():
            closing.cancel()
            self._pool.terminate()


# What a request meets while the database is down, restarting or out of reach.
DATABASE_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
)


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def query_count(value: str | None) -> int:
    try:
        return min(max(int(value or "1"), 1), 500)
    except ValueError:
        return 1


def world(row: asyncpg.Record) -> dict:
    return {"id": row["id"], "randomNumber": row["randomnumber"]}


SELECT_WORLD = "SELECT id, randomnumber FROM world WHERE id = $1"
UPDATE_WORLD = "UPDATE world SET randomnumber = $2 WHERE id = $1"


class BaseHandler(tornado.web.RequestHandler):
    db: Database

    def initialize(self, db: Database) -> None:
        self.db = db

    def prepare(self) -> None:
        self.application.in_flight += 1

    def on_finish(self) -> None:
        self.application.in_flight -= 1

    def compute_etag(self) -> None:
        return None  # every response is computed afresh; no ETag, no 304

    def send_error(self, status_code: int = 500, **kwargs) -> None:
        """An unreachable database is "unavailable" (503), not a bug in the app (500)."""
        if status_code == 500 and isinstance(kwargs.get("exc_info", (None, None))[1], DATABASE_UNAVAILABLE):
            status_code = 503
        super().send_error(status_code, **kwargs)

    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, DATABASE_UNAVAILABLE):  # one line, not a traceback per request
            log.warning("503 %s %s: database unavailable: %s", self.request.method, self.request.uri, describe(value))
        else:
            super().log_exception(typ, value, tb)

    def write_json(self, data, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data, ensure_ascii=False, separators=(",", ":")))


class IndexHandler(BaseHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.render(
            "index.html",
            framework="Tornado",
            framework_version=tornado.version,
            server=f"Tornado {tornado.version} (HTTPServer)",
            endpoints=["plaintext", "json", "db", "queries", "fortunes", "updates", "health"],
        )


class PlaintextHandler(BaseHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain")
        self.finish(b"Hello, World!")


class JsonHandler(BaseHandler):
    def get(self) -> None:
        self.write_json({"message": "Hello, World!"})


class SingleQueryHandler(BaseHandler):
    async def get(self) -> None:
        pool = await self.db.pool()
        row = await pool.fetchrow(SELECT_WORLD, randint(1, 10000))
        self.write_json(world(row))


class MultipleQueriesHandler(BaseHandler):
    async def get(self) -> None:
        ids = [randint(1, 10000) for _ in range(query_count(self.get_argument("queries", None)))]
        pool = await self.db.pool()
        async with pool.acquire() as conn:
            worlds = [world(await conn.fetchrow(SELECT_WORLD, i)) for i in ids]
        self.write_json(worlds)


class UpdatesHandler(BaseHandler):
    async def get(self) -> None:
        # Sorted ids keep concurrent updates from deadlocking on each other's rows.
        ids = sorted(randint(1, 10000) for _ in range(query_count(self.get_argument("queries", None))))
        pool = await self.db.pool()
        async with pool.acquire() as conn:
            worlds = []
            for i in ids:
                row = await conn.fetchrow(SELECT_WORLD, i)
                worlds.append({"id": row["id"], "randomNumber": randint(1, 10000)})
            await conn.executemany(UPDATE_WORLD, [(w["id"], w["randomNumber"]) for w in worlds])
        self.write_json(worlds)


class FortunesHandler(BaseHandler):
    async def get(self) -> None:
        pool = await self.db.pool()
        rows = await pool.fetch("SELECT id, message FROM fortune")
        fortunes = [(row["id"], row["message"]) for row in rows]
        fortunes.append((0, "Additional fortune added at request time."))
        fortunes.sort(key=lambda fortune: fortune[1])
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.render("fortunes.html", fortunes=fortunes)


class HealthHandler(BaseHandler):
    async def get(self) -> None:
        # asyncio.wait, not wait_for: a cancelled asyncpg call may take seconds to clean up
        # (query cancel, connection reset), and /health must answer within HEALTH_TIMEOUT.
        check = asyncio.ensure_future(self._check())
        check.add_done_callback(lambda task: task.cancelled() or task.exception())
        await asyncio.wait({check}, timeout=HEALTH_TIMEOUT)
        if not check.done():
            check.cancel()
            self.write_json({"status": "unavailable", "reason": "TimeoutError"}, status=503)
        elif check.exception() is not None:  # any database failure means "not ready"
            self.write_json({"status": "unavailable", "reason": type(check.exception()).__name__}, status=503)
        else:
            self.write_json({"status": "ok"})

    async def _check(self) -> None:
        pool = await self.db.pool()
        async with pool.acquire(timeout=HEALTH_TIMEOUT) as conn:
            await conn.fetchval("SELECT 1", timeout=HEALTH_TIMEOUT)


def no_access_log(handler: tornado.web.RequestHandler) -> None:
    """nginx keeps the access log; failures are still logged by RequestHandler.log_exception."""


def make_app(prefix: str, db: Database) -> tornado.web.Application:
    """Every route sits under the prefix nginx passes on (e.g. /tornado), so reverse_url carries it."""
    routes = [
        ("/", IndexHandler, "index"),
        ("/plaintext", PlaintextHandler, "plaintext"),
        ("/json", JsonHandler, "json"),
        ("/db", SingleQueryHandler, "db"),
        ("/queries", MultipleQueriesHandler, "queries"),
        ("/fortunes", FortunesHandler, "fortunes"),
        ("/updates", UpdatesHandler, "updates"),
        ("/health", HealthHandler, "health"),
    ]
    application = tornado.web.Application(
        [url(re.escape(prefix) + path, handler, {"db": db}, name=name) for path, handler, name in routes],
        template_path=os.path.join(os.path.dirname(__file__), "templates"),
        autoescape="xhtml_escape",
        compiled_template_cache=True,
        log_function=no_access_log,
    )
    application.in_flight = 0
    return application
