"""The server loop: gunicorn's stock threaded worker (gthread, a thread per request)
against the request pool of api/serving.py (one runner on SQLite), side by side.

Two servers on fresh SQLite files, the same five-department reviews, HTTP Basic over
keep-alive, rounds alternating between the two and between 1, 4 and 16 client threads.
Per completion: the server's CPU and the context switches of all its threads (from
/proc/<pid>/task/*/status), which is where threads taking turns under the GIL show.

Run: .venv/bin/python bench/bench_server_loop.py [--quick]
"""
from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_http  # noqa: E402
import harness  # noqa: E402
import workload  # noqa: E402

LOOPS = {"gunicorn gthread (a thread per request)": "gthread",
         "request pool (api/serving.py, the default)": "api.serving.Worker"}


def run(quick: bool, pg_url: str | None) -> list[harness.Table]:
    rounds, cases = (3, 30) if quick else (5, 60)
    threads_list = (1, 4, 16)
    with ExitStack() as stack:
        stores = []
        for label in LOOPS:
            url = stack.enter_context(harness.fresh_database("sqlite"))
            workload.prepare_database(url, forms=False)
            stores.append((label, url))
        data = bench_http.measure(stores, threads_list, rounds, cases,
                                  env={label: {"APPROVALS_WORKER_CLASS": worker_class}
                                       for label, worker_class in LOOPS.items()})
    table = harness.Table("Server loop: gunicorn's gthread against the request pool (SQLite, one process)",
                          ["server loop", "client threads", "completions/s", "complete p50 ms", "complete p99 ms",
                           "server CPU ms per completion", "context switches per completion"])
    for threads in threads_list:
        for label in LOOPS:
            c = data["results"][(label, threads)]["completions"]
            table.rows.append([label, threads, c["rate"], c["p50"], c["p99"], c["cpu_ms"], c["switches"]])
            table.metrics[(label, threads)] = c["rate"]
    table.notes.append(f"Median of {rounds} alternating rounds of {cases} cases ({cases * 5} completions) per row. "
                       "Server CPU: while the completions ran.  Context switches: the whole round (the case "
                       "starts and the task listing too), divided by the completions.")
    return [table]


if __name__ == "__main__":
    harness.main(__doc__, run, pg=None)
