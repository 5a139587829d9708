"""A real Prefect server for tests: `prefect server start` on a free loopback port with its own PREFECT_HOME, and
helpers to run the prefect CLI and long-running processes (worker, serve) against it. Everything it starts is
stopped at the end (process groups: terminate, then kill)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from forecasting.job.common import project_root

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    def __init__(self, home: Path):
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.processes: list[subprocess.Popen] = []
        clean = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        self.env = clean | {
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": self.url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_UI_ENABLED": "false",
            # The deployments carry real nightly schedules; the test triggers its runs itself.
            "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
            "PREFECT_CLI_WRAP_LINES": "false",
        }

    def start(self, timeout: float = 120) -> LiveServer:
        self.spawn("server", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port))
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            server = self.processes[0]
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prefect server did not start: {self.log('server')}")
            time.sleep(0.5)

    def spawn(self, name: str, program: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        """A long-running process with its output in <home>/<name>.log, in its own process group."""
        log = open(self.home / f"{name}.log", "w")  # noqa: SIM115 - kept open for the process's life
        exe = str(BIN / program) if (BIN / program).exists() else program
        proc = subprocess.Popen(
            [exe, *args],
            cwd=project_root(),
            env=self.env | (env or {}),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(proc)
        return proc

    def log(self, name: str) -> str:
        path = self.home / f"{name}.log"
        return path.read_text() if path.exists() else ""

    def cli(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(BIN / "prefect"), "--no-prompt", *args],
            cwd=project_root(),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"prefect {' '.join(args)} failed: {result.stdout}\n{result.stderr}")
        return result

    def run_deployment(self, name: str, parameters: dict, timeout: int = 600) -> tuple[str, str]:
        """Trigger a run of deployment `flow/deployment` and watch it to its end; (flow run id, final state)."""
        result = self.cli(
            "deployment", "run", name, "--params", json.dumps(parameters), "--watch", "--watch-timeout",
            str(timeout), timeout=timeout + 60, check=False,
        )  # fmt: skip
        text = result.stdout + result.stderr
        found = re.search(r"UUID: ([0-9a-f-]{36})", text)
        assert found, text
        state = re.search(r"Flow run finished .* in '(\w+)'", text)
        return found.group(1), state.group(1) if state else text

    def flow_run_logs(self, flow_run_id: str) -> str:
        return self.cli("flow-run", "logs", flow_run_id).stdout

    def wait_for_deployment(self, name: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.cli("deployment", "inspect", name, check=False).returncode != 0:
            assert time.monotonic() < deadline, f"deployment {name} was not registered: {self.log('serve')}"
            time.sleep(1)

    def stop(self) -> None:
        """Stop everything started, newest first: SIGTERM to the process group, SIGKILL after 15 s."""
        for proc in reversed(self.processes):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            else:
                try:  # children of an exited leader (e.g. a flow run the worker started)
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
