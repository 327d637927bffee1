"""Flatness: a step must not get dearer as the database or the case grows.

1. One completion (service layer, five-department review) with 1,000 vs 100,000 stored
   instances.  The padding is bulk-inserted (as bench_timers.py does): half of the cases
   completed, half still open with a task offered to one of the same departments (one
   second apart, oldest first), each with history, variables and an audit event, so
   every index the command uses is big; three in four open tasks have a due date, many
   the same one.  On the same databases, an officer's task list: the first page (15) of
   their department's queue (GET /task?candidateGroup=fgw), the same by due date
   (&sortBy=dueDate), and its count, which reads the whole queue's entries in one index
   of task_candidate: 100 tasks on the small side, 10,000 on the large one.  And an
   officer's read of one case of theirs (GET /process-instance/{id}, which checks that
   they take part in it), and the first page of the running cases they take part in
   (100 and 10,000 of them): read from the first cases in order when their department
   is busy, from the set of them all otherwise (engine/history.py).
2. One completion in a case that already has 10 vs 500 completed user tasks (a
   sequential multi-instance review, bench/workload.py LOOP), with the workflow cache
   and without it (every command restores the case from its state JSON), with every
   round writing an opinion of its own (the rounds' data differ, so the multi-instance
   task's data changes at every round), and bare SpiffWorkflow on the same model for
   reference.

Completions alternate between the small and the large side; figures are medians.
Run: .venv/bin/python bench/bench_flatness.py [--quick] [--pg URL | --no-pg]
"""
from __future__ import annotations

import sys
import time
import uuid
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
import workload  # noqa: E402
from app import tune_gc  # noqa: E402
from bench_overhead import Service  # noqa: E402


def pad(database_url: str, definition_id: str, count: int) -> None:
    """`count` placeholder cases with their rows, in batches of 5,000."""
    from sqlalchemy import insert
    from engine.config import Settings
    from engine.context import Engine
    from engine.models import (ActivityInstance, AuditEvent, ProcessInstance, TaskCandidate, UserTask,
                               VariableInstance)
    engine = Engine(Settings(database_url=database_url, timers_enabled=False), check_schema=False)
    now = datetime.utcnow()
    key = workload.REVIEW_KEY
    try:
        with engine.uow() as uow:
            run = uow.session.execute
            for start in range(0, count, 5000):
                batch = [(str(uuid.uuid4()), start + k) for k in range(min(5000, count - start))]
                run(insert(ProcessInstance), [dict(
                    id=i, definition_id=definition_id, definition_key=key, business_key=f"PAD-{n}",
                    state="ACTIVE" if n % 2 else "COMPLETED", start_time=now, end_time=None if n % 2 else now,
                    called_definitions={}, version=2, audit_seq=1,
                    state_json="{}" if n % 2 else None) for i, n in batch])   # an ended case keeps none
                run(insert(ActivityInstance), [dict(
                    id=str(uuid.uuid4()), instance_id=i, definition_id=definition_id, definition_key=key,
                    activity_id=a, activity_type=t, start_time=now, end_time=now, canceled=False)
                    for i, _ in batch for a, t in (("StartEvent_apply", "startEvent"),
                                                   ("Gateway_split", "parallelGateway"))])
                run(insert(VariableInstance), [dict(
                    id=str(uuid.uuid4()), instance_id=i, name=name, type="String", value="approve",
                    created=now, updated=now) for i, _ in batch for name in ("fgwDecision", "zrzyDecision")])
                run(insert(AuditEvent), [dict(
                    instance_id=i, seq=1, at=now, actor="system", kind="ProcessInstanceStarted", payload={},
                    prev_hash=None, hash="0" * 64) for i, _ in batch])
                open_tasks = [(str(uuid.uuid4()), i, workload.DEPARTMENTS[n % len(workload.DEPARTMENTS)], n)
                              for i, n in batch if n % 2]
                if open_tasks:
                    run(insert(UserTask), [dict(
                        id=t, instance_id=i, definition_id=definition_id, definition_key=key,
                        task_definition_key=f"Task_review_{d}", name=f"{d} review", priority=50,
                        created=now - timedelta(seconds=count - n), due=_due(now, n),
                        business_key=None, properties={}) for t, i, d, n in open_tasks])
                    run(insert(TaskCandidate), [dict(task_id=t, group_id=d, instance_id=i, instance_start_time=now)
                                                for t, i, d, _ in open_tasks])
            uow.commit()
        if engine.db.dialect.name == "postgresql":
            # what autovacuum does within a minute of such a load: without statistics the
            # planner takes 100,000 fresh rows for a handful (EXPLAIN ANALYZE of a page of
            # the task list: 107 against 0.44 ms), which a server that grew to this size never sees
            with engine.db.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
                conn.commit()
    finally:
        engine.close()


def _due(now: datetime, n: int) -> datetime | None:
    """A padded task's due date: three in four run a legal clock, whose deadlines fall at
    the end of one of the next 30 days (many tasks share one); the fourth has none."""
    if n % 8 == 7:                        # the open tasks are the odd n
        return None
    return now.replace(hour=17, minute=30, second=0, microsecond=0) + timedelta(days=n // 10 % 30)


def _alternate(sides: dict, count: int, step) -> dict:
    """`step(side)` -> seconds, alternating between the sides `count` times; (median,
    mean) ms per side.  The mean carries the garbage collector's pauses, which a median
    hides.  Garbage is collected as the server does (app.tune_gc)."""
    tune_gc()
    times = {label: [] for label in sides}
    for _ in range(count):
        for label, side in sides.items():
            times[label].append(step(side))
    return {label: (harness.median(t) * 1000, sum(t) / len(t) * 1000) for label, t in times.items()}


# --- 1. stored instances ------------------------------------------------------------------

def stored_instances(kind: str, pg_url: str | None, sizes: tuple[int, int], count: int) -> dict:
    """{"completion" | "task list" | "by due date" | "task count" | "case" | "cases" |
    "cases count": {size: (median, mean) ms}}."""
    with ExitStack() as stack:
        sides = {}
        for size in sizes:
            url = stack.enter_context(harness.fresh_database(kind, pg_url))
            ids = workload.prepare_database(url, forms=False)
            pad(url, ids[workload.REVIEW_KEY], size)
            service = Service(url)
            stack.callback(service.close)
            service.round(5)                                     # warm-up
            sides[size] = _Cases(service)
        return {"completion": _alternate(sides, count, lambda side: side.complete_one()),
                "task list": _alternate(sides, count // 2, lambda side: side.read_queue()),
                "by due date": _alternate(sides, count // 2, lambda side: side.read_queue(sort_by="dueDate")),
                "task count": _alternate(sides, count // 2, lambda side: side.read_queue(counting=True)),
                "case": _alternate(sides, count // 2, lambda side: side.read_case()),
                "cases": _alternate(sides, count // 2, lambda side: side.read_cases()),
                "cases count": _alternate(sides, count // 2, lambda side: side.read_cases(counting=True))}


class _Cases:
    """Completes the tasks of freshly started cases one at a time (a new case when out)."""

    def __init__(self, service: Service) -> None:
        self.service, self.todo = service, []

    def complete_one(self) -> float:
        from engine import instances, tasks
        from engine.identity import SYSTEM
        engine = self.service.engine
        if not self.todo:
            with engine.uow() as uow:
                record, _ = instances.start(uow, SYSTEM, {}, None, key=workload.REVIEW_KEY)
            with engine.uow(write=False) as uow:
                self.todo = [(v.row.id, workload.dept_of(v.row.task_definition_key)) for v in tasks.query(
                    uow.session, SYSTEM, tasks.TaskQuery(process_instance_id=record.id))]
        task_id, dept = self.todo.pop()
        t0 = time.perf_counter()
        with engine.uow() as uow:
            tasks.complete(uow, self.service.officers[dept], task_id, workload.decision(dept))
        return time.perf_counter() - t0

    def read_queue(self, counting: bool = False, sort_by: str | None = None) -> float:
        """An officer of fgw reads the first page of fgw's queue (sorted by `sort_by`), or
        counts the queue."""
        from engine import tasks
        query = tasks.TaskQuery(candidate_group="fgw", sort_by=sort_by, max_results=None if counting else 15)
        t0 = time.perf_counter()
        with self.service.engine.uow(write=False) as uow:
            found = (tasks.count if counting else tasks.query)(uow.session, self.service.officers["fgw"], query)
        elapsed = time.perf_counter() - t0
        assert found, "the queue is empty"
        return elapsed

    def read_case(self) -> float:
        """An officer of fgw reads a case offered to fgw alone (GET /process-instance/{id})."""
        from engine import instances
        from engine.db import reading
        from engine.identity import SYSTEM
        engine = self.service.engine
        if not hasattr(self, "case_id"):
            with engine.uow() as uow:
                self.case_id = instances.start(uow, SYSTEM, {}, None, key=workload.REVIEW_KEY)[0].id
        t0 = time.perf_counter()
        with reading(engine.db) as conn:
            instances.get(conn, self.service.officers["fgw"], self.case_id)
        return time.perf_counter() - t0

    def read_cases(self, counting: bool = False) -> float:
        """An officer of fgw reads the first page of the running cases they take part in
        (GET /process-instance?maxResults=15): 10 % of the padded cases, 10,000 of 100,000;
        or, `counting`, their count (GET /process-instance/count)."""
        from engine import history, instances
        from engine.db import reading
        t0 = time.perf_counter()
        with reading(self.service.engine.db) as conn:
            found = history.process_instances(conn, self.service.officers["fgw"],
                                              instances.InstanceQuery(max_results=None if counting else 15),
                                              instances.RUNNING, count_only=counting)
        elapsed = time.perf_counter() - t0
        assert found >= 100 if counting else len(found) == 15
        return elapsed


# --- 2. tasks inside one case ---------------------------------------------------------------

def _max_rounds() -> int:
    from engine.specs import MAX_INSTANCES          # the engine refuses a larger loopCardinality
    return MAX_INSTANCES


MAX_ROUNDS = _max_rounds()      # enough for the large side and its measured rounds


class _LoopCase:
    def __init__(self, service: Service, done: int, own_opinions: bool = False) -> None:
        from engine import instances
        from engine.identity import SYSTEM
        self.service, self.own_opinions, self.rounds = service, own_opinions, 0
        with service.engine.uow() as uow:
            record, _ = instances.start(uow, SYSTEM, {"rounds": MAX_ROUNDS}, None, key=workload.LOOP_KEY)
        self.instance_id = record.id
        for _ in range(done):
            self.complete_one()

    def complete_one(self) -> float:
        from engine import tasks
        from engine.identity import SYSTEM
        engine = self.service.engine
        with engine.uow(write=False) as uow:
            [view] = tasks.query(uow.session, SYSTEM, tasks.TaskQuery(process_instance_id=self.instance_id))
            task_id = view.row.id
        self.rounds += 1
        opinion = f"第 {self.rounds} 轮: 同意" if self.own_opinions else "同意"
        t0 = time.perf_counter()
        with engine.uow() as uow:
            tasks.complete(uow, self.service.officers["fgw"], task_id, {"opinion": opinion})
        return time.perf_counter() - t0


class _BareLoop:
    def __init__(self, done: int) -> None:
        from SpiffWorkflow.bpmn import BpmnWorkflow
        from engine.workflows import parse_resources
        parser = parse_resources([("bench_loop.bpmn", workload.LOOP.encode())])
        self.workflow = BpmnWorkflow(parser.get_spec(workload.LOOP_KEY), {})
        self.workflow.task_tree.data["rounds"] = MAX_ROUNDS
        self.workflow.do_engine_steps()
        for _ in range(done):
            self.complete_one()

    def complete_one(self) -> float:
        from SpiffWorkflow.util.task import TaskState
        [task] = self.workflow.get_tasks(state=TaskState.READY, manual=True)
        t0 = time.perf_counter()
        task.data["opinion"] = "同意"
        task.run()
        self.workflow.do_engine_steps()
        return time.perf_counter() - t0


def tasks_in_case(sizes: tuple[int, int], count: int) -> dict:
    out = {}
    with harness.fresh_database("sqlite") as url:
        workload.prepare_database(url, forms=False)
        for label, cache, own in (("cache", 256, False), ("cache off", 0, False), ("own opinions", 256, True)):
            service = Service(url, cache=cache)
            try:
                sides = {size: _LoopCase(service, size, own) for size in sizes}
                out[label] = _alternate(sides, count, lambda side: side.complete_one())
            finally:
                service.close()
    sides = {size: _BareLoop(size) for size in sizes}
    out["bare"] = _alternate(sides, count, lambda side: side.complete_one())
    return out


# --- the report ---------------------------------------------------------------------------

def _row(name: str, store: str, result: dict, sizes: tuple[int, int], goal: str) -> list:
    """A table row from {size: (median, mean) ms} of the small and the large side."""
    (small, small_mean), (large, large_mean) = result[sizes[0]], result[sizes[1]]
    return [name, store, small, large, f"{large / small:.2f}×", goal, f"{small_mean:.2f} / {large_mean:.2f}"]


def _ratio(row: list) -> float:
    """large / small of a _row."""
    return row[3] / row[2]


def run(quick: bool, pg_url: str | None) -> list[harness.Table]:
    count = 60 if quick else 200
    instance_sizes, task_sizes = (1_000, 100_000), (10, 500)
    table = harness.Table("Flatness: one completion as the data grows (service layer)",
                          ["what grows", "store", "small ms", "large ms", "ratio", "goal", "small / large mean ms"])
    stores = [("SQLite", "sqlite")] + ([("PostgreSQL", "pg")] if pg_url else [])
    queue_rows = []
    for label, kind in stores:
        r = stored_instances(kind, pg_url, instance_sizes, count)
        row = _row("stored instances 1,000 → 100,000", label, r["completion"], instance_sizes, "≤ 1.2×")
        table.rows.append(row)
        table.metrics[("instances", label)] = _ratio(row)
        queue_rows += [_row("… an officer's task list, first page of 15", label, r["task list"], instance_sizes, "–"),
                       _row("… the same sorted by due date", label, r["by due date"], instance_sizes, "–"),
                       _row("… the count of that queue (100 → 10,000 tasks)", label, r["task count"],
                            instance_sizes, "–"),
                       _row("… an officer reads one case of theirs", label, r["case"], instance_sizes, "–"),
                       _row("… a page of the running cases they take part in (100 → 10,000)", label, r["cases"],
                            instance_sizes, "–"),
                       _row("… their count", label, r["cases count"], instance_sizes, "–")]
    table.rows += queue_rows
    r = tasks_in_case(task_sizes, max(20, count // 3))
    for label, goal, name in (("cache", "≤ 1.5×", "completed tasks in the case 10 → 500"),
                              ("cache off", "≤ 1.5×", "… same, workflow cache off"),
                              ("own opinions", "≤ 1.5×", "… same, each round's opinion its own"),
                              ("bare", "reference", "… bare SpiffWorkflow, same model")):
        row = _row(name, "SQLite" if label != "bare" else "memory", r[label], task_sizes, goal)
        table.rows.append(row)
        table.metrics[("tasks", label)] = _ratio(row)
    table.notes.append(f"Medians of {count} (instances) and {max(20, count // 3)} (tasks in a case) completions "
                       f"and {count // 2} reads of the queue and of the cases per side, the two sides "
                       "alternating; the last column's means include the garbage collector's pauses.  Garbage "
                       "is collected as the server does (app.tune_gc).  The task list and its count, and the "
                       "reads of cases (service layer, an officer of fgw) are not goals of issue 7: a page of "
                       "the queue is read along an index and stays flat, the count reads the entries of the "
                       "department's whole queue in one index; one case is checked through its own rows and "
                       "stays flat; a page of the cases they take part in, in start-time order, is read from the "
                       "first cases of each way of taking part (a department's from task_candidate's index on "
                       "department and case start, migration 0022) and stays flat; their count reads those index "
                       "entries alone and grows with them.")
    return [table]


if __name__ == "__main__":
    harness.main(__doc__, run, pg="optional")
