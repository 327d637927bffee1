"""External-task throughput and long-poll wake-up latency against a real server.

    .venv/bin/python bench/bench_external_tasks.py [--tasks 400] [--waiters 50] [--wakeups 100]

Starts the server as `make run` does (gunicorn, api/serving.py's request pool) on a fresh SQLite file (or
DATABASE_URL), then measures:

1. completions/s with 1, 4 and 16 worker threads (fetchAndLock maxTasks=1 -> complete),
   and the fetch-to-complete latency p50/p99 of one task;
2. long-poll wake-up latency with `--waiters` workers waiting (asyncResponseTimeout 30 s):
   a case is started, its external task is delivered to one waiting worker; the time from
   the start request to the delivery, p50/p99 (goal: p99 under 100 ms);
3. while they wait: GET /version latency (the API must stay responsive), with the
   server's default 32 threads and with 64.

Not a test: prints a table.  Each waiting worker holds one server thread (no database
connection); a process lets at most APPROVALS_THREADS - 8 wait (see README).
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ADMIN = ("admin", "bench-secret")
WORKER = ("bench_worker", "bench-pw")
BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Defs_bench" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="bench_{topic}" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:serviceTask id="Task_call" camunda:type="external" camunda:topic="{topic}">
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing></bpmn:serviceTask>
    <bpmn:endEvent id="EndEvent_1"><bpmn:incoming>F2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="StartEvent_1" targetRef="Task_call" />
    <bpmn:sequenceFlow id="F2" sourceRef="Task_call" targetRef="EndEvent_1" />
  </bpmn:process>
</bpmn:definitions>
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list, share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))] if ordered else float("nan")


@contextmanager
def server(threads: int, database_url: str | None):
    from engine.config import Settings
    from engine.context import Engine
    from engine.db import migrate
    from app import ensure_admin
    folder = tempfile.mkdtemp(prefix="bench-et-")
    url = database_url or f"sqlite:///{folder}/bench.db"
    migrate(url)
    engine = Engine(Settings(database_url=url, admin_password=ADMIN[1]))
    ensure_admin(engine)
    engine.close()
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "PORT": str(port), "ADMIN_PASSWORD": ADMIN[1],
           "APPROVALS_THREADS": str(threads), "WEB_CONCURRENCY": "1"}
    log = open(Path(folder) / "server.log", "wb")          # a pipe nobody reads would block the server
    process = subprocess.Popen([sys.executable, "app.py", "serve"], cwd=ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/engine-rest"
    try:
        for _ in range(200):
            try:
                if requests.get(f"{base}/version", auth=ADMIN, timeout=1).ok:
                    break
            except requests.RequestException:           # not listening yet, or still starting
                time.sleep(0.1)
        else:
            raise RuntimeError("the server did not start: " + (Path(folder) / "server.log").read_text()[-2000:])
        setup(base)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def setup(base: str) -> None:
    admin = requests.Session()
    admin.auth = ADMIN
    files = {f"{t}.bpmn": (f"{t}.bpmn", BPMN.format(topic=t).encode()) for t in ("bench", "wake")}
    assert admin.post(f"{base}/deployment/create", files=files, data={"deployment-name": "bench"}).ok
    if not admin.get(f"{base}/group", params={"id": "external-workers"}).json():
        admin.post(f"{base}/group/create", json={"id": "external-workers", "name": "workers"})
    admin.post(f"{base}/user/create", json={"profile": {"id": WORKER[0]}, "credentials": {"password": WORKER[1]}})
    admin.put(f"{base}/group/external-workers/members/{WORKER[0]}")


def start_cases(base: str, key: str, count: int) -> None:
    admin = requests.Session()
    admin.auth = ADMIN
    for _ in range(count):
        assert admin.post(f"{base}/process-definition/key/{key}/start", json={}).ok


def fetch(session, base, worker_id, topic, timeout_ms=None):
    body = {"workerId": worker_id, "maxTasks": 1, "topics": [{"topicName": topic, "lockDuration": 60_000}]}
    if timeout_ms:
        body["asyncResponseTimeout"] = timeout_ms
    response = session.post(f"{base}/external-task/fetchAndLock", json=body, timeout=(timeout_ms or 0) / 1000 + 30)
    response.raise_for_status()
    return response.json()


def throughput(base: str, threads: int, tasks: int) -> tuple[float, list]:
    start_cases(base, "bench_bench", tasks)
    latencies, lock = [], threading.Lock()

    def work(n):
        session = requests.Session()
        session.auth = WORKER
        while True:
            began = time.perf_counter()
            locked = fetch(session, base, f"w{n}", "bench")
            if not locked:
                return
            done = session.post(f"{base}/external-task/{locked[0]['id']}/complete", json={"workerId": f"w{n}"})
            done.raise_for_status()
            with lock:
                latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return len(latencies) / (time.perf_counter() - began), latencies


def wakeups(base: str, waiters: int, count: int) -> tuple[list, list]:
    """Latency from a start request to the delivery of its task to a waiting worker."""
    delivered: dict = {}
    stop = threading.Event()
    lock = threading.Lock()

    def wait(n):
        session = requests.Session()
        session.auth = WORKER
        while not stop.is_set():
            try:
                tasks = fetch(session, base, f"waiter{n}", "wake", timeout_ms=30_000)
            except requests.RequestException:
                return                                  # the server is stopping
            for task in tasks:
                with lock:
                    delivered[task["processInstanceId"]] = time.perf_counter()
                session.post(f"{base}/external-task/{task['id']}/complete", json={"workerId": f"waiter{n}"})

    pool = [threading.Thread(target=wait, args=(n,), daemon=True) for n in range(waiters)]
    for t in pool:
        t.start()
    time.sleep(2.0)                                   # everyone is waiting now
    admin = requests.Session()
    admin.auth = ADMIN
    api, latencies = [], []
    for _ in range(count):
        probe = time.perf_counter()
        assert admin.get(f"{base}/version").ok
        api.append(time.perf_counter() - probe)
        sent = time.perf_counter()
        instance = admin.post(f"{base}/process-definition/key/bench_wake/start", json={}).json()["id"]
        deadline = time.perf_counter() + 10
        while instance not in delivered and time.perf_counter() < deadline:
            time.sleep(0.001)
        latencies.append(delivered.get(instance, float("inf")) - sent)
        time.sleep(0.05)
    stop.set()
    return latencies, api


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=400, help="tasks per throughput run")
    parser.add_argument("--waiters", type=int, default=50)
    parser.add_argument("--wakeups", type=int, default=100)
    args = parser.parse_args()
    database_url = os.environ.get("DATABASE_URL")
    print(f"database: {database_url or 'SQLite (temporary file)'}; server: gunicorn with the request pool, 1 process")
    with server(32, database_url) as base:
        print("\nworker threads | completions/s | fetch->complete p50 | p99")
        for threads in (1, 4, 16):
            rate, latencies = throughput(base, threads, args.tasks)
            print(f"{threads:>14} | {rate:>13.1f} | {percentile(latencies, .5) * 1000:>16.1f} ms | "
                  f"{percentile(latencies, .99) * 1000:.1f} ms")
    print(f"\n{args.waiters} workers long-polling; {args.wakeups} cases started one by one")
    print("server threads | wake-up p50 | wake-up p99 | GET /version p50 | p99")
    for threads in (64, 32):
        with server(threads, database_url) as base:
            latencies, api = wakeups(base, args.waiters, args.wakeups)
            print(f"{threads:>14} | {percentile(latencies, .5) * 1000:>8.1f} ms | "
                  f"{percentile(latencies, .99) * 1000:>8.1f} ms | {percentile(api, .5) * 1000:>13.1f} ms | "
                  f"{percentile(api, .99) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
