"""The HTTP API under load: process instances/s and task completions/s with 1, 4 and 16
client threads, p50/p99 latency, on SQLite and on PostgreSQL side by side, and the
server's peak memory.

Each store gets a fresh database and a real server (`python app.py serve`, gunicorn,
default workers: 1 on SQLite, 2 on PostgreSQL).  A round starts `cases` five-department
reviews, then the departments complete all five tasks of every case (each officer with
their own keep-alive connection and HTTP Basic, tasks of one case spread apart as
departments work in parallel).  Rounds alternate between stores and thread counts.

Run: .venv/bin/python bench/bench_http.py [--quick] [--pg URL | --no-pg]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
import workload  # noqa: E402

REST = "/engine-rest"
SQLITE_2 = "SQLite, 2 server processes"


def typed(values: dict) -> dict:
    return {k: {"value": v, "type": "String"} for k, v in values.items()}


def start_cases(server: harness.Server, key: str, count: int, threads: int) -> tuple[harness.Round, list[str]]:
    ids: list[str] = []

    def start(state, n):
        client = state.get("admin") or state.setdefault("admin", server.client("admin", workload.ADMIN_PASSWORD))
        case = client.call("POST", f"{REST}/process-definition/key/{key}/start",
                           {"businessKey": f"BENCH-{n}", "variables": {}})
        ids.append(case["id"])

    return harness.run_threads(threads, list(range(count)), start), ids


def open_tasks(server: harness.Server, instance_ids: list[str]) -> list[tuple[str, str]]:
    """(task id, department) of every open task of these cases, the first task of every
    case, then every case's second, ... (departments work on different cases at once)."""
    wanted, per_case = set(instance_ids), {}
    admin = server.client("admin", workload.ADMIN_PASSWORD)
    first = 0
    while True:
        page = admin.call("GET", f"{REST}/task?sortBy=created&sortOrder=asc&firstResult={first}&maxResults=2000")
        for task in page:
            if task["processInstanceId"] in wanted:
                per_case.setdefault(task["processInstanceId"], []).append(
                    (task["id"], workload.dept_of(task["taskDefinitionKey"])))
        if len(page) < 2000:
            break
        first += 2000
    admin.close()
    lists = [per_case.get(i, []) for i in instance_ids]
    return [lst[k] for k in range(max(map(len, lists), default=0)) for lst in lists if k < len(lst)]


def complete_tasks(server: harness.Server, tasks: list[tuple[str, str]], threads: int,
                   forms: bool = False) -> harness.Round:
    def complete(state, item):
        task_id, dept = item
        client = state.get(dept) or state.setdefault(dept, server.client(f"{dept}1", workload.PASSWORD))
        values = workload.FORM_DECISION if forms else workload.decision(dept)
        client.call("POST", f"{REST}/task/{task_id}/complete", {"variables": typed(values)})

    return harness.run_threads(threads, tasks, complete)


def http_round(server: harness.Server, cases: int, threads: int, key: str = workload.REVIEW_KEY,
               forms: bool = False) -> tuple[harness.Round, harness.Round]:
    """(starts, completions) of one round; the completions carry the CPU that the server,
    PostgreSQL (when local) and this client spent while they ran, and the server's
    context switches over the whole round."""
    switches = server.context_switches()
    starts, ids = start_cases(server, key, cases, threads)
    order = open_tasks(server, ids)
    cpu, pg_cpu, client_cpu = server.cpu_seconds(), harness.postgres_cpu_seconds(), harness.client_cpu_seconds()
    completions = complete_tasks(server, order, threads, forms)
    completions.cpu = server.cpu_seconds() - cpu
    completions.client_cpu = harness.client_cpu_seconds() - client_cpu
    if pg_cpu is not None and "postgresql" in server.database_url:
        completions.pg_cpu = harness.postgres_cpu_seconds() - pg_cpu
    completions.switches = server.context_switches() - switches
    return starts, completions


def measure(stores: list[tuple[str, str]], threads_list=(1, 4, 16), rounds: int = 3, cases: int = 60,
            workers: dict | None = None, env: dict | None = None) -> dict:
    """stores: (label, database url) already prepared; workers, env: per label, the
    server's gunicorn workers and environment.  Returns results keyed by
    (label, threads) -> {"starts": summary, "completions": summary}, and memory per label."""
    servers = {label: harness.Server(url, (workers or {}).get(label), label, env=(env or {}).get(label))
               for label, url in stores}
    results: dict = {}
    memory: dict = {}
    try:
        for server in servers.values():
            server.__enter__()
        for label, server in servers.items():            # warm up: specs parsed, connections open
            http_round(server, 10, 4)
        collected = {(label, t): ([], []) for label in servers for t in threads_list}
        for _ in range(rounds):
            for threads in threads_list:
                for label, server in servers.items():
                    starts, completions = http_round(server, cases, threads)
                    collected[(label, threads)][0].append(starts)
                    collected[(label, threads)][1].append(completions)
        for key, (starts, completions) in collected.items():
            results[key] = {"starts": harness.summarize(starts), "completions": harness.summarize(completions)}
        for label, server in servers.items():
            memory[label] = server.memory()
    finally:
        for server in servers.values():
            server.__exit__(None, None, None)
    return {"results": results, "memory": memory}


def tables(data: dict, stores: list[str], threads_list, cases: int, rounds: int) -> list[harness.Table]:
    table = harness.Table(
        "HTTP API: throughput and latency (five-department review, real gunicorn server)",
        ["store", "client threads", "instances/s", "start p50 ms", "start p99 ms",
         "completions/s", "complete p50 ms", "complete p99 ms", "server CPU ms per completion"])
    for label in stores:
        for threads in threads_list:
            r = data["results"][(label, threads)]
            s, c = r["starts"], r["completions"]
            table.rows.append([label, threads, s["rate"], s["p50"], s["p99"], c["rate"], c["p50"], c["p99"],
                               c["cpu_ms"]])
            table.metrics[(label, threads)] = c["rate"]
    table.notes.append(f"Median of {rounds} interleaved rounds of {cases} cases ({cases * 5} completions) per cell; "
                       "server workers: SQLite 1, PostgreSQL 2 (the defaults), and SQLite with WEB_CONCURRENCY=2.")
    mem = harness.Table("Server memory under this load", ["store", "worker processes", "peak RSS per worker MB",
                                                          "peak RSS all processes MB"])
    for label in stores:
        m = data["memory"][label]
        mem.rows.append([label, m["workers"], m["worker_peak"], m["total_peak"]])
        mem.metrics[label] = m["worker_peak"]
    mem.notes.append("VmHWM of each gunicorn process after all rounds (the master forks the workers).")
    return [table, mem]


def run(quick: bool, pg_url: str | None) -> list[harness.Table]:
    threads_list = (1, 4, 16)
    rounds, cases = (3, 40) if quick else (5, 100)
    # (label, store, gunicorn workers): the defaults, and SQLite with WEB_CONCURRENCY=2
    # (the processes queue for SQLite's single writer, engine/db.py WriterQueue)
    kinds = [("SQLite", "sqlite", None), (SQLITE_2, "sqlite", 2)] + ([("PostgreSQL", "pg", None)] if pg_url else [])
    from contextlib import ExitStack
    with ExitStack() as stack:
        stores = []
        for label, kind, _ in kinds:
            url = stack.enter_context(harness.fresh_database(kind, pg_url))
            workload.prepare_database(url, forms=False)
            stores.append((label, url))
        data = measure(stores, threads_list, rounds, cases, workers={label: w for label, _, w in kinds if w})
    return tables(data, [label for label, _, _ in kinds], threads_list, cases, rounds)


if __name__ == "__main__":
    harness.main(__doc__, run, pg="optional")
