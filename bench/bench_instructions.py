"""Instructions per completion, counted by valgrind: the layers of bench_overhead.py on a
measure that the host's noise does not move.

The other benches time CPU, which on this shared machine moves by up to 2x from one run
to the next.  `valgrind --tool=callgrind` counts the instructions a process executes in
user space (Python, SQLite, libc), the same count for the same code and inputs whatever
else the machine is doing.  It does not count the kernel's work (SQLite's reads, writes
and locks are system calls: bench/TUNING.md puts them at ~130 a completion) nor the time
an instruction waits for memory, so it says how much code a layer runs, not how long it
takes; comparing it with the CPU time of bench_overhead.py tells the two apart.

Each layer runs twice under valgrind, starting the same cases and then either completing
their five tasks or not; the difference, divided by the completions, is a completion's
count (the setup, the start of the cases and the warm-up cancel out):

  bare SpiffWorkflow   the review in memory, as bench_overhead.Bare
  service layer        engine.tasks.complete on SQLite, as bench_overhead.Service
  HTTP, in process     POST /engine-rest/task/{id}/complete through Flask's test client
                       (the engine's app with HTTP Basic, no gunicorn and no socket)

Run: .venv/bin/python bench/bench_instructions.py [--quick]   (needs valgrind; two runs at a
time; --quick, 10 cases a layer, took 19 min on a host busy with other work, the default
20 cases longer; not part of `make bench`)
"""
from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import harness  # noqa: E402
import workload  # noqa: E402

LAYERS = ("bare", "service", "http")
TITLES = {"bare": "bare SpiffWorkflow, in memory", "service": "engine service layer, SQLite",
          "http": "HTTP API in process (Flask test client), SQLite"}


# --- what runs under valgrind -------------------------------------------------------------

def _bare():
    from SpiffWorkflow.bpmn import BpmnWorkflow
    from SpiffWorkflow.util.task import TaskState
    from bench_overhead import Bare
    bare = Bare()

    def go(cases: int, complete: bool) -> None:
        workflows = []
        for _ in range(cases):
            workflow = BpmnWorkflow(bare.spec, bare.subprocess_specs, script_engine=bare.script_engine)
            workflow.do_engine_steps()
            workflows.append(workflow)
        if not complete:
            return
        ready = [w.get_tasks(state=TaskState.READY, manual=True) for w in workflows]
        for k in range(len(workload.DEPARTMENTS)):
            for workflow, tasks in zip(workflows, ready):
                task = tasks[k]
                task.data.update(workload.decision(workload.dept_of(task.task_spec.bpmn_id)))
                task.run()
                workflow.do_engine_steps()
    return go


def _service(url: str):
    from bench_overhead import Service
    from engine import instances, tasks
    from engine.identity import SYSTEM
    service = Service(url)

    def go(cases: int, complete: bool) -> None:
        ids = []
        for n in range(cases):
            with service.engine.uow() as uow:
                record, _ = instances.start(uow, SYSTEM, {}, f"I-{n}", key=workload.REVIEW_KEY)
            ids.append(record.id)
        if not complete:
            return
        with service.engine.uow(write=False) as uow:
            per_case = [[(v.row.id, workload.dept_of(v.row.task_definition_key))
                         for v in tasks.query(uow.session, SYSTEM, tasks.TaskQuery(process_instance_id=i))]
                        for i in ids]
        for k in range(len(workload.DEPARTMENTS)):
            for case in per_case:
                task_id, dept = case[k]
                with service.engine.uow() as uow:
                    tasks.complete(uow, service.officers[dept], task_id, workload.decision(dept))
    return go


def _http(url: str):
    from app import create_app
    from engine.config import Settings
    from engine.context import Engine
    settings = Settings(database_url=url, admin_password=workload.ADMIN_PASSWORD, timers_enabled=False)
    client = create_app(settings, Engine(settings)).test_client()

    def basic(user: str, password: str) -> dict:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    admin = basic("admin", workload.ADMIN_PASSWORD)
    officers = {d: basic(f"{d}1", workload.PASSWORD) for d in workload.DEPARTMENTS}

    def go(cases: int, complete: bool) -> None:
        ids = []
        for n in range(cases):
            answer = client.post(f"/engine-rest/process-definition/key/{workload.REVIEW_KEY}/start",
                                 json={"businessKey": f"I-{n}"}, headers=admin)
            assert answer.status_code == 200, answer.data
            ids.append(answer.get_json()["id"])
        if not complete:
            return
        per_case = [[(t["id"], workload.dept_of(t["taskDefinitionKey"]))
                     for t in client.get(f"/engine-rest/task?processInstanceId={i}", headers=admin).get_json()]
                    for i in ids]
        for k in range(len(workload.DEPARTMENTS)):
            for case in per_case:
                task_id, dept = case[k]
                body = {"variables": {name: {"value": value} for name, value in workload.decision(dept).items()}}
                answer = client.post(f"/engine-rest/task/{task_id}/complete", json=body, headers=officers[dept])
                assert answer.status_code == 204, answer.data
    return go


def child(layer: str, cases: int, complete: bool) -> None:
    """The process valgrind runs: set up, warm up, then start `cases` cases (and complete them)."""
    from app import tune_gc
    if layer == "bare":
        go = _bare()
    else:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='bench-instr-')}/bench.db"
        workload.prepare_database(url, forms=False)
        go = _service(url) if layer == "service" else _http(url)
    tune_gc()
    go(10, True)                # warm-up: the specs, statements and caches a first command builds
    go(cases, complete)


# --- the parent: valgrind, the differences, the table -------------------------------------

def _count(layer: str, cases: int, complete: bool) -> int:
    """User-space instructions of one child run under callgrind."""
    with tempfile.TemporaryDirectory() as scratch:
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={scratch}/out",
                   sys.executable, __file__, "--child", layer, str(cases), "1" if complete else "0"]
        env = dict(os.environ, PYTHONHASHSEED="0")
        done = subprocess.run(command, capture_output=True, text=True, env=env)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"valgrind run of {layer} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(found.group(1))


def run(quick: bool, pg_url: str | None = None) -> list[harness.Table]:
    if not shutil.which("valgrind"):
        print("bench_instructions: valgrind not found (apt install valgrind); skipped", flush=True)
        return []
    cases = 10 if quick else 20
    completions = cases * len(workload.DEPARTMENTS)
    jobs = [(layer, complete) for layer in LAYERS for complete in (False, True)]
    with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        counts = dict(zip(jobs, pool.map(lambda job: _count(job[0], cases, job[1]), jobs)))
    per = {layer: (counts[(layer, True)] - counts[(layer, False)]) / completions for layer in LAYERS}
    table = harness.Table(
        f"Instructions per completion, counted by valgrind ({completions} completions a layer)",
        ["layer", "instructions per completion (millions)", "share of bare SpiffWorkflow"])
    for layer in LAYERS:
        table.rows.append([TITLES[layer], per[layer] / 1e6, f"{100 * per['bare'] / per[layer]:.1f} %"])
    table.notes.append(f"{harness.machine()}; valgrind counts user space only (no system calls, no "
                       "waiting for memory): compare with bench_overhead.py's CPU per completion.")
    return [table]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1")
    else:
        harness.main(__doc__, run, pg=None)
