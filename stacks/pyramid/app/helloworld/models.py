"""Models for the existing tables, and a SQLAlchemy session per request, as the Pyramid
cookiecutter wires it: pyramid_tm owns the transaction, zope.sqlalchemy joins the session to it,
and `request.dbsession` is created on first use."""

import os

import zope.sqlalchemy
from sqlalchemy import URL, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker


class Base(DeclarativeBase):
    pass


class World(Base):
    __tablename__ = "world"
    id: Mapped[int] = mapped_column(primary_key=True)
    randomnumber: Mapped[int]

    def __json__(self, request=None) -> dict:
        return {"id": self.id, "randomNumber": self.randomnumber}


class Fortune(Base):
    __tablename__ = "fortune"
    id: Mapped[int] = mapped_column(primary_key=True)
    message: Mapped[str] = mapped_column(String(2048))


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


def get_engine():
    # The engine connects lazily, so the app starts while the database is still unreachable;
    # connect_timeout keeps /health from hanging on a database that does not answer.
    return create_engine(
        database_url(),
        pool_size=8,
        max_overflow=4,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 2},
    )


def get_session_factory(engine):
    return sessionmaker(bind=engine)


def get_tm_session(session_factory, transaction_manager, request=None):
    dbsession = session_factory(info={"request": request})
    zope.sqlalchemy.register(dbsession, transaction_manager=transaction_manager)
    return dbsession


def includeme(config):
    settings = config.get_settings()
    settings["tm.manager_hook"] = "pyramid_tm.explicit_manager"
    config.include("pyramid_tm")

    session_factory = get_session_factory(get_engine())
    config.registry["dbsession_factory"] = session_factory

    def dbsession(request):
        return get_tm_session(session_factory, request.tm, request=request)

    config.add_request_method(dbsession, reify=True)
