"""The framework-lab contract in Falcon (ASGI): falcon.asgi.App with async responders, SQLAlchemy's asyncio
API on psycopg 3's (an engine per worker, made on the lifespan's startup) and Jinja2 (stacks/CONTRACT.md).
The tables, statements, pages and rules are contract.py's, shared with the WSGI app (app.py)."""

import os
from random import randint

import contract
import falcon
import falcon.asgi
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

# nginx passes the full path (/falcon/json) on and Falcon routes on the full ASGI path, so the routes
# live under the prefix (an ASGI server's root_path is meant for a proxy that strips it); the links too.
PREFIX = os.environ.get("LAB_PREFIX", "")


class Database:
    """Middleware holding this worker's engine: made on the ASGI lifespan's startup (each worker runs its
    own), disposed of at shutdown. It connects lazily, so a worker starts while the database is down."""

    engine: AsyncEngine

    async def process_startup(self, scope: dict, event: dict) -> None:
        self.engine = create_async_engine(contract.database_url(), **contract.ENGINE_OPTIONS)

    async def process_shutdown(self, scope: dict, event: dict) -> None:
        await self.engine.dispose()

    def connect(self) -> AsyncConnection:
        return self.engine.connect()


db = Database()


async def random_world(conn: AsyncConnection, world_id: int) -> dict:
    return contract.world_json((await conn.execute(contract.WORLD_BY_ID, {"world_id": world_id})).one())


class IndexResource:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        contract.render_index(resp, PREFIX)


class PlaintextResource:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        contract.plaintext(resp)


class JsonResource:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = {"message": "Hello, World!"}


class SingleQueryResource:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        async with db.connect() as conn:
            resp.media = await random_world(conn, randint(1, 10000))


class QueriesResource:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        async with db.connect() as conn:
            resp.media = [await random_world(conn, world_id) for world_id in contract.random_ids(req)]


class UpdatesResource:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        # Sorted ids: concurrent requests then lock rows in the same order and cannot deadlock.
        async with db.connect() as conn:
            worlds = [await random_world(conn, world_id) for world_id in sorted(contract.random_ids(req))]
            await conn.execute(contract.UPDATE_WORLD, contract.new_numbers(worlds))
            await conn.commit()
        resp.media = worlds


class FortunesResource:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        async with db.connect() as conn:
            contract.render_fortunes(resp, await conn.execute(contract.ALL_FORTUNES))


class HealthResource:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        try:
            async with db.connect() as conn:
                await conn.execute(contract.PING)
            resp.media = {"status": "ok"}
        except Exception as exc:  # any database failure means "not ready"
            contract.unavailable(resp, exc)


def http_10_as_asgi_says(app: falcon.asgi.App):
    """Granian 2.8 gives an HTTP/1.0 request the scope's http_version "1" where ASGI says "1.0", and Falcon
    refuses the scope (500): nginx's watcher probes /health with HTTP/1.0. Mend the scope until Granian does;
    on the other servers the version is right already and this is one comparison."""

    async def mended(scope: dict, receive, send) -> None:
        if scope.get("http_version") == "1":
            scope["http_version"] = "1.0"
        await app(scope, receive, send)

    return mended


falcon_app = falcon.asgi.App(middleware=[db])
contract.add_routes(falcon_app, globals(), PREFIX)
app = http_10_as_asgi_says(falcon_app)
