"""`make bench`: every bench, one table per section, then the goals of issue 7.

    .venv/bin/python bench/run_all.py            quick mode (the default; ~7 min on 2 cores)
    .venv/bin/python bench/run_all.py --full     the figures in the README (longer, more rounds)
    ... --only overhead,http,flatness,scaleout,others   a subset
    ... --pg URL | --no-pg                        PostgreSQL to use (default: APPROVALS_BENCH_PG,
                                                  APPROVALS_TEST_PG or the local test database)

Every figure is a median of several rounds, and what is compared is measured side by
side in interleaved rounds of one run: the machine is shared and noisy, so figures from
different runs are not comparable, ratios within a run are.  PostgreSQL work happens in
fresh schemas that are dropped afterwards.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import harness  # noqa: E402

SECTIONS = ("overhead", "http", "flatness", "scaleout", "others")
# run on their own, not by `make bench`: bench_instructions.py runs every layer under valgrind (20 min or more)
SEPARATE = {"bench_instructions.py"}
OWN = {"run_all.py", "harness.py", "workload.py", "bench_overhead.py", "bench_http.py", "bench_flatness.py",
       "bench_scaleout.py"}


def _section(name: str, quick: bool, pg: str | None) -> list[harness.Table]:
    if name == "overhead":
        import bench_overhead
        return bench_overhead.run(quick, pg)
    if name == "http":
        import bench_http
        return bench_http.run(quick, pg)
    if name == "flatness":
        import bench_flatness
        return bench_flatness.run(quick, pg)
    if name == "scaleout":
        import bench_scaleout
        return bench_scaleout.run(quick, pg)
    raise ValueError(name)


def other_benches(quick: bool, pg: str | None) -> None:
    """Every other bench/bench_*.py: one with `run(quick, pg_url)` returning tables (as
    bench_workers.py) in this process, the rest (bench_calendar, bench_sandbox,
    bench_timers, ...) each as its own process with `--quick` where it takes it."""
    for script in sorted(HERE.glob("bench_*.py")):
        if script.name in OWN or script.name in SEPARATE:
            continue
        if "\ndef run(quick: bool, pg_url" in script.read_text():
            started = time.monotonic()
            module = __import__(script.stem)
            for table in module.run(quick, pg):
                print(table.render(), flush=True)
            print(f"({script.stem}: {time.monotonic() - started:.0f} s)\n", flush=True)
            continue
        args = ["--quick"] if quick else []
        if script.name == "bench_timers.py" and pg:
            args += ["--pg", pg]
        started = time.monotonic()
        done = _run(script, args)
        if done.returncode == 2 and "unrecognized arguments" in done.stderr and "--quick" in args:
            args = [a for a in args if a != "--quick"]
            done = _run(script, args)
        shown = " ".join("URL" if a == pg else a for a in args)
        print(f"### {script.name} {shown}\n\n```\n{done.stdout.rstrip()}")
        if done.returncode != 0:
            print(f"(exit {done.returncode}) {done.stderr.strip()[-1500:]}")
        print(f"```\n({time.monotonic() - started:.0f} s)\n", flush=True)


def _run(script: Path, args: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, str(script), *args], cwd=HERE.parent, capture_output=True,
                              text=True, timeout=1800)
    except subprocess.TimeoutExpired as err:
        return subprocess.CompletedProcess(err.cmd, 124, err.stdout or "", "timed out after 30 min")


def goals(tables: dict) -> harness.Table:
    """Issue 7's goals against what this run measured."""
    table = harness.Table("Goals (issue 7, 2-core machine)", ["goal", "measured", "met"])
    overhead, http = tables.get("overhead"), tables.get("http")
    flat, scale = tables.get("flatness"), tables.get("scaleout")

    def add(goal, value, ok, fmt="{:.0f}"):
        table.rows.append([goal, fmt.format(value) if value is not None else "not measured",
                           "–" if value is None else ("yes" if ok(value) else "**no**")])

    o = overhead[0].metrics if overhead else {}
    bare = o.get("bare")
    http4 = o.get("HTTP API, SQLite, 4 client threads")
    if http4 is None and http:
        http4 = http[0].metrics.get(("SQLite", 4))
    add("HTTP API, SQLite, 4 client threads: ≥ 400 completions/s", http4, lambda v: v >= 400)
    add("… ≥ 33 % of bare SpiffWorkflow", http4 / bare if http4 and bare else None, lambda v: v >= 0.33,
        "{:.1%}")
    if http:
        add("… the same with 2 server processes (WEB_CONCURRENCY=2)",
            http[0].metrics.get(("SQLite, 2 server processes", 4)), lambda v: v >= 400)
    service = o.get("service layer, SQLite")
    add("service layer ≥ 50 % of bare SpiffWorkflow", service / bare if service and bare else None,
        lambda v: v >= 0.5, "{:.1%}")
    f = flat[0].metrics if flat else {}
    for store in ("SQLite", "PostgreSQL"):
        if ("instances", store) in f:
            add(f"flatness 1,000 → 100,000 stored instances ({store}) ≤ 1.2×", f[("instances", store)],
                lambda v: v <= 1.2, "{:.2f}×")
    add("flatness 10 → 500 completed tasks in one case ≤ 1.5×", f.get(("tasks", "cache")),
        lambda v: v <= 1.5, "{:.2f}×")
    add("… the same, each round's opinion its own", f.get(("tasks", "own opinions")), lambda v: v <= 1.5, "{:.2f}×")
    s = scale[0].metrics if scale else {}
    add("2 workers on PostgreSQL ≥ 1.6× one (completions)", s.get("completions"), lambda v: v >= 1.6, "{:.2f}×")
    memory = http[1].metrics if http and len(http) > 1 else {}
    peak = max(memory.values()) if memory else None
    add("server RSS under load ≤ 300 MB (largest worker)", peak, lambda v: v <= 300, "{:.0f} MB")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="fewer and smaller rounds (the default)")
    mode.add_argument("--full", action="store_true", help="the README figures")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    parser.add_argument("--pg", default=harness.DEFAULT_PG)
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    quick = not args.full
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(wanted) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; choose from {SECTIONS}")
    problem = "--no-pg" if args.no_pg else harness.pg_reachable(args.pg)
    pg = None if problem else args.pg
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE.parent, capture_output=True,
                            text=True).stdout.strip()
    print(f"## Benchmarks ({'quick' if quick else 'full'}), {datetime.now():%Y-%m-%d %H:%M}, commit {commit}\n")
    print(f"Machine: {harness.machine()}; load average at the start {os.getloadavg()[0]:.1f}")
    print(f"PostgreSQL: {pg.split('@')[-1] if pg else f'not used ({problem})'}\n", flush=True)
    started, tables = time.monotonic(), {}
    for name in wanted:
        t0 = time.monotonic()
        if name == "others":
            other_benches(quick, pg)
            continue
        tables[name] = _section(name, quick, pg)
        for table in tables[name]:
            print(table.render(), flush=True)
        print(f"({name}: {time.monotonic() - t0:.0f} s)\n", flush=True)
    print(goals(tables).render())
    print(f"(total {time.monotonic() - started:.0f} s; load average at the end {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
