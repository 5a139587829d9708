"""A real PostgreSQL server for tests: initdb in a temporary folder, `postgres` on a free loopback port, stopped at
the end. Needs the server binaries (Debian: apt-get install postgresql; .ci/run does it); as root it runs them as
the `postgres` user, since PostgreSQL refuses to run as root."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from live_prefect import free_port


def server_bin() -> Path | None:
    """The folder with initdb and postgres: Debian's /usr/lib/postgresql/<version>/bin, else PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    found = candidates[-1] if candidates else shutil.which("initdb")
    return Path(found).parent if found else None


def why_not_available() -> str | None:
    """None when a server can be started here, else the reason (support.unavailable fails with it)."""
    if server_bin() is None:
        return "no PostgreSQL server binaries (initdb) on this machine; .ci/run installs Debian's postgresql"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run the server as"
    return None


class LivePostgres:
    def __init__(self) -> None:
        self.bin = server_bin()
        self.root = Path(tempfile.mkdtemp(prefix="forecasting-pg-"))
        self.port = free_port()
        self.user = "forecasting"
        self.dsn = f"host=127.0.0.1 port={self.port} dbname=postgres user={self.user}"
        self.proc: subprocess.Popen | None = None
        self.as_postgres: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self.as_postgres = ["runuser", "-u", "postgres", "--"]

    def start(self, timeout: float = 60) -> LivePostgres:
        data = self.root / "data"
        subprocess.run(
            [*self.as_postgres, str(self.bin / "initdb"), "-D", str(data), "-U", self.user, "-A", "trust", "--no-sync"],
            check=True,
            capture_output=True,
        )
        self.proc = subprocess.Popen(
            [*self.as_postgres, str(self.bin / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(self.port)]
            + ["-k", str(self.root), "-F", "-c", "logging_collector=off"],
            stdout=open(self.root / "server.log", "w"),  # noqa: SIM115 - open for the server's life
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while True:
            ready = subprocess.run(
                [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True
            )
            if ready.returncode == 0:
                return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not start: {(self.root / 'server.log').read_text()}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)  # postgres: fast shutdown
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)
