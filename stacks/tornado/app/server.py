"""Tornado's own HTTPServer, LAB_WORKERS processes sharing one listening socket.

The parent binds the socket and then becomes tornado.process.fork_processes' supervisor, which
restarts children that die abnormally. As PID 1 of the container it receives docker's SIGTERM
and passes it on to the children; each child stops accepting, lets requests in flight finish,
closes its connections and database pool, and exits 0, after which the supervisor exits 0.
"""

import asyncio
import ctypes
import logging
import os
import signal
from contextlib import suppress

import tornado.netutil
import tornado.process
from app import Database, make_app  # /app, the script's own folder, is first on sys.path
from tornado.httpserver import HTTPServer

log = logging.getLogger("lab.tornado")

DRAIN_SECONDS = 4.0  # how long a stopping child waits for requests in flight
KILL_AFTER_SECONDS = 8  # the supervisor SIGKILLs children still alive then (docker waits 10 s)

supervisor_pid = os.getpid()
stopping = False  # set in the supervisor on SIGTERM; children forked later inherit it


def children() -> list[int]:
    """PIDs whose parent is this process (fork_processes keeps its own list to itself)."""
    me = str(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me:  # fields: state, ppid, ...
            found.append(int(entry))
    return found


def signal_children(signum: int) -> None:
    for pid in children():
        with suppress(ProcessLookupError):
            os.kill(pid, signum)


def on_stop_signal(signum: int, frame) -> None:
    global stopping
    if os.getpid() != supervisor_pid:
        # A child between fork and installing its own handlers: just leave (status 0, so the
        # supervisor does not restart it).
        os._exit(0)
    if not stopping:
        stopping = True
        log.info("supervisor: %s, stopping the workers", signal.Signals(signum).name)
        signal.alarm(KILL_AFTER_SECONDS)
    signal_children(signal.SIGTERM)


def on_alarm(signum: int, frame) -> None:
    if os.getpid() == supervisor_pid and stopping:
        log.warning("supervisor: workers still running after %ds, killing them", KILL_AFTER_SECONDS)
        signal_children(signal.SIGKILL)


def die_with_parent() -> None:
    """Linux: SIGTERM this child if the supervisor goes away without telling it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != supervisor_pid:
        os._exit(0)


async def serve(sockets, task_id: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    db = Database()
    app = make_app(os.environ.get("LAB_PREFIX", ""), db)
    server = HTTPServer(app, xheaders=True)
    server.add_sockets(sockets)
    warm_up = asyncio.create_task(db.warm_up())
    log.info("worker %d (pid %d) serving", task_id, os.getpid())

    await stop.wait()
    server.stop()  # no new connections
    deadline = loop.time() + DRAIN_SECONDS
    while app.in_flight and loop.time() < deadline:
        await asyncio.sleep(0.05)
    with suppress(TimeoutError):
        await asyncio.wait_for(server.close_all_connections(), timeout=1)
    warm_up.cancel()
    await db.close()
    log.info("worker %d (pid %d) stopped", task_id, os.getpid())
    # Everything that matters is closed. Leave now rather than let asyncio.run's cleanup wait
    # on stragglers, such as a getaddrinfo thread stuck on an unreachable database host.
    logging.shutdown()
    os._exit(0)


class OneLineWarnings(logging.Filter):
    """asyncpg's pool retries its connection floor with a traceback each time: keep one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None and record.levelno < logging.ERROR:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()} ({type(exc).__name__}: {exc})"
            record.args = ()
            record.exc_info = None
        return True


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("LAB_LOG_LEVEL", "info").upper(),
        format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("asyncpg.pool").addFilter(OneLineWarnings())
    port = int(os.environ.get("LAB_APP_PORT", "8000"))
    workers = max(int(os.environ.get("LAB_WORKERS", "2")), 1)
    sockets = tornado.netutil.bind_sockets(port, address="0.0.0.0", backlog=2048)

    signal.signal(signal.SIGTERM, on_stop_signal)
    signal.signal(signal.SIGINT, on_stop_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    log.info("Tornado %s (HTTPServer) on 0.0.0.0:%d, %d workers", tornado.version, port, workers)

    # Returns only in a child; the supervisor exits once every child has exited with status 0.
    task_id = tornado.process.fork_processes(workers)

    if stopping:  # (re)started while the supervisor is stopping
        os._exit(0)
    # SIGTERM/SIGINT keep on_stop_signal (exit 0) until serve() installs the loop's handlers.
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    die_with_parent()
    asyncio.run(serve(sockets, task_id))


if __name__ == "__main__":
    main()
