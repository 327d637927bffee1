"""The floor under a completion: what gunicorn and Flask cost per request with nothing
behind them, beside what the engine's requests cost, side by side.

The README's goal "HTTP ≥ 33 % of bare SpiffWorkflow" leaves a completion ~0.9 ms of
server CPU in all.  This bench measures how much of that the server stack takes before
the engine does anything, on the same worker class, one client thread, keep-alive:

  gunicorn alone          a WSGI function that answers {} (api.serving.Worker, one runner)
  + Flask                 a Flask app with one route that answers {}
  + the engine's app      GET /engine-rest/version on the real server, HTTP Basic
  a department's queue    GET /engine-rest/task?candidateGroup=fgw&maxResults=15, a page of
                          15 of 20+ open tasks offered to fgw, as an officer of fgw
  completion              POST /engine-rest/task/{id}/complete, the five-department review
  service layer alone     engine.tasks.complete in this process, no HTTP (as bench_overhead.py)
  an external task        a worker's two requests, timed apart: POST /engine-rest/external-task/
                          fetchAndLock (maxTasks 1, a one-task process of bench_workers.py), then
                          POST /engine-rest/external-task/{id}/complete of each task it locked

Run: .venv/bin/python bench/bench_floor.py [--quick]
"""
from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_http  # noqa: E402
import bench_workers  # noqa: E402
import harness  # noqa: E402
import workload  # noqa: E402
from bench_overhead import Service  # noqa: E402


COMPLETION = "a completion: POST /engine-rest/task/{id}/complete"
FETCH = "an external task: POST /engine-rest/external-task/fetchAndLock, maxTasks 1"


def wsgi_app(environ, start_response):
    """gunicorn alone: no framework, no routing, no database."""
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
    return [b"{}"]


def flask_app():
    """gunicorn and Flask: one route for any path, a JSON answer."""
    from flask import Flask
    app = Flask("floor")

    @app.get("/", defaults={"path": ""})
    @app.get("/<path:path>")
    def answer(path):
        return {}

    return app


def _gunicorn(target: str) -> list[str]:
    """The command line app.py's server uses for a SQLite store, for another WSGI app."""
    return [sys.executable, "-m", "gunicorn", "--worker-class", "api.serving.Worker", "--workers", "1",
            "--threads", "32", "--keep-alive", "5", "--log-level", "warning", "--bind", "127.0.0.1:{port}",
            "--pythonpath", str(harness.ROOT / "bench"), target]


def _timed(server: harness.Server, user: str, password: str, items: list, call) -> harness.Round:
    """`call(client, item)` for each item from one keep-alive client of `user`; the server's CPU for them."""
    client = server.client(user, password)
    cpu = server.cpu_seconds()
    done = harness.run_threads(1, items, lambda _state, item: call(client, item))
    done.cpu = server.cpu_seconds() - cpu
    client.close()
    return done


class _Requests:
    """`count` requests of one kind from an officer's keep-alive client; the server's CPU for them."""

    def __init__(self, server: harness.Server, method: str, path: str) -> None:
        self.server, self.method, self.path = server, method, path

    def round(self, count: int) -> harness.Round:
        return _timed(self.server, f"{workload.DEPARTMENTS[0]}1", workload.PASSWORD, list(range(count)),
                      lambda client, _n: client.call(self.method, self.path))


class _Completions:
    def __init__(self, server: harness.Server) -> None:
        self.server = server

    def round(self, cases: int) -> harness.Round:
        return bench_http.http_round(self.server, cases, 1)[1]


class _ExternalTasks:
    """A worker's requests for one external task each: `fetches` starts `count` cases (not
    timed) and locks their tasks one fetchAndLock at a time; `completions` completes the
    tasks the last `fetches` locked.  The server's CPU of the timed requests only."""

    FETCH = {"workerId": "floor", "maxTasks": 1, "topics": [{"topicName": bench_workers.TOPIC,
                                                               "lockDuration": 600_000}]}

    def __init__(self, server: harness.Server) -> None:
        self.server, self.locked = server, []

    def _timed(self, items: list, call) -> harness.Round:
        return _timed(self.server, "admin", workload.ADMIN_PASSWORD, items, call)

    def fetches(self, count: int) -> harness.Round:
        bench_http.start_cases(self.server, bench_workers.KEY, count, 1)
        self.locked = []

        def fetch(client, _n):
            [task] = client.call("POST", f"{bench_http.REST}/external-task/fetchAndLock", self.FETCH)
            self.locked.append(task["id"])
        return self._timed(list(range(count)), fetch)

    def completions(self, _count: int) -> harness.Round:
        return self._timed(self.locked, lambda client, task_id: client.call(
            "POST", f"{bench_http.REST}/external-task/{task_id}/complete", {"workerId": "floor"}))


class _Rounds:
    """One of a layer's round methods as a layer of the table."""

    def __init__(self, round_) -> None:
        self.round = round_


class _ServiceLayer:
    def __init__(self, service: Service) -> None:
        self.service = service

    def round(self, cases: int) -> harness.Round:
        return self.service.round(cases)[1]


def run(quick: bool, pg_url: str | None) -> list[harness.Table]:
    rounds, requests, cases = (3, 300, 30) if quick else (5, 1000, 60)
    with ExitStack() as stack:
        server_url = stack.enter_context(harness.fresh_database("sqlite"))
        workload.prepare_database(server_url, forms=False, extra={"bench_external.bpmn": bench_workers.MODEL})
        service_url = stack.enter_context(harness.fresh_database("sqlite"))
        workload.prepare_database(service_url, forms=False)
        bare = stack.enter_context(harness.Server("sqlite://", label="floor-wsgi", command=_gunicorn("bench_floor:wsgi_app")))
        flask = stack.enter_context(harness.Server("sqlite://", label="floor-flask",
                                                   command=_gunicorn("bench_floor:flask_app()")))
        server = stack.enter_context(harness.Server(server_url, label="floor-engine"))
        service = Service(service_url)
        stack.callback(service.close)
        external = _ExternalTasks(server)
        layers = [("gunicorn alone: a WSGI function, GET", _Requests(bare, "GET", "/x"), requests),
                  ("+ Flask: one route, GET", _Requests(flask, "GET", "/x"), requests),
                  ("+ the engine's app and HTTP Basic: GET /engine-rest/version",
                   _Requests(server, "GET", f"{bench_http.REST}/version"), requests),
                  ("a department's queue: GET /engine-rest/task?candidateGroup=fgw&maxResults=15",
                   _Requests(server, "GET", f"{bench_http.REST}/task?candidateGroup=fgw&maxResults=15"), requests),
                  (COMPLETION, _Completions(server), cases),
                  ("the service layer alone, in this process (no HTTP)", _ServiceLayer(service), cases),
                  (FETCH, _Rounds(external.fetches), requests // 4),
                  ("… then its completion: POST /engine-rest/external-task/{id}/complete",
                   _Rounds(external.completions), requests // 4)]
        for _, layer, size in layers:              # warm-up: imports, specs, connections
            layer.round(max(5, size // 10))
        bench_http.start_cases(server, workload.REVIEW_KEY, 20, 1)     # cases left open: fgw's queue
        collected = {label: [] for label, _, _ in layers}
        for _ in range(rounds):
            for label, layer, size in layers:
                collected[label].append(layer.round(size))
    summaries = {label: harness.summarize(done) for label, done in collected.items()}
    completion = summaries[COMPLETION]["cpu_ms"]
    table = harness.Table("The floor: what the server stack costs per request before the engine does anything",
                          ["request (SQLite, one client thread, keep-alive)", "requests/s", "p50 ms",
                           "server CPU ms per request", "share of a completion's server CPU"])
    for label, s in summaries.items():
        table.rows.append([label, s["rate"], s["p50"], s["cpu_ms"], f"{s['cpu_ms'] / completion:.0%}"])
        table.metrics[label] = s["cpu_ms"]
    table.notes.append(
        f"Median of {rounds} alternating rounds: {requests} requests per round for the first four rows, "
        f"{cases} cases ({cases * 5} completions) for the next two, {requests // 4} external tasks for the "
        "last two (each fetchAndLock locks one task of a one-task process; the round of completions "
        "completes the tasks the round before it locked, which ends their cases).  Every server is one "
        "gunicorn worker with the engine's worker class (api/serving.py) and one request runner, as app.py "
        "serves SQLite.  Server CPU: of the worker process while the round ran (its clock ticks are 10 ms, "
        "hence the rounds' size); for the service layer, of this process.")
    return [table]


if __name__ == "__main__":
    harness.main(__doc__, run, pg=None)
