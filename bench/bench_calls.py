"""Python function calls and SQL statements per completion: counts the host's noise does not move.

The timed benches move by up to 2x with this shared machine's phases, so two trees timed
an hour apart cannot be compared, and even side by side a 5 % change hides in the
spread.  A completion's count of Python function calls (cProfile) and of SQL statements
(SQLAlchemy's `before_cursor_execute`) is the same for the same code and inputs, in any
phase of the host: what a change adds to or takes from the path, seen at once.  A call
is not a unit of time (a dict lookup counts as one, so does a COMMIT), so this tells
whether a path does more or less work, not how long it takes; bench_overhead.py times it.

For each model of bench_overhead.py it completes the five department tasks of a few
cases, in bare SpiffWorkflow (in memory, SpiffWorkflow's own joins, as bench_overhead's
bare rows) and in the service layer on a fresh SQLite database, after a warm-up round,
counting only the completions (not the starts, nor the task query).

Run: .venv/bin/python bench/bench_calls.py [--quick] [--tree PATH]
  --tree PATH  count another checkout's engine (a `git worktree add --detach PATH REV`
               with .venv linked), with that tree's bench/ and engine/, for a side by side
               of two commits.
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import pstats
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

MODELS = (("review", "REVIEW", "REVIEW_KEY"), ("with Camunda Forms and camunda:inputOutput", None, "REVIEW_FORMS_KEY"),
          ("with a warning timer on each task", "REVIEW_WARNED", "REVIEW_WARNED_KEY"),
          ("with a legal clock on each task", None, "REVIEW_LEGAL_KEY"))


def _calls(profile: cProfile.Profile) -> int:
    return pstats.Stats(profile).total_calls


def _bare(bench_overhead, workload, model: str, key: str, cases: int) -> float:
    """bench_overhead.Bare's round, profiled around each completion.  Its loop is written out
    here rather than taken from the tree's Bare, whose round times each completion and has no
    seam for a profiler, so that --tree can count older checkouts' Bare as they are."""
    from SpiffWorkflow.bpmn import BpmnWorkflow
    from SpiffWorkflow.util.task import TaskState
    bare = bench_overhead.Bare(model, key)
    # a tree from before engine/joins.py has SpiffWorkflow's joins anyway
    with getattr(bench_overhead, "spiffworkflow_joins", contextlib.nullcontext)():
        workflows = []
        for _ in range(cases):
            workflow = BpmnWorkflow(bare.spec, bare.subprocess_specs, script_engine=bare.script_engine)
            workflow.do_engine_steps()
            workflows.append(workflow)
        per_case = [workflow.get_tasks(state=TaskState.READY, manual=True) for workflow in workflows]
        order = [(workflows[i], found[k]) for k in range(len(workload.DEPARTMENTS)) for i, found in enumerate(per_case)]
        profile = cProfile.Profile()
        for workflow, task in order:
            profile.enable()
            task.data.update(workload.decision(workload.dept_of(task.task_spec.bpmn_id)))
            task.run()
            workflow.do_engine_steps()
            profile.disable()
        assert all(workflow.completed for workflow in workflows)
    return _calls(profile) / len(order)


def _service(bench_overhead, workload, url: str, key: str, cases: int) -> tuple[float, float]:
    from sqlalchemy import event
    from engine import tasks
    service = bench_overhead.Service(url, key=key)
    try:
        service.round(5)                                    # specs parsed, caches and pool filled
        profile, statements, completions = cProfile.Profile(), [0], [0]
        counting = [False]

        def count(*_):
            if counting[0]:
                statements[0] += 1
        event.listen(service.engine.db, "before_cursor_execute", count)
        complete = tasks.complete

        def measured(*args, **kwargs):
            completions[0] += 1
            counting[0] = True
            profile.enable()
            try:
                return complete(*args, **kwargs)
            finally:
                profile.disable()
                counting[0] = False
        tasks.complete = measured
        try:
            service.round(cases)
        finally:
            tasks.complete = complete
            event.remove(service.engine.db, "before_cursor_execute", count)
        # COMMIT is the unit of work's, outside tasks.complete: one a completion, counted here
        return _calls(profile) / completions[0], statements[0] / completions[0] + 1
    finally:
        service.close()


def child(cases: int, tree: Path) -> None:
    """In `tree`, with its bench/ and engine/ first on sys.path: print the counts as JSON."""
    sys.path[:0] = [str(tree / "bench"), str(tree)]
    import bench_overhead
    import harness
    import workload
    out = {}
    with harness.fresh_database("sqlite") as url:
        workload.prepare_database(url, forms=True)
        for label, model, key in MODELS:
            row = {}
            if model:
                row["bare"] = _bare(bench_overhead, workload, getattr(workload, model), getattr(workload, key), cases)
            row["service"], row["statements"] = _service(bench_overhead, workload, url, getattr(workload, key), cases)
            out[label] = row
    print(json.dumps(out))


def counts(tree: Path, cases: int) -> dict:
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(cases), "--tree", str(tree)],
                          cwd=tree, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"counting in {tree} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(quick: bool, pg_url: str | None = None, tree: Path | None = None) -> list:
    import harness
    found = counts(tree or HERE.parent, 6 if quick else 20)
    table = harness.Table(
        f"Calls and statements per completion{f' ({tree})' if tree else ''} (bench/bench_calls.py)",
        ["model", "bare SpiffWorkflow: Python calls", "service layer, SQLite: Python calls",
         "SQL statements (with the COMMIT)"])
    for label, row in found.items():
        bare = row.get("bare")
        table.rows.append([label, round(bare) if bare else "–", round(row["service"]), round(row["statements"], 1)])
    table.notes.append("Counts, not times: the same for the same code in any phase of the host.  cProfile counts "
                       "Python calls only: SQLite's and the JSON encoder's C code and the kernel's work are not in "
                       "them, which is why the service layer can make fewer calls than bare SpiffWorkflow (whose "
                       "own joins walk the whole tree) and still take four times its CPU (bench_overhead.py).")
    return [table]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tree", type=Path, help="another checkout to count (its bench/ and engine/)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.tree)
        return
    sys.path.insert(0, str(HERE))
    for table in run(args.quick, tree=args.tree.resolve() if args.tree else None):
        print(table.render())


if __name__ == "__main__":
    main()
