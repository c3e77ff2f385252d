"""WSGI entry point for gunicorn: web2py's own gluon.main.wsgibase, served from this folder.

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

application = gluon.main.wsgibase
