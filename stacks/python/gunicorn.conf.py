"""gunicorn settings shared by every WSGI stack; each reads its knobs from the environment."""

import os

# gunicorn strips SCRIPT_NAME from PATH_INFO, so the app generates URLs under its prefix.
os.environ.setdefault("SCRIPT_NAME", os.environ.get("LAB_PREFIX", ""))

bind = f"0.0.0.0:{os.environ.get('LAB_APP_PORT', '8000')}"
workers = int(os.environ.get("LAB_WORKERS", "2"))
# gthread keeps connections from nginx alive; the sync worker closes each one, which
# under load leaves tens of thousands of TIME_WAIT sockets behind.
worker_class = os.environ.get("LAB_WORKER_CLASS", "gthread")
threads = int(os.environ.get("LAB_THREADS", "8"))
keepalive = 75
timeout = 30
graceful_timeout = 10
accesslog = None  # nginx keeps the access log
errorlog = "-"
loglevel = os.environ.get("LAB_LOG_LEVEL", "info")
# Trust X-Forwarded-* from nginx, the only thing that can reach the app.
forwarded_allow_ips = "*"
worker_tmp_dir = "/dev/shm"
# gunicorn 27's control socket defaults to the working directory, which is read-only here.
control_socket = "/tmp/gunicorn.ctl"
