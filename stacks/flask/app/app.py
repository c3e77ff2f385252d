"""The framework-lab contract in Flask, with Flask-SQLAlchemy and Jinja2 (stacks/CONTRACT.md)."""

import os
from importlib.metadata import version
from random import randint

from flask import Flask, jsonify, make_response, render_template, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import URL, text


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


app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = database_url()
app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_size": 8, "max_overflow": 4, "pool_pre_ping": True}
app.json.sort_keys = False
db = SQLAlchemy(app)


class World(db.Model):
    __tablename__ = "world"
    id = db.Column(db.Integer, primary_key=True)
    randomnumber = db.Column(db.Integer, nullable=False)

    def serialize(self) -> dict:
        return {"id": self.id, "randomNumber": self.randomnumber}


class Fortune(db.Model):
    __tablename__ = "fortune"
    id = db.Column(db.Integer, primary_key=True)
    message = db.Column(db.String(2048), nullable=False)


def query_count() -> int:
    try:
        return min(max(int(request.args.get("queries", "1")), 1), 500)
    except ValueError:
        return 1


@app.get("/")
def index():
    return render_template(
        "index.html",
        framework="Flask",
        framework_version=version("flask"),
        server=os.environ.get("LAB_SERVER_LABEL", ""),
    )


@app.get("/plaintext")
def plaintext():
    response = make_response(b"Hello, World!")
    response.content_type = "text/plain"
    return response


@app.get("/json")
def json():
    return jsonify(message="Hello, World!")


@app.get("/db")
def single_query():
    return jsonify(db.session.get(World, randint(1, 10000)).serialize())


@app.get("/queries")
def multiple_queries():
    worlds = [db.session.get(World, randint(1, 10000)).serialize() for _ in range(query_count())]
    return jsonify(worlds)


@app.get("/updates")
def updates():
    ids = sorted(randint(1, 10000) for _ in range(query_count()))
    worlds = []
    for world_id in ids:
        world = db.session.get(World, world_id)
        world.randomnumber = randint(1, 10000)
        worlds.append(world.serialize())
    db.session.commit()
    return jsonify(worlds)


@app.get("/fortunes")
def fortunes():
    rows = db.session.execute(db.select(Fortune)).scalars().all()
    entries = [(f.id, f.message) for f in rows]
    entries.append((0, "Additional fortune added at request time."))
    entries.sort(key=lambda entry: entry[1])
    db.session.rollback()
    return render_template("fortunes.html", fortunes=entries)


@app.get("/health")
def health():
    try:
        db.session.execute(text("SELECT 1"))
        return jsonify(status="ok")
    except Exception as exc:  # any database failure means "not ready"
        db.session.rollback()
        return jsonify(status="unavailable", reason=type(exc).__name__), 503
