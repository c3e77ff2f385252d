"""The lab's files on this machine: written whole or not at all, changed by one command at a time.

Every command that changes state (compose file, builds.json, secrets, containers) holds
.lab/lock while it runs; a second one waits, saying who holds it, up to lock_timeout seconds.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from lab.errors import Exit, LabError

LOCK_NAME = "lock"
_held: dict[Path, int] = {}  # lock files this process holds, and how deeply (nested commands)


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file the user writes (lab.toml, a stack.toml); what is wrong with it is a usage error
    naming the file."""
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise LabError(f"{path}: not valid UTF-8 (byte {exc.start})", Exit.USAGE) from None
    except tomllib.TOMLDecodeError as exc:
        raise LabError(f"{path}: not valid TOML: {exc}", Exit.USAGE) from None
    except OSError as exc:
        raise LabError(f"{path}: cannot be read: {exc.strerror}", Exit.USAGE) from None


@contextlib.contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Name the file meant, not the temporary one, in the error the user sees."""
    try:
        yield
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None


def temporary_of(path: Path) -> Path:
    """Where atomic_file writes path's new content until it is complete (to read it back before then)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextlib.contextmanager
def atomic_file(path: Path, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A file to write path's new content to (by this process or a child it hands the file to): a
    temporary file in the same folder, fsync'd and renamed over path when the block ends, removed when
    it raises. A reader, a crash or a full disk sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_of(path)
    with _naming(path):
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb", buffering=0) as file:  # unbuffered: nothing left to fail at close
            yield file
            with _naming(path):
                os.fsync(file.fileno())
        with _naming(path):
            os.chmod(temporary, mode)  # the umask may have narrowed it
            os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def atomic_write(path: Path, data: str | bytes, mode: int = 0o644) -> None:
    """Write data to path whole or not at all (atomic_file)."""
    view = memoryview(data.encode() if isinstance(data, str) else data)
    with atomic_file(path, mode) as file, _naming(path):
        while view:
            view = view[file.write(view) :]


def _holder(lock_file: Path) -> str:
    try:
        return lock_file.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


@contextlib.contextmanager
def locked(state_dir: Path, timeout: float, say: Callable[[str], None]) -> Iterator[None]:
    """Hold state_dir/lock; wait (saying so) while another lab command holds it, up to timeout
    seconds, then refuse. Re-entrant within one process."""
    lock_file = (state_dir / LOCK_NAME).resolve()
    if lock_file in _held:
        _held[lock_file] += 1
        try:
            yield
        finally:
            _held[lock_file] -= 1
        return
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
            holder = _holder(lock_file)
            if time.monotonic() >= deadline:
                raise LabError(
                    f"another lab command (pid {holder}) holds {lock_file}"
                    + (f" after {timeout:g}s of waiting" if timeout else ""),
                    Exit.FAILED,
                    hint="wait until it is done, or set LAB_LOCK_TIMEOUT (seconds) to wait longer",
                )
            if not told:
                say(f"another lab command (pid {holder}) holds the lock, waiting up to {timeout:g}s…")
                told = True
            time.sleep(0.2)
        # Who holds it, for the message the next command shows (the lock is the flock, not this).
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _held[lock_file] = 1
        try:
            yield
        finally:
            del _held[lock_file]
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the file releases the flock
