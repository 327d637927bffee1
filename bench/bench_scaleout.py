"""Scale-out on PostgreSQL: one vs two server processes (gunicorn workers) under the
same load (16 client threads starting and completing five-department reviews).

Both servers run at once on one fresh schema each and take turns, round by round.
On a 2-core machine the client, PostgreSQL and the server share the cores, so the
ceiling is below 2x whatever the server does.

Run: .venv/bin/python bench/bench_scaleout.py [--quick] [--pg URL]
"""
from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_http  # noqa: E402
import harness  # noqa: E402
import workload  # noqa: E402

THREADS = 16


def run(quick: bool, pg_url: str | None) -> list[harness.Table]:
    if not pg_url:
        return []
    rounds, cases = (3, 40) if quick else (5, 100)
    with ExitStack() as stack:
        stores = []
        for workers in (1, 2):
            url = stack.enter_context(harness.fresh_database("pg", pg_url))
            workload.prepare_database(url, forms=False)
            stores.append((f"{workers} worker{'s' if workers > 1 else ''}", url))
        data = bench_http.measure(stores, (THREADS,), rounds, cases,
                                  workers={"1 worker": 1, "2 workers": 2})
    table = harness.Table(f"Scale-out on PostgreSQL: gunicorn workers, {THREADS} client threads",
                          ["server", "instances/s", "completions/s", "complete p50 ms", "complete p99 ms",
                           "peak RSS per worker MB"])
    one = None
    for label, _ in stores:
        r = data["results"][(label, THREADS)]
        one = one or r["completions"]["rate"]
        table.rows.append([label, r["starts"]["rate"], r["completions"]["rate"], r["completions"]["p50"],
                           r["completions"]["p99"], data["memory"][label]["worker_peak"]])
    two = data["results"][("2 workers", THREADS)]["completions"]["rate"]
    first = data["results"][("1 worker", THREADS)]["starts"]["rate"]
    second = data["results"][("2 workers", THREADS)]["starts"]["rate"]
    table.metrics.update(completions=two / one, starts=second / first)
    table.notes.append(f"2 workers / 1 worker: completions {two / one:.2f}×, instance starts {second / first:.2f}× "
                       f"(goal ≥ 1.6×). Median of {rounds} alternating rounds of {cases} cases.")
    return [table]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--pg", default=harness.DEFAULT_PG)
    args = parser.parse_args()
    problem = harness.pg_reachable(args.pg)
    if problem:
        sys.exit(f"PostgreSQL unreachable at {args.pg}: {problem}")
    for table in run(args.quick, args.pg):
        print(table.render(), flush=True)


if __name__ == "__main__":
    main()
