"""The framework-lab contract in FastAPI, with an asyncpg pool and Jinja2 templates (stacks/CONTRACT.md)."""

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.metadata import version
from operator import attrgetter
from pathlib import Path
from random import randint
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

log = logging.getLogger("uvicorn.error")  # gunicorn's error log, one format for every line

PREFIX = os.environ.get("LAB_PREFIX", "")
HEALTH_TIMEOUT = 2.0  # seconds: /health answers 503 rather than hang when the database is down
CONNECT_TIMEOUT = 2.0
COMMAND_TIMEOUT = 10.0  # per statement, so a request never hangs on a vanished database

SELECT_WORLD = "SELECT id, randomnumber FROM world WHERE id = $1"
UPDATE_WORLD = "UPDATE world SET randomnumber = $2 WHERE id = $1"
EXTRA_FORTUNE = "Additional fortune added at request time."


class Database:
    """One asyncpg pool per worker, opened lazily so a worker starts (and /health answers) without the database."""

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


class OneLineWarnings(logging.Filter):
    """asyncpg's pool retries its connection floor with a traceback each time: keep one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None and record.levelno < logging.ERROR:
            record.msg = f"{record.getMessage()} ({describe(record.exc_info[1])})"
            record.args = ()
            record.exc_info = None
        return True


logging.getLogger("asyncpg.pool").addFilter(OneLineWarnings())


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict]:
    """Each worker opens its pool at start (a failure only means the first request tries again)."""
    db = Database()
    try:
        await db.pool()
    except Exception as exc:
        log.warning("database not reachable yet: %s", describe(exc))
    yield {"db": db}
    await db.close()


async def database_unavailable(request: Request, exc: Exception) -> Response:
    """An unreachable database is "unavailable" (503), not a bug in the app (500); one line, no traceback."""
    log.warning("503 %s %s: database unavailable: %s", request.method, request.url.path, describe(exc))
    return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, status_code=503)


# -- dependencies and models -------------------------------------------------------------------


async def get_pool(request: Request) -> asyncpg.Pool:
    return await request.state.db.pool()


def query_count(queries: str | None = None) -> int:
    """The contract's clamping: 1-500, and a missing, empty or non-numeric value counts as 1 (no 422)."""
    try:
        return min(max(int(queries or "1"), 1), 500)
    except ValueError:
        return 1


Pool = Annotated[asyncpg.Pool, Depends(get_pool)]
QueryCount = Annotated[int, Depends(query_count)]


class Message(BaseModel):
    message: str


class World(BaseModel):
    id: int
    random_number: int = Field(serialization_alias="randomNumber")


@dataclass(frozen=True, slots=True)
class Fortune:
    id: int
    message: str


def world(row: asyncpg.Record) -> World:
    return World(id=row["id"], random_number=row["randomnumber"])


# -- path operations ---------------------------------------------------------------------------

router = APIRouter()
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
ENDPOINTS = ["plaintext", "json", "db", "queries", "fortunes", "updates", "health"]


@router.get("/", response_class=HTMLResponse, name="index")
async def index(request: Request) -> Response:
    return templates.TemplateResponse(
        request,
        "index.html",
        {
            "framework": "FastAPI",
            "framework_version": version("fastapi"),
            "server": os.environ.get("LAB_SERVER_LABEL", ""),
            "endpoints": ENDPOINTS,
        },
    )


@router.get("/plaintext", response_class=PlainTextResponse, name="plaintext")
async def plaintext() -> str:
    return "Hello, World!"


@router.get("/json", name="json")
async def json_serialization() -> Message:
    return Message(message="Hello, World!")


@router.get("/db", name="db")
async def single_query(pool: Pool) -> World:
    return world(await pool.fetchrow(SELECT_WORLD, randint(1, 10000)))


@router.get("/queries", name="queries")
async def multiple_queries(pool: Pool, count: QueryCount) -> list[World]:
    ids = [randint(1, 10000) for _ in range(count)]
    async with pool.acquire() as conn:
        return [world(await conn.fetchrow(SELECT_WORLD, i)) for i in ids]


@router.get("/updates", name="updates")
async def updates(pool: Pool, count: QueryCount) -> list[World]:
    # Sorted ids keep concurrent updates from deadlocking on each other's rows.
    ids = sorted(randint(1, 10000) for _ in range(count))
    async with pool.acquire() as conn:
        worlds = []
        for i in ids:
            row = await conn.fetchrow(SELECT_WORLD, i)
            worlds.append(World(id=row["id"], random_number=randint(1, 10000)))
        await conn.executemany(UPDATE_WORLD, [(w.id, w.random_number) for w in worlds])
    return worlds


@router.get("/fortunes", response_class=HTMLResponse, name="fortunes")
async def fortunes(request: Request, pool: Pool) -> Response:
    entries = [Fortune(row["id"], row["message"]) for row in await pool.fetch("SELECT id, message FROM fortune")]
    entries.append(Fortune(0, EXTRA_FORTUNE))
    entries.sort(key=attrgetter("message"))
    return templates.TemplateResponse(request, "fortunes.html", {"fortunes": entries})


async def check_database(request: Request) -> None:
    pool = await request.state.db.pool()
    async with pool.acquire(timeout=HEALTH_TIMEOUT) as conn:
        await conn.fetchval("SELECT 1", timeout=HEALTH_TIMEOUT)


@router.get("/health", name="health")
async def health(request: Request) -> JSONResponse:
    # asyncio.wait, not wait_for: a cancelled asyncpg call may take seconds to clean up
    # (query cancel, connection reset), and /health must answer within HEALTH_TIMEOUT.
    check = asyncio.ensure_future(check_database(request))
    check.add_done_callback(lambda task: task.cancelled() or task.exception())
    await asyncio.wait({check}, timeout=HEALTH_TIMEOUT)
    if not check.done():
        check.cancel()
        return JSONResponse({"status": "unavailable", "reason": "TimeoutError"}, status_code=503)
    if check.exception() is not None:  # any database failure means "not ready"
        return JSONResponse({"status": "unavailable", "reason": type(check.exception()).__name__}, status_code=503)
    return JSONResponse({"status": "ok"})


# nginx passes the full path (/fastapi/json) on. uvicorn's root_path expects a proxy that strips
# the prefix and would prepend it once more, so the routes themselves live under the prefix;
# url_for() then carries it. The interactive docs move under it too.
app = FastAPI(
    title="framework-lab: FastAPI",
    lifespan=lifespan,
    docs_url=f"{PREFIX}/docs",
    redoc_url=None,
    openapi_url=f"{PREFIX}/openapi.json",
    exception_handlers=dict.fromkeys(DATABASE_UNAVAILABLE, database_unavailable),
)
app.include_router(router, prefix=PREFIX)
