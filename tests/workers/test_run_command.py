"""`python app.py run` starts the sandbox and the workers next to the server, with a token
it issues itself when no credentials are configured, and SIGTERM stops all of it."""
from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest
import requests

from engine.config import ROOT
from workers import companions
from workers import config as connector_config

OPENING = Path(__file__).parent / "fixtures" / "enterprise_opening.bpmn"
CREDENTIALS = ("ADMIN_PASSWORD", "WORKER_TOKEN", "WORKER_USER", "WORKER_PASSWORD", "DATABASE_URL", "PORT",
               "HOST", "APPROVALS_NO_SANDBOX", "APPROVALS_NO_WORKERS", "SANDBOX_URL", "APPROVALS_ENGINE_URL")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_run_serves_the_case_with_sandbox_and_workers_and_sigterm_stops_everything(tmp_path):
    port, sandbox_port = free_port(), free_port()
    connectors = tmp_path / "connectors.toml"
    # a 1 s long poll; a shutdown grace beyond the 15 s `run` gives its children before it kills
    # them, so a worker that waited its grace out instead of stopping with the poll is named below
    connectors.write_text(connector_config.DEFAULT_PATH.read_text(encoding="utf-8").replace(
        "async_response_timeout_ms = 5000", "async_response_timeout_ms = 1000").replace(
        "shutdown_grace_s = 10", "shutdown_grace_s = 60"), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIALS}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'run.db'}", PORT=str(port), SANDBOX_PORT=str(sandbox_port),
               SANDBOX_LATENCY_MS="0", SANDBOX_CALLBACK_DELAY_S="0.1", APPROVALS_CONNECTORS=str(connectors))
    process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "run"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    engine_url = f"http://127.0.0.1:{port}/engine-rest"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (_up(engine_url + "/version") and
                                                   _up(f"http://127.0.0.1:{sandbox_port}/health")):
            assert process.poll() is None, "".join(lines)
            time.sleep(0.1)
        password = re.search(r"user 'admin', password '([^']+)'", "".join(lines)).group(1)
        admin = ("admin", password)
        deployed = requests.post(engine_url + "/deployment/create", auth=admin, timeout=10,
                                 data={"deployment-name": "run-test"},
                                 files={"f": (OPENING.name, OPENING.read_bytes())})
        assert deployed.status_code == 200, deployed.text

        def worked_through(business_key):
            case = requests.post(engine_url + "/process-definition/key/workers_opening/start", auth=admin,
                                 timeout=10, json={"businessKey": business_key, "variables": {
                                     "applicantName": {"value": "苏州某某科技有限公司", "type": "String"}}}).json()

            def state():
                return requests.get(f"{engine_url}/history/process-instance/{case['id']}", auth=admin,
                                    timeout=5).json()["state"]
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and state() != "COMPLETED":
                time.sleep(0.1)
            return state() == "COMPLETED"
        assert worked_through("SZ-RUN-1"), "".join(lines)
        assert "apr_" not in "".join(lines)                # the issued token is never printed

        # a second start on the same database whose port is taken fails, and leaves this one's workers working
        second = subprocess.run([sys.executable, str(ROOT / "app.py"), "run"], cwd=ROOT, capture_output=True,
                                text=True, timeout=60, env=dict(env, SANDBOX_PORT=str(free_port())))
        assert second.returncode == 1 and "Can't connect to" in second.stderr
        assert worked_through("SZ-RUN-2"), "".join(lines)

        started = children_of(process.pid)
        assert len(started) >= 3                            # gunicorn worker, sandbox, workers
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        reader.join(10)                                     # the children's last lines too
        output = "".join(lines)
        # every child stopped by itself (`run` killed none after its 15 s), and the workers saw the
        # SIGTERM and finished their shutdown (the server's own stop: tests/api/test_serving.py)
        assert "did not stop within" not in output, output
        assert re.search(r"SIGTERM: stopping \(up to 60 s.*worker \S+ stopped", output, re.S), output
        time.sleep(0.2)
        assert [pid for pid in started if alive(pid)] == []
        assert not _up(f"http://127.0.0.1:{sandbox_port}/health")
    finally:
        if process.poll() is None:
            process.kill()
        for pid in children_of(process.pid):
            os.kill(pid, signal.SIGKILL)


def _up(url: str) -> bool:
    try:
        requests.get(url, timeout=1)
        return True
    except requests.RequestException:
        return False


def test_children_get_the_engine_url_and_a_token_only_without_credentials():
    issued = []

    def token():
        issued.append(1)
        return "apr_issued"
    env = companions.child_environment({"SANDBOX_PORT": "9081"}, "0.0.0.0", 9080, token)
    assert env["APPROVALS_ENGINE_URL"] == "http://127.0.0.1:9080/engine-rest"
    assert env["SANDBOX_URL"] == "http://127.0.0.1:9081" and env["WORKER_TOKEN"] == "apr_issued"
    for configured in ({"ADMIN_PASSWORD": "a"}, {"WORKER_USER": "u", "WORKER_PASSWORD": "p"},
                       {"WORKER_TOKEN": "t"}):
        assert companions.child_environment(configured, "127.0.0.1", 8080, token).get("WORKER_TOKEN") == \
            configured.get("WORKER_TOKEN")
    assert len(issued) == 1


def _authenticated(engine, token):
    from engine import identity
    with engine.uow(write=False) as uow:
        return identity.authenticate_token(uow.session, token)


NOTHING_TO_START = {"APPROVALS_NO_SANDBOX": "1", "APPROVALS_NO_WORKERS": "1"}


def test_a_start_revokes_no_token_of_another_run_only_those_of_runs_on_this_machine_that_are_gone(engine):
    """A second `app.py run` on the same database (another port, another host) used to revoke
    the token of the one already serving, whose workers then met 401s for ever."""
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    crashed = subprocess.Popen([sys.executable, "-c", "pass"])
    crashed.wait()
    try:
        _, serving_here = companions.issue_service_token(engine, companions.run_label(running.pid))
        _, serving_elsewhere = companions.issue_service_token(engine, "approvals run on other-host pid 7 in pid:[1]")
        _, left_by_a_crash = companions.issue_service_token(engine, companions.run_label(crashed.pid))
        companions.start(companions.Companions(lambda: contextlib.nullcontext(engine)), "127.0.0.1", 8080,
                         env=NOTHING_TO_START)
        _, mine = companions.issue_service_token(engine)
        assert _authenticated(engine, serving_here) is not None
        assert _authenticated(engine, serving_elsewhere) is not None
        assert _authenticated(engine, left_by_a_crash) is None
        principal = _authenticated(engine, mine)
        assert principal.user_id == "approvals-worker" and principal.groups == {"external-workers"}
    finally:
        running.kill()
        running.wait()


def test_a_start_revokes_the_shared_token_of_versions_before_per_run_tokens_and_audits_it(engine, client, capsys):
    """Before each run had its own token, every start issued one labelled `approvals run:
    workers and sandbox` and a stop left it valid; no start after them revoked it."""
    from engine import identity
    with engine.uow() as uow:                           # what such a version left in the database
        identity.create_user(uow.session, "approvals-worker", None, actor="system")
        identity.add_member(uow.session, identity.WORKERS_GROUP, "approvals-worker", actor="system")
        legacy, legacy_token = identity.issue_token(uow.session, "approvals-worker", companions.LEGACY_LABEL,
                                                    actor="system")
        legacy_id = legacy.id
        _, admins_own = identity.issue_token(uow.session, "admin", companions.LEGACY_LABEL, actor="admin")
        uow.commit()
    _, elsewhere = companions.issue_service_token(engine, "approvals run on other-host pid 7 in pid:[1]")
    assert _authenticated(engine, legacy_token).user_id == "approvals-worker"

    run = companions.Companions(lambda: contextlib.nullcontext(engine))
    assert companions.start(run, "127.0.0.1", 8080, env=NOTHING_TO_START).processes == []
    assert _authenticated(engine, legacy_token) is None
    assert _authenticated(engine, elsewhere) is not None                # another server's workers
    assert _authenticated(engine, admins_own).user_id == "admin"        # the label alone is not enough
    assert f"revoked 1 token(s) of approvals-worker that no running server holds: {legacy_id}" \
        in capsys.readouterr().out
    revoked = client.get("/api/v1/audit/system-events", query_string={"kind": "TokenRevoked"}).get_json()
    assert [(e["actor"], e["data"]) for e in revoked] == [
        ("system", {"tokenId": legacy_id, "userId": "approvals-worker",
                    "reason": "issued by a version before per-run tokens"})]
    assert client.get("/api/v1/audit/verification").get_json()["valid"] is True
    companions.start(run, "127.0.0.1", 8080, env=NOTHING_TO_START)       # the next start: nothing more
    assert len(client.get("/api/v1/audit/system-events", query_string={"kind": "TokenRevoked"}).get_json()) == 1


def test_the_service_account_and_its_tokens_are_in_the_system_chain_and_a_clean_stop_revokes_the_token(
        engine, client):
    run = companions.Companions(lambda: contextlib.nullcontext(engine))
    token = run.issue_token()
    assert _authenticated(engine, token).user_id == "approvals-worker"
    run.stop()
    assert _authenticated(engine, token) is None
    run.issue_token()                                   # the next start: the account is there already
    events = [(e["kind"], e["actor"], e["data"]) for e in client.get("/api/v1/audit/system-events").get_json()
              if e["data"].get("userId") == "approvals-worker"]
    label = companions.run_label()
    assert events == [
        ("UserCreated", "system", {"userId": "approvals-worker"}),
        ("MembershipAdded", "system", {"groupId": "external-workers", "userId": "approvals-worker"}),
        ("TokenIssued", "system", {"tokenId": events[2][2]["tokenId"], "userId": "approvals-worker", "label": label}),
        ("TokenRevoked", "system", {"tokenId": events[2][2]["tokenId"], "userId": "approvals-worker"}),
        ("TokenIssued", "system", {"tokenId": run.token_id, "userId": "approvals-worker", "label": label})]
    assert client.get("/api/v1/audit/verification").get_json()["valid"] is True


def test_no_sandbox_and_no_workers_start_nothing(engine):
    run = companions.Companions(lambda: contextlib.nullcontext(engine))
    started = companions.start(run, "127.0.0.1", 8080, env={"APPROVALS_NO_SANDBOX": "1",
                                                            "APPROVALS_NO_WORKERS": "true"})
    assert started.processes == [] and started.token_id is None


def test_a_sandbox_port_another_program_holds_starts_neither_sandbox_nor_workers(engine, capsys):
    # the workers would have called that program as the departments' systems
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        port = holder.getsockname()[1]
        run = companions.Companions(lambda: contextlib.nullcontext(engine))
        started = companions.start(run, "127.0.0.1", 8080, env={"SANDBOX_PORT": str(port)})
        assert started.processes == [] and started.token_id is None
        assert f"the sandbox's port 127.0.0.1:{port} is taken by another program" in capsys.readouterr().err
    finally:
        holder.close()


def test_a_process_forked_from_run_leaves_its_companions_alone():
    """gunicorn's workers are forked from `run` and inherit its companions' process objects:
    finalizing one there must neither warn nor poll (a signal landing in that printed a
    traceback when `make run` was stopped with Ctrl-C)."""
    sleeper = companions.Companion([sys.executable, "-c", "import time; time.sleep(30)"])
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:                                        # the "worker"
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                sleeper.__del__()
            os.write(write_end, f"{len(caught)} {sleeper.returncode}".encode())
            os._exit(0)
        os.waitpid(pid, 0)
        assert os.read(read_end, 100) == b"0 None"
        assert sleeper.poll() is None                       # still running, still ours
    finally:
        os.close(read_end)
        os.close(write_end)
        sleeper.kill()
        sleeper.wait()
