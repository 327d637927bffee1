"""The headline: what the server adds to SpiffWorkflow, for the same model.

Three layers complete the tasks of the five-department review (bench/workload.py),
side by side in interleaved rounds:

  bare SpiffWorkflow   the spec from the engine's own parser, BpmnWorkflow in memory:
                       task.run() + do_engine_steps(), no persistence, no HTTP
  service layer        engine.tasks.complete(...) in one unit of work (what an API
                       resource calls), on SQLite (and PostgreSQL), no HTTP
  HTTP API             the real server (`python app.py serve`, gunicorn), officers
                       POST /task/{id}/complete with HTTP Basic over keep-alive

"cache off" restores every case from its state JSON (APPROVALS_WORKFLOW_CACHE=0), as a
server with far more open cases than cache entries does.  The forms rows run the same
review with Camunda Forms and camunda:inputOutput (as examples/quickstart does); the
timer rows with a non-interrupting timer on each department's task, the legal-clock row
with a legal clock, a yellow card and tacit approval on each (bench/workload.py).

Run: .venv/bin/python bench/bench_overhead.py [--quick] [--pg URL | --no-pg]
"""
from __future__ import annotations

import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_http  # noqa: E402
import harness  # noqa: E402
import workload  # noqa: E402
from app import tune_gc  # noqa: E402


# --- bare SpiffWorkflow ------------------------------------------------------------------

@contextmanager
def spiffworkflow_joins():
    """SpiffWorkflow's own joins while the bare rounds run.  engine/joins.py replaces the
    parallel and inclusive gateways' arrival checks and the unstructured join's merge
    process-wide (a three-way merge, and a check that counts one round's arrivals, which
    walks less of the tree than SpiffWorkflow's): the reference is SpiffWorkflow itself."""
    from SpiffWorkflow.bpmn.specs.mixins.inclusive_gateway import InclusiveGateway
    from SpiffWorkflow.bpmn.specs.mixins.parallel_gateway import ParallelGateway
    from SpiffWorkflow.bpmn.specs.mixins.unstructured_join import UnstructuredJoin
    saved = [(cls, name, cls.__dict__[name]) for cls, name in (
        (UnstructuredJoin, "_run_hook"), (ParallelGateway, "_check_threshold_unstructured"),
        (InclusiveGateway, "_check_threshold_unstructured")) if name in cls.__dict__]
    for cls, name, method in saved:
        original = getattr(method, "__wrapped__", None)
        if original is not None:
            setattr(cls, name, original)
    try:
        yield
    finally:
        for cls, name, method in saved:
            setattr(cls, name, method)


class Bare:
    def __init__(self, model: str = workload.REVIEW, key: str = workload.REVIEW_KEY) -> None:
        from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
        from engine.workflows import parse_resources
        parser = parse_resources([(f"{key}.bpmn", model.encode())])
        self.spec = parser.get_spec(key)
        self.subprocess_specs = parser.get_subprocess_specs(key)
        self.script_engine = PythonScriptEngine()

    def round(self, cases: int) -> tuple[harness.Round, harness.Round]:
        with spiffworkflow_joins():
            return self._round(cases)

    def _round(self, cases: int) -> tuple[harness.Round, harness.Round]:
        from SpiffWorkflow.bpmn import BpmnWorkflow
        from SpiffWorkflow.util.task import TaskState
        starts, workflows = [], []
        t0 = time.perf_counter()
        for _ in range(cases):
            s = time.perf_counter()
            workflow = BpmnWorkflow(self.spec, self.subprocess_specs, script_engine=self.script_engine)
            workflow.do_engine_steps()
            workflows.append(workflow)
            starts.append(time.perf_counter() - s)
        start_round = harness.Round(cases, time.perf_counter() - t0, starts)
        per_case = [workflow.get_tasks(state=TaskState.READY, manual=True) for workflow in workflows]
        order = [(workflows[i], tasks[k]) for k in range(len(workload.DEPARTMENTS))
                 for i, tasks in enumerate(per_case)]
        latencies = []
        cpu, t0 = time.process_time(), time.perf_counter()
        for workflow, task in order:
            s = time.perf_counter()
            task.data.update(workload.decision(workload.dept_of(task.task_spec.bpmn_id)))
            task.run()
            workflow.do_engine_steps()
            latencies.append(time.perf_counter() - s)
        elapsed = time.perf_counter() - t0
        assert all(w.completed for w in workflows)
        return start_round, harness.Round(len(order), elapsed, latencies, time.process_time() - cpu)


# --- the engine's service layer ----------------------------------------------------------

class Service:
    def __init__(self, database_url: str, cache: int = 256, key: str = workload.REVIEW_KEY) -> None:
        from engine.config import Settings
        from engine.context import Engine
        from engine.identity import Principal
        self.engine = Engine(Settings(database_url=database_url, timers_enabled=False, workflow_cache_size=cache))
        self.key = key
        self.officers = {d: Principal(f"{d}1", frozenset({d})) for d in workload.DEPARTMENTS}

    def round(self, cases: int) -> tuple[harness.Round, harness.Round]:
        from engine import instances, tasks
        from engine.identity import SYSTEM
        ids, starts = [], []
        t0 = time.perf_counter()
        for n in range(cases):
            s = time.perf_counter()
            with self.engine.uow() as uow:
                record, _ = instances.start(uow, SYSTEM, {}, f"SVC-{n}", key=self.key)
            ids.append(record.id)
            starts.append(time.perf_counter() - s)
        start_round = harness.Round(cases, time.perf_counter() - t0, starts)
        with self.engine.uow(write=False) as uow:
            per_case = [[(v.row.id, workload.dept_of(v.row.task_definition_key))
                         for v in tasks.query(uow.session, SYSTEM, tasks.TaskQuery(process_instance_id=i))]
                        for i in ids]
        order = [lst[k] for k in range(len(workload.DEPARTMENTS)) for lst in per_case]
        forms = self.key == workload.REVIEW_FORMS_KEY
        latencies = []
        cpu, t0 = time.process_time(), time.perf_counter()
        for task_id, dept in order:
            s = time.perf_counter()
            with self.engine.uow() as uow:
                tasks.complete(uow, self.officers[dept], task_id,
                               dict(workload.FORM_DECISION) if forms else workload.decision(dept))
            latencies.append(time.perf_counter() - s)
        return start_round, harness.Round(len(order), time.perf_counter() - t0, latencies, time.process_time() - cpu)

    def close(self) -> None:
        self.engine.close()


# --- side by side ----------------------------------------------------------------------

def run(quick: bool, pg_url: str | None) -> list[harness.Table]:
    rounds, cases = (3, 30) if quick else (7, 60)
    with ExitStack() as stack:
        sqlite_url = stack.enter_context(harness.fresh_database("sqlite"))
        workload.prepare_database(sqlite_url, forms=True)
        layers: list[tuple[str, object]] = [("bare SpiffWorkflow, in memory", Bare())]
        service = Service(sqlite_url)
        stack.callback(service.close)
        layers.append(("service layer, SQLite", service))
        cold = Service(sqlite_url, cache=0)
        stack.callback(cold.close)
        layers.append(("service layer, SQLite, cache off", cold))
        if pg_url:
            pg = stack.enter_context(harness.fresh_database("pg", pg_url))
            workload.prepare_database(pg, forms=False)
            pg_service = Service(pg)
            stack.callback(pg_service.close)
            layers.append(("service layer, PostgreSQL", pg_service))
        # The server gets a database of its own, as a deployment has: the service layers'
        # engines in this process would otherwise checkpoint its WAL and take its write lock.
        server_url = stack.enter_context(harness.fresh_database("sqlite"))
        workload.prepare_database(server_url, forms=True)
        server = stack.enter_context(harness.Server(server_url, label="overhead"))
        for threads in (1, 4):
            layers.append((f"HTTP API, SQLite, {threads} client thread{'s' if threads > 1 else ''}",
                           _http(server, threads)))
        forms_service = Service(sqlite_url, key=workload.REVIEW_FORMS_KEY)
        stack.callback(forms_service.close)
        layers.append(("with forms: service layer, SQLite", forms_service))
        layers.append(("with forms: HTTP API, SQLite, 4 client threads",
                       _http(server, 4, workload.REVIEW_FORMS_KEY)))
        layers.append((WARNED_BARE, Bare(workload.REVIEW_WARNED, workload.REVIEW_WARNED_KEY)))
        warned_service = Service(sqlite_url, key=workload.REVIEW_WARNED_KEY)
        stack.callback(warned_service.close)
        layers.append(("with a warning timer on each task: service layer, SQLite", warned_service))
        legal_service = Service(sqlite_url, key=workload.REVIEW_LEGAL_KEY)
        stack.callback(legal_service.close)
        layers.append((LEGAL, legal_service))

        for _, layer in layers:                    # warm-up: specs parsed, pools filled
            layer.round(5)
        tune_gc()        # as the server does (app.py): for bare SpiffWorkflow and the service layers alike
        collected = {label: ([], []) for label, _ in layers}
        for _ in range(rounds):
            for label, layer in layers:
                starts, completions = layer.round(cases)
                collected[label][0].append(starts)
                collected[label][1].append(completions)
    return [_table(collected, rounds, cases)]


class _http:
    def __init__(self, server, threads: int, key: str = workload.REVIEW_KEY) -> None:
        self.server, self.threads, self.key = server, threads, key

    def round(self, cases: int):
        return bench_http.http_round(self.server, cases, self.threads, self.key,
                                     forms=self.key == workload.REVIEW_FORMS_KEY)


WARNED_BARE = "with a warning timer on each task: bare SpiffWorkflow, in memory"
LEGAL = "with a legal clock on each task: service layer, SQLite"


def _table(collected: dict, rounds: int, cases: int) -> harness.Table:
    table = harness.Table("Overhead against SpiffWorkflow: the same five-department review",
                          ["layer", "instances/s", "completions/s", "completion p50 ms", "completion p99 ms",
                           "CPU ms per completion", "share of bare SpiffWorkflow"])
    bare = warned_bare = None
    for label, (starts, completions) in collected.items():
        s, c = harness.summarize(starts), harness.summarize(completions)
        bare = bare or c["rate"]
        if label == WARNED_BARE:
            warned_bare = c["rate"]
        reference = warned_bare if label.startswith("with a warning timer") else bare
        table.rows.append([label, s["rate"], c["rate"], c["p50"], c["p99"], c["cpu_ms"],
                           "–" if label == LEGAL else f"{c['rate'] / reference:.1%}"])
        table.metrics[label] = c["rate"]
    table.metrics["bare"] = bare
    table.notes.append(f"Median of {rounds} interleaved rounds of {cases} cases ({cases * 5} completions) per row. "
                       "Bare SpiffWorkflow uses its default PythonScriptEngine; the engine evaluates the same "
                       "gateway condition in its sandbox.  The rows with forms share the plain review's bare "
                       "rate; the rows with warning timers are against bare SpiffWorkflow on that model.  The "
                       "row with legal clocks (each department's task starts and stops a clock of 5 working "
                       "days, with a yellow card and tacit approval on it, as bpmn/department_review.bpmn "
                       "does) has no bare rate: SpiffWorkflow alone has no legal_deadline().  This "
                       "process collects garbage as the server does "
                       "(app.tune_gc).  CPU: of this process for bare SpiffWorkflow and the "
                       "service layer (PostgreSQL's own not counted), of the server's workers for HTTP.")
    return table


if __name__ == "__main__":
    harness.main(__doc__, run, pg="optional")
