"""One writer per output folder. Prefect's deployment concurrency limit stops a second scheduled run, but not a
CLI run, a `serve` process or a run on another worker sharing the disk; this lock does.

The lock is an ``fcntl.flock`` on ``<parent>/.<folder>.lock``, beside the folder so that a refused run creates
nothing inside it. The kernel drops the lock when its holder dies, even by SIGKILL, so a crashed run never leaves
a stale lock behind; the file's text (pid, host, start time) only says who holds it. The lock is re-entrant
within one process (a flow's tasks run in threads of the process that took it).
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from forecasting.outputs.confine import OutsideOutputsError, checked_folder

WAIT_ENV = "FORECASTING_LOCK_WAIT"  # seconds a run waits for the lock by default (0: refuse at once)
HOLD_ENV = "FORECASTING_HOLD_AT"  # "<point>:<flag file>": test hook, see hold()

_held: dict[Path, int] = {}
_guard = threading.Lock()


class OutputLockedError(RuntimeError):
    """Another run is writing the same output folder; this one was refused."""


def lock_path(folder: Path) -> Path:
    return folder.parent.resolve() / f".{folder.name}.lock"


def holder(path: Path) -> str:
    """Who holds the lock, from the text its holder wrote."""
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "a run that has not yet written its pid"
    return f"pid {info.get('pid')} on {info.get('host')}, since {info.get('since')}"


def default_wait() -> float:
    try:
        return max(0.0, float(os.environ.get(WAIT_ENV, "0")))
    except ValueError:
        return 0.0


@contextmanager
def output_lock(
    folder: Path, wait: float | None = None, on_wait: Callable[[str], None] | None = None
) -> Iterator[Path]:
    """Hold the write lock of `folder` for the block. Waits up to `wait` seconds (default: $FORECASTING_LOCK_WAIT,
    else 0), saying so through `on_wait` (default: a warning log), then raises OutputLockedError naming the holder."""
    path = lock_path(folder)
    with _guard:
        nested = path in _held
        if nested:
            _held[path] += 1
    if nested:
        try:
            yield path
        finally:
            with _guard:
                _held[path] -= 1
        return
    checked_folder(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    wait = default_wait() if wait is None else wait
    on_wait = on_wait or logging.getLogger(__name__).warning
    fd = _open_own(path)
    try:
        _acquire(fd, path, folder, wait, on_wait)
        os.ftruncate(fd, 0)
        since = datetime.now(UTC).isoformat(timespec="seconds")
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since}).encode(), 0)
        with _guard:
            _held[path] = 1
        try:
            hold("locked")
            yield path
        finally:
            with _guard:
                del _held[path]
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _open_own(path: Path) -> int:
    """Open (or create) the lock file, which the lock then truncates and writes: never through a link, and only a
    plain file of its own (not a hard link to another file), or a user's file would be overwritten."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
            raise OutsideOutputsError(
                f"{path} is a link or not a file where the project keeps its lock file; it was "
                "left as it is and nothing was written"
            ) from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        raise OutsideOutputsError(
            f"{path} is not a plain file of its own (a hard link, a device or a pipe) where the project keeps its "
            "lock file; it was left as it is and nothing was written"
        )
    return fd


def _acquire(fd: int, path: Path, folder: Path, wait: float, on_wait: Callable[[str], None] | None) -> None:
    deadline = time.monotonic() + wait
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if told and on_wait:
                on_wait(f"{folder}: got the write lock")
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise OutputLockedError(
                    f"{folder}: another run ({holder(path)}) is writing these outputs; this run was refused "
                    f"(lock file {path}; set {WAIT_ENV}=SECONDS to wait instead)"
                ) from None
            if not told and on_wait:
                on_wait(f"{folder}: another run ({holder(path)}) is writing these outputs; waiting up to {wait:.0f} s")
                told = True
            time.sleep(0.1)


def hold(point: str) -> None:
    """Test hook for the crash and concurrency tests: with $FORECASTING_HOLD_AT = "<point>:<flag file>", a run
    reaching `point` creates the flag file and pauses while it exists (a test then kills the process, or deletes
    the file to let it go on). Points: locked, table, manifest, links. Without the variable it does nothing."""
    spec = os.environ.get(HOLD_ENV)
    if not spec:
        return
    where, _, flag = spec.partition(":")
    if where != point or not flag:
        return
    Path(flag).write_text(str(os.getpid()))
    while Path(flag).exists():
        time.sleep(0.05)
