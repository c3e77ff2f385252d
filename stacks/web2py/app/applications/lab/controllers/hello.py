# The contract's stateless endpoints. They live in a controller of their own so that the
# conditional model models/default/db.py (web2py runs models/<controller>/ only for that
# controller) never runs for them: no DAL, no pooled connection, no COMMIT per request.
# A function named json hides the json module, so JSON goes out through response.json().


def plaintext():
    response.headers["Content-Type"] = "text/plain"
    return "Hello, World!"


def json():
    return response.json(dict(message="Hello, World!"))
