# web2py's pattern-based URL rewriting (see web2py's examples/routes.patterns.example.py).
#
# The contract's short URLs map onto the lab application's default controller, and URL()
# maps them back. web2py ignores SCRIPT_NAME: gunicorn strips the prefix (/web2py) from
# PATH_INFO on the way in, and routes_out puts it back in front of every URL() web2py makes.
# /db is the function single_query: a function named db would replace the model's db (the DAL)
# in the environment that models and controller share.
# Every endpoint is stateless, so web2py_disable_session keeps web2py from opening a session
# (and sending a session cookie) on each request.

import os

PREFIX = os.environ.get("LAB_PREFIX", "").rstrip("/")
STATELESS = dict(web2py_disable_session=True)
# short URL -> controller/function (hello: the endpoints that need no database, see its comment)
ENDPOINTS = dict(
    plaintext="hello/plaintext",
    json="hello/json",
    db="default/single_query",
    queries="default/queries",
    fortunes="default/fortunes",
    updates="default/updates",
    health="default/health",
)

default_application = "lab"
default_controller = "default"
default_function = "index"

routes_in = (
    [("/", "/lab/default/index", STATELESS)]
    + [("/" + path, "/lab/" + function, STATELESS) for path, function in ENDPOINTS.items()]
    # anything else keeps web2py's /application/controller/function form, still stateless
    + [("/$anything", "/$anything", STATELESS)]
)

routes_out = (
    [("/lab/default/index", PREFIX + "/")]
    + [("/lab/" + function, PREFIX + "/" + path) for path, function in ENDPOINTS.items()]
    + [("/$anything", PREFIX + "/$anything")]
)
