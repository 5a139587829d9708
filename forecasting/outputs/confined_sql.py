"""Planners' SQL (`forecasting query`, `forecasting recipe`) confined to one job's published outputs, read-only,
with bounded memory and time, by DuckDB's own settings rather than a check of the SQL text.

Why not `allowed_directories = [<output folder>]` alone: in DuckDB 1.4.4 an allowed directory is readable *and
writable* even with `enable_external_access = false`. COPY TO, EXPORT DATABASE, ATTACH of a new file and even
`SELECT * FROM enable_logging(storage = 'file', storage_path = ...)` (a table function, which `lock_configuration`
does not stop) all wrote into it. So no local folder is allowed at all: the job's output folder is mounted as the
file system `outputs://` (an fsspec file system registered on the connection) that opens files for reading only,
never outside the folder, and `outputs://` is the one allowed prefix. Views over parquet are resolved at each query;
they read their files through that mount, everything else on the machine is refused by DuckDB itself.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, NoReturn

import duckdb
import polars as pl
from fsspec import AbstractFileSystem

from forecasting.data import confined

PROTOCOL = "outputs"
READ_ONLY = "the published outputs are read-only"
OUTSIDE = "outside the job's published outputs"
# What a planner's connection is opened with, before any view exists: forecasting.data.confined's (no spill files,
# no extension installed or loaded on demand: with external access off, DuckDB 1.4.4 still creates
# ~/.duckdb/extensions/... and tries to download one that a query needs, e.g. CREATE SECRET TYPE s3).
CONFIG = confined.CONFIG
# DuckDB statement types (duckdb.StatementType names) as a planner knows them, for the refusal message.
STATEMENT_NAMES = {
    "LOAD": "INSTALL / LOAD of an extension",
    "SET": "SET of a setting",
    "EXPORT": "EXPORT DATABASE",
    "ATTACH": "ATTACH",
    "COPY": "COPY",
    "COPY_DATABASE": "COPY FROM DATABASE",
    "SELECT": "query",
}


@dataclass(frozen=True)
class Limits:
    """DuckDB's `memory_limit` (e.g. '2GB') and the wall time in seconds that one planner's SQL (all its statements
    and fetching the result) may take."""

    memory: str = "2GB"
    seconds: float = 60.0

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise ValueError(f"--timeout {self.seconds}: give a number of seconds above 0")


class QueryRefused(Exception):
    """A planner's SQL stopped by the confinement (a file outside the outputs, a write, a locked setting, the time
    or memory limit): the message names what was refused and why."""


class ReadOnlyOutputs(AbstractFileSystem):
    """One job's output folder as `outputs://<path inside it>`: files open for reading only, and a path that leads
    outside the folder (`..`, a symlink pointing out) is refused. Every write method refuses."""

    protocol = PROTOCOL
    root_marker = ""
    cachable = False  # one instance per connection and folder, never shared through fsspec's cache

    def __init__(self, folder: Path, **kwargs) -> None:
        super().__init__(**kwargs)
        self.folder = Path(folder).resolve()

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        # DuckDB joins 'outputs://' and '/staffing.parquet' as 'outputs:///staffing.parquet': one relative form.
        return re.sub("/+", "/", super()._strip_protocol(path)).strip("/")

    def _local(self, path: str) -> Path:
        local = (self.folder / self._strip_protocol(path)).resolve()
        if local != self.folder and not local.is_relative_to(self.folder):
            raise PermissionError(f"{path}: {OUTSIDE}")
        return local

    def _open(self, path: str, mode: str = "rb", **kwargs) -> BinaryIO:
        if mode != "rb":
            raise PermissionError(f"{self._strip_protocol(path)}: {READ_ONLY}")
        return open(self._local(path), "rb")

    def info(self, path: str, **kwargs) -> dict:
        local = self._local(path)
        stat = local.stat()
        kind = "directory" if local.is_dir() else "file"
        return {"name": self._strip_protocol(path), "size": stat.st_size, "type": kind, "mtime": stat.st_mtime}

    def exists(self, path: str, **kwargs) -> bool:
        try:
            self.info(path)
        except FileNotFoundError:
            return False
        return True  # a path outside the folder raises PermissionError: refused, not "no such file"

    def modified(self, path: str) -> datetime:
        return datetime.fromtimestamp(self._local(path).stat().st_mtime, tz=UTC)

    def ls(self, path: str, detail: bool = True, **kwargs) -> list:
        # Names keep the path as given (`latest/...`, not the run folder a link resolves to), so globs match.
        inside = self._strip_protocol(path)
        entries = []
        with os.scandir(self._local(path)) as found:
            for entry in found:
                try:
                    size, kind = entry.stat().st_size, "directory" if entry.is_dir() else "file"
                except OSError:  # a dangling link (a writer's debris): not part of the outputs
                    continue
                name = f"{inside}/{entry.name}" if inside else entry.name
                entries.append({"name": name, "size": size, "type": kind})
        return entries if detail else [entry["name"] for entry in entries]

    def _refuse(self, path: str, *args, **kwargs) -> NoReturn:
        raise PermissionError(f"{path}: {READ_ONLY}")

    mkdir = makedirs = rm = rm_file = _rm = rmdir = mv = cp_file = put_file = pipe_file = touch = _refuse


def url(folder: Path, path: Path) -> str:
    """The `outputs://` address of `path` (a file or folder inside the job's output folder `folder`), for the views'
    variables; ValueError if it lies outside."""
    root, target = Path(folder).resolve(), Path(path).resolve()
    if target != root and not target.is_relative_to(root):
        raise ValueError(f"{path}: {OUTSIDE} ({folder})")
    inside = target.relative_to(root).as_posix()
    return f"{PROTOCOL}://" + ("" if inside == "." else inside)


def connect(folder: Path, limits: Limits) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that can read `folder` (as `outputs://`) and nothing else, write nothing, and
    whose configuration is locked before it is returned: create the views on it, then run planners' SQL with `run`.
    The order matters: allowed_directories cannot change once external access is off, and nothing can change once
    the configuration is locked (the file system is registered on the connection, not through a setting)."""
    try:
        con = duckdb.connect(config=CONFIG | {"memory_limit": limits.memory})
    except duckdb.Error as exc:
        raise ValueError(f"--memory-limit {limits.memory!r}: {exc}") from exc
    con.register_filesystem(ReadOnlyOutputs(folder))
    confined.lock(con, PROTOCOL)
    return con


def run(
    con: duckdb.DuckDBPyConnection, sql: str, limits: Limits, params: list | dict | None = None
) -> pl.DataFrame | None:
    """Run a planner's SQL on a confined connection and fetch its result (None when the last statement returns no
    rows, e.g. SET VARIABLE), interrupted after `limits.seconds`. DuckDB 1.4 has no statement timeout: a timer
    thread calls `con.interrupt()`, DuckDB's way to cancel a running query from another thread."""
    expired = threading.Event()

    def stop() -> None:
        expired.set()
        con.interrupt()

    timer = threading.Timer(limits.seconds, stop)
    timer.daemon = True
    timer.start()
    try:
        relation = con.sql(sql, params=params)
        return None if relation is None else relation.pl()
    except duckdb.Error as exc:
        reason = _refusal(exc, limits, expired.is_set())
        if reason is None:
            raise
        raise QueryRefused(f"refused {_statements(con, sql)}: {reason}") from exc
    finally:
        timer.cancel()


def _refusal(exc: duckdb.Error, limits: Limits, expired: bool) -> str | None:
    """Why the confinement stopped a statement, or None for an ordinary error (syntax, unknown column)."""
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, duckdb.InterruptException) and expired:
        return f"it ran past the time limit of {limits.seconds:g} s (raise it with --timeout)"
    if isinstance(exc, duckdb.OutOfMemoryException):
        return f"it needs more than the memory limit of {limits.memory} (raise it with --memory-limit): {message}"
    if isinstance(exc, duckdb.PermissionException) or OUTSIDE in message:
        return f"{message} (a planner's SQL reads only the job's published outputs, through the views)"
    if READ_ONLY in message:
        return message.split("PermissionError: ", 1)[-1]
    if isinstance(exc, duckdb.InvalidInputException) and "configuration has been locked" in message:
        return f"{message} (settings are fixed before a planner's SQL runs)"
    return None


def _statements(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """The kinds of statement in `sql`, named from DuckDB's own parse, e.g. 'COPY' or 'INSTALL / LOAD of an
    extension'."""
    try:
        kinds = [statement.type.name for statement in con.extract_statements(sql)]
    except duckdb.Error:
        return "SQL"
    return ", ".join(dict.fromkeys(STATEMENT_NAMES.get(kind, kind) for kind in kinds)) or "SQL"
