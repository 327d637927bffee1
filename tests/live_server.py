"""`python app.py serve` (gunicorn master and workers) in a process group of its own,
for the tests that need the real server: crashes (tests/security/test_crash_safety.py)
and the request pool (tests/api/test_serving.py)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import requests

from engine.config import ROOT
from tests.conftest import ADMIN

AUTH = ADMIN


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """`python app.py serve` in its own process group (gunicorn master and workers)."""
    database_url: str
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    log: list = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, workers: int = 2, timeout: float = 60.0, **env_vars: str) -> "Server":
        env = {**os.environ, "DATABASE_URL": self.database_url, "HOST": "127.0.0.1", "PORT": str(self.port),
               "WEB_CONCURRENCY": str(workers), "APPROVALS_THREADS": "8", **env_vars}
        env.pop("ADMIN_PASSWORD", None)
        self.proc = subprocess.Popen([sys.executable, "app.py", "serve"], cwd=ROOT, env=env, start_new_session=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._drain, args=(self.proc,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/engine-rest/version", auth=AUTH, timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            assert self.proc.poll() is None, "".join(self.log[-40:])
            time.sleep(0.2)
        raise AssertionError("the server did not come up:\n" + "".join(self.log[-40:]))

    def _drain(self, proc) -> None:
        for line in proc.stdout:
            self.log.append(line)

    def kill(self) -> None:
        """SIGKILL the whole group: master and workers die mid-request, nothing is flushed."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def serving(database_url: str, workers: int = 2, **env_vars: str):
    server = Server(database_url).start(workers, **env_vars)
    try:
        yield server
    finally:
        server.stop()
