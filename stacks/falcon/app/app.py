"""The framework-lab contract in Falcon (WSGI), with SQLAlchemy Core and Jinja2 (stacks/CONTRACT.md).
The tables, statements, pages and rules are contract.py's, shared with the ASGI app (asgi.py)."""

from random import randint

import contract
import falcon
from sqlalchemy import create_engine

engine = create_engine(contract.database_url(), **contract.ENGINE_OPTIONS)


def random_world(conn, world_id: int) -> dict:
    return contract.world_json(conn.execute(contract.WORLD_BY_ID, {"world_id": world_id}).one())


class IndexResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        contract.render_index(resp, req.app)  # req.app: the SCRIPT_NAME prefix the app is mounted under


class PlaintextResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        contract.plaintext(resp)


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
            resp.media = [random_world(conn, world_id) for world_id in contract.random_ids(req)]


class UpdatesResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        # Sorted ids: concurrent requests then lock rows in the same order and cannot deadlock.
        with engine.connect() as conn:
            worlds = [random_world(conn, world_id) for world_id in sorted(contract.random_ids(req))]
            conn.execute(contract.UPDATE_WORLD, contract.new_numbers(worlds))
            conn.commit()
        resp.media = worlds


class FortunesResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with engine.connect() as conn:
            contract.render_fortunes(resp, conn.execute(contract.ALL_FORTUNES))


class HealthResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            with engine.connect() as conn:
                conn.execute(contract.PING)
            resp.media = {"status": "ok"}
        except Exception as exc:  # any database failure means "not ready"
            contract.unavailable(resp, exc)


app = falcon.App()
contract.add_routes(app, globals())
