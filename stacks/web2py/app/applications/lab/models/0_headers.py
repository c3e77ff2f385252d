# Runs before every request's controller (models/*.py always run; models/default/ only for the
# default controller, see models/default/db.py).
response.headers.pop("X-Powered-By", None)  # set by web2py on every response
