# The lab's data model, a conditional model: web2py runs models/default/ only for the default
# controller's functions, so the stateless endpoints (controllers/hello.py) touch no database.
# DAL, Field, request, response and cache come from web2py's execution environment.

import os
from urllib.parse import quote


def _database_uri():
    with open(os.environ["DB_PASSWORD_FILE"]) as secret:
        password = secret.read().strip()
    user, password = quote(os.environ["DB_USER"], safe=""), quote(password, safe="")
    host, port, name = os.environ["DB_HOST"], os.environ["DB_PORT"], os.environ["DB_NAME"]
    return f"postgres:psycopg2://{user}:{password}@{host}:{port}/{name}"


# The pool keeps up to pool_size connections per worker process between requests (one per
# gunicorn thread); each DAL() takes one from it and web2py returns it after the request,
# committing on success and rolling back on an error.
db_error = None
try:
    db = DAL(
        cache.ram("database_uri", _database_uri, time_expire=None),  # read once per process
        pool_size=int(os.environ.get("LAB_THREADS", "8")),
        decode_credentials=True,
        migrate=False,  # the tables belong to stacks/postgres
        attempts=1,  # fail fast: pydal sleeps a second after each failed attempt
        driver_args=dict(connect_timeout=2),
    )
except RuntimeError as exc:  # pydal: "Failure to connect, tried 1 times: <traceback>"
    if request.function != "health":
        raise
    db, db_error = None, exc
else:
    db.define_table("world", Field("randomnumber", "integer"), migrate=False)
    db.define_table("fortune", Field("message", "string", length=2048), migrate=False)
