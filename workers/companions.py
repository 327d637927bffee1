"""`python app.py run` starts the department-system sandbox and the workers next to the server.

They are child processes (`app.py sandbox`, `app.py worker`) so each keeps its own signal
handling and a crash in one does not take the server down.  `stop()` sends them SIGTERM and
waits for their graceful shutdown; on Linux they also get SIGTERM if `run` itself dies.

Credentials: the workers and the bank's callback use WORKER_TOKEN, WORKER_USER/
WORKER_PASSWORD or ADMIN_PASSWORD when set.  With none of them (the admin password was
generated on a first start and is not known any more) `run` issues a token of its own for
the service user `approvals-worker` (group external-workers), labelled with its host and
process, and revokes it when it stops.  It never revokes the token of another run, which may
be serving on another port or host; only one left by a run on this machine whose process
is gone (a crash), and the one shared token of versions before per-run tokens.
"""
from __future__ import annotations

import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, ContextManager, Mapping

ROOT = Path(__file__).resolve().parent.parent
SERVICE_USER = "approvals-worker"
_RUN_LABEL = re.compile(r"approvals run on (?P<host>\S+) pid (?P<pid>\d+) in (?P<namespace>\S+)")
# The label of the one token every `run` shared before each had its own (run_label): each
# start revoked it and issued it anew, and a stop left it.  No current run issues or holds it.
LEGACY_LABEL = "approvals run: workers and sandbox"


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
    """The children of one `run`, and the service token issued for them (`start`).
    `open_engine()` gives an engine for a moment: for issuing the token and revoking it."""

    def __init__(self, open_engine: Callable[[], ContextManager]) -> None:
        self.owner = os.getpid()        # gunicorn forks workers from this process: only the owner stops us
        self.open_engine = open_engine
        self.processes: list[tuple[str, Companion]] = []
        self.token_id: str | None = None

    def start(self, name: str, command: str, env: Mapping[str, str]) -> None:
        # a session of its own: Ctrl-C in the terminal reaches `run`, whose stop() ends the
        # companions with SIGTERM; reaching them too, it printed a KeyboardInterrupt traceback
        # from one still importing when the server had just come up
        process = Companion([sys.executable, str(ROOT / "app.py"), command], cwd=ROOT, env=dict(env),
                            start_new_session=True,
                            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        self.processes.append((name, process))

    def issue_token(self) -> str:
        with self.open_engine() as engine:
            self.token_id, token = issue_service_token(engine)
        return token

    def revoke_stale_tokens(self) -> None:
        from sqlalchemy.exc import SQLAlchemyError
        try:
            with self.open_engine() as engine:
                revoked = revoke_stale_tokens(engine)
        except SQLAlchemyError as err:             # the server serves on; the next start tries again
            print(f"could not revoke the workers' stale tokens ({type(err).__name__})", file=sys.stderr, flush=True)
            return
        if revoked:
            print(f"revoked {len(revoked)} token(s) of {SERVICE_USER} that no running server holds: "
                  + ", ".join(revoked), flush=True)

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
        self._revoke_token()

    def _revoke_token(self) -> None:
        """The token goes with the run; a run that dies without this leaves it (README)."""
        if self.token_id is not None:
            from sqlalchemy.exc import SQLAlchemyError
            try:
                with self.open_engine() as engine:
                    revoke_service_token(engine, self.token_id)
            except SQLAlchemyError as err:         # the database went first: the next start here revokes it
                print(f"could not revoke the workers' token {self.token_id} ({type(err).__name__}); "
                      "revoke it with DELETE /api/v1/tokens/" + self.token_id, file=sys.stderr, flush=True)
            self.token_id = None


def _sandbox_port_taken(env: Mapping[str, str]) -> str | None:
    """"host:port" when the sandbox could not listen there (another program holds it)."""
    host, port = env.get("SANDBOX_HOST") or "127.0.0.1", int(env.get("SANDBOX_PORT") or 8081)
    probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)      # as the sandbox's server binds
        probe.bind((host, port))
        return None
    except OSError:
        return f"{host}:{port}"
    finally:
        probe.close()


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


def run_label(pid: int | None = None) -> str:
    """The label of a run's service token: its host, its process and (Linux) that process's
    pid namespace, so that a later start can tell whether the run is still there."""
    return f"approvals run on {socket.gethostname()} pid {pid or os.getpid()} in {_pid_namespace()}"


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")                 # e.g. pid:[4026531836]
    except OSError:
        return "unknown"


def run_is_gone(label: str | None) -> bool:
    """Provably stale: the token of a run on this host, in this pid namespace, whose process
    no longer exists (a crash or SIGKILL skipped its revocation).  A run elsewhere cannot
    be checked from here, and a pid in use again may be that run still: such tokens stay."""
    match = _RUN_LABEL.fullmatch(label or "")
    if (match is None or match["host"] != socket.gethostname() or match["namespace"] == "unknown"
            or match["namespace"] != _pid_namespace()):
        return False
    pid = int(match["pid"])
    if pid == os.getpid():
        return True                     # the run that had our pid has ended: we are it now
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:             # another user's process
        return False
    return False


def stale_because(label: str | None) -> str | None:
    """Why a token of the service user can belong to no running `run`; None if it may."""
    if label == LEGACY_LABEL:
        return "issued by a version before per-run tokens"
    if run_is_gone(label):
        return "its run on this machine is gone"
    return None


def revoke_stale_tokens(engine) -> list[str]:
    """Revoke (and audit, actor `system`) the service user's tokens that `stale_because`;
    returns their ids.  Another server on this database keeps its workers' token."""
    from sqlalchemy import select

    from engine import identity
    from engine.models import ApiToken
    with engine.uow() as uow:
        live = uow.session.execute(select(ApiToken.id, ApiToken.label).where(
            ApiToken.user_id == SERVICE_USER, ApiToken.revoked.is_(None)).order_by(ApiToken.created)).all()
        stale = [(token_id, reason) for token_id, label in live if (reason := stale_because(label))]
        for token_id, reason in stale:
            identity.revoke_token(uow.session, identity.SYSTEM, token_id, reason=reason)
        uow.commit()
    return [token_id for token_id, _ in stale]


def issue_service_token(engine, label: str | None = None) -> tuple[str, str]:
    """(id, token): a Bearer token for `approvals-worker`, created in group external-workers
    if needed, labelled `run_label()`."""
    from engine import identity
    from engine.models import User
    actor = identity.SYSTEM.user_id
    with engine.uow() as uow:
        session = uow.session
        if session.get(User, SERVICE_USER) is None:
            identity.create_user(session, SERVICE_USER, None, first_name="Workers and sandbox of `make run`",
                                 actor=actor)
            session.flush()
        identity.add_member(session, identity.WORKERS_GROUP, SERVICE_USER, actor=actor)
        row, token = identity.issue_token(session, SERVICE_USER, label or run_label(), actor=actor)
        token_id = row.id
        uow.commit()
    return token_id, token


def revoke_service_token(engine, token_id: str) -> None:
    from engine import identity
    with engine.uow() as uow:
        identity.revoke_token(uow.session, identity.SYSTEM, token_id)
        uow.commit()


def start(companions: Companions, host: str, port: int, env: Mapping[str, str] | None = None) -> Companions:
    """Start the sandbox and the workers unless APPROVALS_NO_SANDBOX / APPROVALS_NO_WORKERS.
    `run` calls this once the server has bound its port: a start that cannot bind issues no
    token, revokes none and starts nothing.  The stale tokens go whatever else starts."""
    env = os.environ if env is None else env
    companions.revoke_stale_tokens()
    wanted = [(name, command) for name, command, off in (("sandbox", "sandbox", "APPROVALS_NO_SANDBOX"),
                                                         ("workers", "worker", "APPROVALS_NO_WORKERS"))
              if not _flag(env, off)]
    if not wanted:
        return companions
    taken = _sandbox_port_taken(env) if any(name == "sandbox" for name, _ in wanted) else None
    if taken:
        print(f"the sandbox's port {taken} is taken by another program: neither the sandbox nor the workers "
              "(which would call that program as the departments' systems) are started; set SANDBOX_PORT, or "
              "APPROVALS_NO_SANDBOX=1 with the workers' configuration naming the real systems",
              file=sys.stderr, flush=True)
        return companions
    child_env = child_environment(env, host, port, companions.issue_token)
    for name, command in wanted:
        companions.start(name, command, child_env)
    print("started " + " and ".join(name for name, _ in wanted) + " (APPROVALS_NO_SANDBOX=1 / "
          "APPROVALS_NO_WORKERS=1 to leave them out)", flush=True)
    return companions
