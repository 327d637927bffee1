"""`python app.py run` starts the department-system sandbox and the workers next to the server.

They are child processes (`app.py sandbox`, `app.py worker`) so each keeps its own signal
handling and a crash in one does not take the server down.  `stop()` sends them SIGTERM and
waits for their graceful shutdown; on Linux they also get SIGTERM if `run` itself dies.

Credentials: the workers and the bank's callback use WORKER_TOKEN, WORKER_USER/
WORKER_PASSWORD or ADMIN_PASSWORD when set.  With none of them (the admin password was
generated on a first start and is not known any more) `run` issues a token for the service
user `approvals-worker` (group external-workers), revoking the one of the previous start.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Mapping

ROOT = Path(__file__).resolve().parent.parent
SERVICE_USER = "approvals-worker"
TOKEN_LABEL = "approvals run: workers and sandbox"


def _flag(env: Mapping[str, str], name: str) -> bool:
    return (env.get(name) or "").strip().lower() in {"1", "true", "yes", "on"}


def _die_with_parent() -> None:
    """Linux: SIGTERM this child when the `run` process dies, even by SIGKILL."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Companion(subprocess.Popen):
    """A child process of `run`.  gunicorn forks its workers from `run`, so each worker holds
    a copy of this object for a process that is not its child: finalized there at the
    worker's exit, Popen's own finalizer warned that the process was still running and
    polled it, and the master's SIGQUIT landing in it printed "Exception ignored in
    Popen.__del__" with a traceback on Ctrl-C of `make run`.  Only the process that
    started it finalizes it."""

    def __init__(self, *args, **kwargs) -> None:
        self.owner = os.getpid()
        super().__init__(*args, **kwargs)

    def __del__(self, _getpid=os.getpid) -> None:
        if _getpid() == self.owner:
            super().__del__()


class Companions:
    def __init__(self) -> None:
        self.owner = os.getpid()        # gunicorn forks workers from this process: only the owner stops us
        self.processes: list[tuple[str, Companion]] = []

    def start(self, name: str, command: str, env: Mapping[str, str]) -> None:
        process = Companion([sys.executable, str(ROOT / "app.py"), command], cwd=ROOT, env=dict(env),
                            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        self.processes.append((name, process))

    def stop(self, grace: float = 15.0) -> None:
        if os.getpid() != self.owner:
            return
        for _, process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for name, process in self.processes:
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop within {grace:g} s; killing it", file=sys.stderr, flush=True)
                process.kill()
                process.wait()
        self.processes.clear()


def child_environment(env: Mapping[str, str], host: str, port: int, token_source) -> dict:
    """The environment for the sandbox and workers: the engine's URL and credentials."""
    child = dict(env)
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    child.setdefault("APPROVALS_ENGINE_URL", f"http://{local}:{port}/engine-rest")
    sandbox_host = env.get("SANDBOX_HOST") or "127.0.0.1"
    sandbox_host = "127.0.0.1" if sandbox_host in ("0.0.0.0", "::") else sandbox_host
    child.setdefault("SANDBOX_URL", f"http://{sandbox_host}:{env.get('SANDBOX_PORT') or 8081}")
    if not (env.get("WORKER_TOKEN") or env.get("WORKER_USER") or env.get("ADMIN_PASSWORD")):
        child["WORKER_TOKEN"] = token_source()
    return child


def issue_service_token(engine) -> str:
    """A Bearer token for `approvals-worker` (created in group external-workers if needed)."""
    from sqlalchemy import update

    from engine import identity
    from engine.clock import utcnow
    from engine.models import ApiToken, User
    with engine.uow() as uow:
        session = uow.session
        if session.get(User, SERVICE_USER) is None:
            identity.create_user(session, SERVICE_USER, None, first_name="Workers and sandbox of `make run`",
                                 actor=identity.SYSTEM.user_id)
            session.flush()
        identity.add_member(session, identity.WORKERS_GROUP, SERVICE_USER, actor=identity.SYSTEM.user_id)
        session.execute(update(ApiToken).where(ApiToken.user_id == SERVICE_USER, ApiToken.label == TOKEN_LABEL,
                                               ApiToken.revoked.is_(None)).values(revoked=utcnow()))
        _, token = identity.issue_token(session, SERVICE_USER, TOKEN_LABEL, actor=identity.SYSTEM.user_id)
        uow.commit()
    return token


def start(engine, host: str, port: int, env: Mapping[str, str] | None = None) -> Companions:
    """Start the sandbox and the workers unless APPROVALS_NO_SANDBOX / APPROVALS_NO_WORKERS."""
    env = os.environ if env is None else env
    companions = Companions()
    wanted = [(name, command) for name, command, off in (("sandbox", "sandbox", "APPROVALS_NO_SANDBOX"),
                                                         ("workers", "worker", "APPROVALS_NO_WORKERS"))
              if not _flag(env, off)]
    if not wanted:
        return companions
    child_env = child_environment(env, host, port, lambda: issue_service_token(engine))
    for name, command in wanted:
        companions.start(name, command, child_env)
    print("started " + " and ".join(name for name, _ in wanted) + " (APPROVALS_NO_SANDBOX=1 / "
          "APPROVALS_NO_WORKERS=1 to leave them out)", flush=True)
    return companions
