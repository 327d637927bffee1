"""The worker runtime against the real server: external tasks completed per second with 1, 4
and 16 handler threads, fetch-to-complete latency p50/p99, and long-poll wake-up latency
(a case started while the worker waits -> its handler runs).

Each store gets a fresh database and `python app.py serve` (gunicorn); the worker is
`workers.Worker` in this process with a no-op handler, so the figures are the engine's
external-task path plus the runtime's overhead, not a department system's.

Run: .venv/bin/python bench/bench_workers.py [--quick] [--pg URL | --no-pg]
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_http  # noqa: E402
import harness  # noqa: E402
import workload  # noqa: E402

from workers import EngineClient, Worker  # noqa: E402

REST = "/engine-rest"
KEY, TOPIC = "bench_external", "bench.noop"
MODEL = (f'<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
         f'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Defs_bench_ext" targetNamespace="http://bench">\n'
         f'<bpmn:process id="{KEY}" isExecutable="true">\n'
         '<bpmn:startEvent id="S"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>\n'
         f'<bpmn:serviceTask id="T" camunda:type="external" camunda:topic="{TOPIC}"><bpmn:incoming>F1</bpmn:incoming>'
         '<bpmn:outgoing>F2</bpmn:outgoing></bpmn:serviceTask>\n'
         '<bpmn:endEvent id="E"><bpmn:incoming>F2</bpmn:incoming></bpmn:endEvent>\n'
         '<bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="T" /><bpmn:sequenceFlow id="F2" sourceRef="T" targetRef="E" />\n'
         '</bpmn:process>\n</bpmn:definitions>\n')


class TimedClient(EngineClient):
    """Records when each task arrived with a fetch and how long until its completion was accepted."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        self.fetched: dict[str, float] = {}
        self.latencies: list[float] = []
        self.lock = threading.Lock()
        self.done = threading.Condition(self.lock)

    def fetch_and_lock(self, body):
        tasks = super().fetch_and_lock(body)
        now = time.perf_counter()
        with self.lock:
            for task in tasks:
                self.fetched[task["id"]] = now
        return tasks

    def complete(self, task_id, *args, **kw):
        super().complete(task_id, *args, **kw)
        with self.done:
            self.latencies.append(time.perf_counter() - self.fetched.pop(task_id))
            self.done.notify_all()


def deploy(server: harness.Server) -> None:
    import io

    import requests
    r = requests.post(f"http://127.0.0.1:{server.port}{REST}/deployment/create", auth=("admin", workload.ADMIN_PASSWORD),
                      data={"deployment-name": "bench-workers"}, files={"m": ("bench_external.bpmn", io.BytesIO(MODEL.encode()))},
                      timeout=60)
    r.raise_for_status()


def throughput_round(server: harness.Server, threads: int, tasks: int) -> harness.Round:
    """`tasks` waiting external tasks, then a worker with `threads` handler threads drains them."""
    bench_http.start_cases(server, KEY, tasks, 4)
    client = TimedClient(f"http://127.0.0.1:{server.port}{REST}", ("admin", workload.ADMIN_PASSWORD))
    worker = Worker(client.base_url, worker_id=f"bench-{threads}", max_tasks=threads, threads=threads,
                    async_response_timeout=1000, client=client)
    worker.subscribe(TOPIC, variables=[], handler=lambda task: {"done": True})
    t0 = time.perf_counter()
    worker.start()
    with client.done:
        client.done.wait_for(lambda: len(client.latencies) >= tasks, timeout=600)
    elapsed = time.perf_counter() - t0
    worker.stop(timeout=10)
    return harness.Round(len(client.latencies), elapsed, client.latencies)


def wakeup_round(server: harness.Server, samples: int) -> harness.Round:
    """One idle, long-polling worker; a case every 100 ms; start request sent -> handler runs."""
    delivered: dict[str, float] = {}
    arrived = threading.Condition()

    def handler(task):
        with arrived:
            delivered[task.business_key] = time.perf_counter()
            arrived.notify_all()
        return {}

    worker = Worker(f"http://127.0.0.1:{server.port}{REST}", ("admin", workload.ADMIN_PASSWORD),
                    worker_id="bench-wakeup", max_tasks=1, async_response_timeout=30_000)
    worker.subscribe(TOPIC, variables=[], handler=handler)
    worker.start()
    admin = server.client("admin", workload.ADMIN_PASSWORD)
    latencies = []
    try:
        time.sleep(0.5)                                   # the worker is waiting in its long poll
        for n in range(samples):
            key = f"WAKE-{time.monotonic_ns()}-{n}"
            sent = time.perf_counter()
            admin.call("POST", f"{REST}/process-definition/key/{KEY}/start", {"businessKey": key, "variables": {}})
            with arrived:
                arrived.wait_for(lambda: key in delivered, timeout=10)
            latencies.append(delivered[key] - sent)
            time.sleep(0.1)
    finally:
        admin.close()
        worker.stop(timeout=10)
    return harness.Round(len(latencies), sum(latencies), latencies)


def run(quick: bool, pg_url: str | None) -> list[harness.Table]:
    threads_list = (1, 4, 16)
    rounds, tasks, samples = (2, 100, 20) if quick else (3, 300, 50)
    kinds = [("SQLite", "sqlite")] + ([("PostgreSQL", "pg")] if pg_url else [])
    throughput = harness.Table("Worker runtime: external tasks completed per second (no-op handler, real server)",
                               ["store", "handler threads", "tasks/s", "fetch→complete p50 ms",
                                "fetch→complete p99 ms"])
    wakeup = harness.Table("Long-poll wake-up: case started → handler runs (one idle worker)",
                           ["store", "p50 ms", "p99 ms", "samples"])
    from contextlib import ExitStack
    for label, kind in kinds:
        with ExitStack() as stack:
            url = stack.enter_context(harness.fresh_database(kind, pg_url))
            workload.prepare_database(url, forms=False)
            server = stack.enter_context(harness.Server(url, label=label))
            deploy(server)
            throughput_round(server, 4, 20)                   # warm up
            collected = {t: [] for t in threads_list}
            for _ in range(rounds):
                for threads in threads_list:
                    collected[threads].append(throughput_round(server, threads, tasks))
            for threads in threads_list:
                s = harness.summarize(collected[threads])
                throughput.rows.append([label, threads, s["rate"], s["p50"], s["p99"]])
            w = harness.summarize([wakeup_round(server, samples)])
            wakeup.rows.append([label, w["p50"], w["p99"], samples])
    throughput.notes.append(f"Median of {rounds} rounds of {tasks} waiting tasks per cell; the worker holds as many "
                            "tasks as it has threads (maxTasks = threads); gunicorn defaults (SQLite 1 worker, "
                            "PostgreSQL 2).  fetch→complete: the fetch returned → the engine accepted the completion.")
    wakeup.notes.append("Includes the start command itself (the task exists once it commits); a case every 100 ms.")
    return [throughput, wakeup]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pg", default=harness.DEFAULT_PG)
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    pg = None if args.no_pg or harness.pg_reachable(args.pg) else args.pg
    print(harness.machine(), flush=True)
    for table in run(args.quick, pg):
        print(table.render(), flush=True)


if __name__ == "__main__":
    main()
