"""POST /engine-rest/signal to many waiting cases: how long one broadcast takes as the
number of cases waiting for it grows, and what other writers wait meanwhile.

A broadcast is one transaction that locks every receiving case (in the order of their
ids) and moves each one on, so it grows with the cases it reaches, and on SQLite, where
one writing unit of work runs at a time, every other command waits for it.  Each round
starts `size` new cases waiting at an intermediate signal catch, then sends the signal
while another client keeps starting cases of an unrelated process; the table gives the
broadcast's time, its time and the server's CPU per case reached, and the longest those
unrelated starts waited during it.  Every round checks that each waiting case moved on.

Run: .venv/bin/python bench/bench_signals.py [--quick] [--pg URL | --no-pg]
"""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_http  # noqa: E402
import harness  # noqa: E402
import workload  # noqa: E402

REST = "/engine-rest"
KEY, SIGNAL = "bench_signal", "PolicyChanged"
MODEL = (f'<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
         f'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Defs_bench_signal" targetNamespace="http://bench">\n'
         f'<bpmn:process id="{KEY}" isExecutable="true">\n'
         '<bpmn:startEvent id="S" />\n'
         '<bpmn:intermediateCatchEvent id="Catch"><bpmn:signalEventDefinition signalRef="Sig" /></bpmn:intermediateCatchEvent>\n'
         '<bpmn:userTask id="T" camunda:candidateGroups="fgw" />\n'
         '<bpmn:endEvent id="E" />\n'
         '<bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Catch" /><bpmn:sequenceFlow id="F2" sourceRef="Catch" targetRef="T" />\n'
         '<bpmn:sequenceFlow id="F3" sourceRef="T" targetRef="E" />\n'
         f'</bpmn:process>\n<bpmn:signal id="Sig" name="{SIGNAL}" />\n</bpmn:definitions>\n')


def broadcast_round(server: harness.Server, size: int, beside_writer: bool) -> dict:
    """`size` cases waiting, then the signal; `beside_writer`: while an unrelated client
    keeps starting cases (the broadcast's time and CPU are then not its own)."""
    bench_http.start_cases(server, KEY, size, 4)
    admin = server.client("admin", workload.ADMIN_PASSWORD)
    before = admin.call("GET", f"{REST}/task/count?processDefinitionKey={KEY}")["count"]
    stop, waits = threading.Event(), []

    def unrelated():
        other = server.client("admin", workload.ADMIN_PASSWORD)
        while not stop.is_set():
            t0 = time.perf_counter()
            other.call("POST", f"{REST}/process-definition/key/{workload.REVIEW_KEY}/start", {"variables": {}})
            waits.append((t0, time.perf_counter()))
        other.close()

    side = threading.Thread(target=unrelated)
    if beside_writer:
        side.start()
        time.sleep(0.2)                               # the unrelated client is under way
    cpu0 = server.cpu_seconds()
    t0 = time.perf_counter()
    admin.call("POST", f"{REST}/signal", {"name": SIGNAL})
    t1 = time.perf_counter()
    cpu = server.cpu_seconds() - cpu0
    if beside_writer:
        time.sleep(0.2)
        stop.set()
        side.join()
    moved = admin.call("GET", f"{REST}/task/count?processDefinitionKey={KEY}")["count"] - before
    admin.close()
    if moved != size:
        raise RuntimeError(f"the signal moved {moved} of {size} waiting cases on")
    during = [end - begin for begin, end in waits if begin < t1 and end > t0]
    return {"ms": (t1 - t0) * 1000, "cpu_per_case": cpu * 1000 / size,
            "other_max": max(during, default=0.0) * 1000}


def run(quick: bool, pg_url: str | None) -> list[harness.Table]:
    sizes, rounds = ((10, 100, 300), 3) if quick else ((10, 100, 1000), 3)
    kinds = [("SQLite", "sqlite")] + ([("PostgreSQL", "pg")] if pg_url else [])
    table = harness.Table("POST /signal to the cases waiting for it (one broadcast, one transaction)",
                          ["store", "cases waiting", "broadcast ms", "ms per case", "server CPU ms per case",
                           "broadcast ms beside a writer", "the writer's longest start meanwhile, ms"])
    from contextlib import ExitStack
    for label, kind in kinds:
        with ExitStack() as stack:
            url = stack.enter_context(harness.fresh_database(kind, pg_url))
            workload.prepare_database(url, forms=False, extra={"bench_signal.bpmn": MODEL})
            server = stack.enter_context(harness.Server(url, label=label))
            broadcast_round(server, 10, True)                 # warm up
            for size in sizes:
                alone, beside = [], []
                for _ in range(rounds):
                    alone.append(broadcast_round(server, size, False))
                    beside.append(broadcast_round(server, size, True))
                ms = harness.median([r["ms"] for r in alone])
                table.rows.append([label, size, ms, ms / size, harness.median([r["cpu_per_case"] for r in alone]),
                                   harness.median([r["ms"] for r in beside]),
                                   harness.median([r["other_max"] for r in beside])])
    table.notes.append(f"Median of {rounds} rounds per row, alternating a broadcast alone and one beside a writer; "
                       "each starts its own waiting cases first.  The writer is a client starting cases of the "
                       "five-department review in a loop, from 0.2 s before the broadcast to 0.2 s after it; the "
                       "last column is the longest of its starts that overlapped the broadcast.  gunicorn defaults "
                       "(SQLite 1 worker, PostgreSQL 2).")
    return [table]


if __name__ == "__main__":
    print(harness.machine(), flush=True)
    harness.main(__doc__, run)
