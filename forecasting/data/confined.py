"""A DuckDB connection that reads only what it is given and writes nothing, by DuckDB's own settings: the files are
mounted read-only as an fsspec file system under one address (`sources://`, `outputs://`), that address is the one
allowed directory, external access is switched off and the configuration locked. Used by a job's SQL source
(forecasting.data.sql_source) and by planners' SQL over the outputs (forecasting.outputs.confined_sql), whose module
docstring holds the DuckDB 1.4.4 findings behind it (why no local folder may be allowed: it would be writable)."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, NoReturn

import duckdb
from fsspec import AbstractFileSystem

# What a confined connection is opened with, before anything is mounted. `temp_directory = ''`: no spill files (a
# query that needs more than the memory limit fails instead of writing to disk). Extensions are never installed or
# loaded on demand.
CONFIG = {
    "temp_directory": "",
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "allow_persistent_secrets": False,
}
READ_ONLY = "read-only"


def lock(con: duckdb.DuckDBPyConnection, protocol: str) -> None:
    """Allow only `<protocol>://` (a read-only mount registered on `con`), switch external access off and lock the
    configuration. The order matters: allowed_directories cannot change once external access is off."""
    con.execute("SET allowed_directories = ?", [[f"{protocol}://"]])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


class ReadOnlyFiles(AbstractFileSystem):
    """Named files as `<protocol>://<name>/<file name>`: each name is a folder holding exactly the files given for
    it (a glob's matches), opened for reading only. Nothing else on the machine can be reached through it."""

    protocol = "sources"
    root_marker = ""
    cachable = False

    def __init__(self, files: dict[str, list[Path]], **kwargs) -> None:
        super().__init__(**kwargs)
        self.files = {name: {p.name: p.resolve() for p in paths} for name, paths in files.items()}

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        return re.sub("/+", "/", super()._strip_protocol(path)).strip("/")

    def _parts(self, path: str) -> tuple[str, str]:
        name, _, file = self._strip_protocol(path).partition("/")
        return name, file

    def _local(self, path: str) -> Path:
        name, file = self._parts(path)
        if name not in self.files or file not in self.files[name]:
            raise FileNotFoundError(f"{path}: not one of the job's named source files")
        return self.files[name][file]

    def _open(self, path: str, mode: str = "rb", **kwargs) -> BinaryIO:
        if mode != "rb":
            raise PermissionError(f"{self._strip_protocol(path)}: the job's sources are {READ_ONLY}")
        return open(self._local(path), "rb")

    def info(self, path: str, **kwargs) -> dict:
        name, file = self._parts(path)
        if not file and (name in self.files or not name):
            return {"name": name, "size": 0, "type": "directory"}
        stat = self._local(path).stat()
        return {"name": f"{name}/{file}", "size": stat.st_size, "type": "file", "mtime": stat.st_mtime}

    def modified(self, path: str) -> datetime:
        return datetime.fromtimestamp(self._local(path).stat().st_mtime, tz=UTC)

    def ls(self, path: str, detail: bool = True, **kwargs) -> list:
        name, file = self._parts(path)
        if not name:
            entries = [{"name": n, "size": 0, "type": "directory"} for n in self.files]
        elif name in self.files and not file:
            entries = [
                {"name": f"{name}/{f}", "size": os.stat(p).st_size, "type": "file"} for f, p in self.files[name].items()
            ]
        else:
            entries = [self.info(path)]
        return entries if detail else [entry["name"] for entry in entries]

    def _refuse(self, path: str, *args, **kwargs) -> NoReturn:
        raise PermissionError(f"{path}: the job's sources are {READ_ONLY}")

    mkdir = makedirs = rm = rm_file = _rm = rmdir = mv = cp_file = put_file = pipe_file = touch = _refuse
