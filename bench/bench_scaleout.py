"""Scale-out on PostgreSQL: one vs two server processes (gunicorn workers) under the
same load (16 client threads starting and completing five-department reviews).

Both servers run at once on one fresh schema each and take turns, round by round.
On a 2-core machine the client, PostgreSQL and the server share the cores, so the
ceiling is below 2x whatever the server does.

Run: .venv/bin/python bench/bench_scaleout.py [--quick] [--pg URL]
"""
from __future__ import annotations

import os
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
                           "server CPU ms", "PostgreSQL CPU ms", "client CPU ms", "cores busy",
                           "peak RSS per worker MB"])
    cores = os.cpu_count() or 1

    def machine_ms(c: dict) -> float:           # CPU of every process per completion
        return c["cpu_ms"] + c["pg_cpu_ms"] + c["client_cpu_ms"]

    results = {label: data["results"][(label, THREADS)] for label, _ in stores}
    for label, r in results.items():
        c = r["completions"]
        busy = c["rate"] * machine_ms(c) / 1000
        table.rows.append([label, r["starts"]["rate"], c["rate"], c["p50"], c["p99"], c["cpu_ms"], c["pg_cpu_ms"],
                           c["client_cpu_ms"], busy, data["memory"][label]["worker_peak"]])
    one, two = results["1 worker"]["completions"], results["2 workers"]["completions"]
    first, second = results["1 worker"]["starts"]["rate"], results["2 workers"]["starts"]["rate"]
    # every completion costs the machine server + PostgreSQL + client CPU; `cores` of them
    # can give no more completions a second than this, however many workers serve
    ceiling = cores * 1000 / machine_ms(two)
    table.metrics.update(completions=two["rate"] / one["rate"], starts=second / first,
                         ceiling=ceiling / one["rate"])
    table.notes.append(f"2 workers / 1 worker: completions {two['rate'] / one['rate']:.2f}×, instance starts "
                       f"{second / first:.2f}× (goal ≥ 1.6×). Median of {rounds} alternating rounds of {cases} cases.")
    table.notes.append(
        f"CPU ms per completion while the completions ran: the server's workers, every PostgreSQL process on "
        f"this machine, and the client (this process). The {cores} cores cannot give more than "
        f"{ceiling:,.0f} completions/s at the two-worker costs, {ceiling / one['rate']:.2f}× the one-worker rate.")
    return [table]


if __name__ == "__main__":
    harness.main(__doc__, run, pg="required")
