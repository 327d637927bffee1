"""A small in-memory stand-in for the engine's external-task endpoints, for unit tests of the
worker runtime's own behaviour (backoff, lock extension, error mapping, shutdown).

It keeps Camunda 7's rules that the runtime depends on: only the lock owner may complete,
fail, raise a BPMN error or extend; an expired lock refuses all of them; `retries` is null
until the first failure; a failure with retries 0 opens an incident and the task is no
longer fetched; `retryTimeout` hides the task until it runs out.  Integration tests in
test_integration.py run the same runtime against the real server.
"""
from __future__ import annotations

import itertools
import threading
import time

from flask import Flask, jsonify, request


class FakeEngine:
    def __init__(self, auth_header: str | None = None) -> None:
        self.auth_header = auth_header
        self.tasks: dict[str, dict] = {}
        self.calls: list[tuple[str, str | None, dict]] = []
        self.messages: list[dict] = []
        self.fail_fetches = 0                   # answer this many fetches with 503
        self.unmatched_messages = 0             # answer this many messages with 400 (nobody waits yet)
        self.no_waiting = False                 # answer long polls at once (a server with no thread free)
        self.trouble: dict[str, list[tuple[int, bool]]] = {}   # verb -> answers (status, done anyway) to give first
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self.app = self._build()

    # --- test helpers ------------------------------------------------------------------
    def add_task(self, topic: str, variables: dict | None = None, business_key: str | None = None,
                 priority: int = 0) -> str:
        with self._cond:
            task_id = f"task-{next(self._ids)}"
            self.tasks[task_id] = {"id": task_id, "topic": topic, "variables": variables or {},
                                   "businessKey": business_key, "priority": priority, "retries": None,
                                   "owner": None, "expires": 0.0, "available": 0.0, "state": "open",
                                   "errorMessage": None, "result": None}
            self._cond.notify_all()
        return task_id

    def calls_to(self, verb: str) -> list[tuple[str | None, dict]]:
        return [(task_id, body) for v, task_id, body in self.calls if v == verb]

    def wait_for(self, predicate, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()

    # --- protocol ----------------------------------------------------------------------
    def _fetchable(self, task: dict, topics: dict, now: float) -> bool:
        return (task["state"] == "open" and task["topic"] in topics and task["retries"] != 0
                and task["available"] <= now and (task["owner"] is None or task["expires"] <= now))

    def _lock_for(self, task_id: str, worker_id: str | None):
        task = self.tasks.get(task_id)
        if task is None or task["state"] != "open":
            return None, (jsonify(type="RestException", message=f"no external task {task_id}"), 404)
        if task["owner"] != worker_id or task["expires"] <= time.monotonic():
            return None, (jsonify(type="BadUserRequestException",
                                  message=f"task {task_id} is not locked by worker {worker_id}"), 400)
        return task, None

    def _build(self) -> Flask:
        app = Flask("fake-engine")
        fake = self

        @app.before_request
        def check_auth():
            if fake.auth_header and request.headers.get("Authorization") != fake.auth_header:
                return jsonify(type="AuthenticationException", message="unauthorized"), 401

        @app.post("/engine-rest/external-task/fetchAndLock")
        def fetch_and_lock():
            body = request.get_json()
            fake.calls.append(("fetchAndLock", None, body))
            if fake.fail_fetches > 0:
                fake.fail_fetches -= 1
                return jsonify(type="ServiceUnavailable", message="starting"), 503
            topics = {t["topicName"]: t for t in body["topics"]}
            deadline = time.monotonic() + (0 if fake.no_waiting else body.get("asyncResponseTimeout", 0) / 1000)
            with fake._cond:
                while True:
                    now = time.monotonic()
                    ready = [t for t in fake.tasks.values() if fake._fetchable(t, topics, now)]
                    if ready or now >= deadline:
                        break
                    fake._cond.wait(min(deadline - now, 0.02))
                ready.sort(key=lambda t: -t["priority"] if body.get("usePriority") else 0)
                locked = []
                for task in ready[: body["maxTasks"]]:
                    topic = topics[task["topic"]]
                    task["owner"], task["expires"] = body["workerId"], now + topic["lockDuration"] / 1000
                    names = topic.get("variables")
                    variables = {k: v for k, v in task["variables"].items() if names is None or k in names}
                    locked.append({"id": task["id"], "topicName": task["topic"], "workerId": body["workerId"],
                                   "businessKey": task["businessKey"], "retries": task["retries"],
                                   "priority": task["priority"], "errorMessage": task["errorMessage"],
                                   "processInstanceId": "pi-1", "activityId": "Activity_1",
                                   "variables": variables})
            return jsonify(locked)

        @app.post("/engine-rest/external-task/<task_id>/<verb>")
        def verb(task_id, verb):
            body = request.get_json(silent=True) or {}
            fake.calls.append((verb, task_id, body))
            if fake.trouble.get(verb):
                status, done = fake.trouble[verb].pop(0)
                if done:                        # the change was made, the answer lost (a 500 after commit)
                    act(task_id, verb, body)
                return jsonify(type="OptimisticLockingException" if status == 409 else "ProcessEngineException",
                               message=f"trouble {status}"), status
            return act(task_id, verb, body)

        def act(task_id, verb, body):
            with fake._cond:
                if verb == "unlock":
                    task = fake.tasks.get(task_id)
                    if task is None:
                        return jsonify(type="RestException", message="not found"), 404
                    task["owner"], task["expires"] = None, 0.0
                    fake._cond.notify_all()
                    return "", 204
                task, error = fake._lock_for(task_id, body.get("workerId"))
                if error:
                    return error
                if verb == "complete":
                    task["state"], task["result"] = "completed", body.get("variables")
                elif verb == "bpmnError":
                    task["state"], task["result"] = "bpmnError", body
                elif verb == "failure":
                    task["retries"], task["errorMessage"] = body["retries"], body.get("errorMessage")
                    task["owner"], task["expires"] = None, 0.0
                    task["available"] = time.monotonic() + body.get("retryTimeout", 0) / 1000
                    if body["retries"] == 0:
                        task["state"] = "incident"
                elif verb == "extendLock":
                    task["expires"] = time.monotonic() + body["newDuration"] / 1000
                else:
                    return jsonify(type="RestException", message=f"unknown verb {verb}"), 404
                fake._cond.notify_all()
            return "", 204

        @app.post("/engine-rest/message")
        def message():
            body = request.get_json()
            if fake.unmatched_messages > 0:
                fake.unmatched_messages -= 1
                return jsonify(type="RestException", message="Cannot correlate message: no subscription"), 400
            fake.messages.append({**body, "authorization": request.headers.get("Authorization")})
            return "", 204

        return app
