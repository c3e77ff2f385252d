"""WSGI entry point for every server: web2py's own gluon.main.wsgibase, served from this folder.

This folder is the web2py folder (gluon's `web2py_path`): VERSION, routes.py, applications/.
web2py's handlers/wsgihandler.py is not used: it changes into its own directory (site-packages
when gluon comes from PyPI) and, without web2py_runtime_handler, gluon.main pulls in the Rocket
server and a Tk message box.
"""

import os

WEB2PY_PATH = os.path.dirname(os.path.abspath(__file__))

# The root file system is read-only. The folders web2py writes to (deposit/, logs/ and the
# app's databases/, errors/, sessions/, cache/, uploads/) are symlinks into /tmp, a tmpfs,
# made in the Dockerfile; create what they point to before gluon looks at them.
for folder, dirs, files in os.walk(WEB2PY_PATH):
    for name in dirs + files:  # a dangling symlink is listed among the files
        path = os.path.join(folder, name)
        if os.path.islink(path):
            os.makedirs(os.path.realpath(path), exist_ok=True)

# gluon.settings reads the web2py folder from the environment when first imported.
os.environ["web2py_path"] = WEB2PY_PATH  # noqa: SIM112  (lower case: the name gluon reads)

from gluon.settings import global_settings  # noqa: E402

global_settings.web2py_runtime_handler = True

import gluon.main  # noqa: E402  (reads VERSION and routes.py, creates missing folders)



def application(environ, start_response):
    """gluon.main.wsgibase, with a Content-Length on every complete body.

    gluon sends its 200s without one (only 4xx get it) and leaves framing to the server. Gunicorn
    and Granian chunk such a body; uWSGI's keep-alive socket (http11-socket) does not, so the body
    ended only at uWSGI's socket timeout (4 s). Only a server that closes after each response (as
    the lab's uWSGI does now, and web2py's own uWSGI recipes over the uwsgi protocol) frames it by
    the close; over HTTP with keep-alive the length must be said. gluon never calls write(): it returns a list, or an iterator when it
    streams, which keeps its framing.
    """
    started = []

    def hold(status, headers, exc_info=None):
        started[:] = [status, headers, exc_info]

    body = gluon.main.wsgibase(environ, hold)
    status, headers, exc_info = started
    if isinstance(body, list) and not any(name.lower() == "content-length" for name, _ in headers):
        headers = [*headers, ("Content-Length", str(sum(len(chunk) for chunk in body)))]
    start_response(status, headers, exc_info)
    return body
