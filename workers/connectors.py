"""The declarative HTTP connector: one handler per configured topic that calls a department
system and maps process variables to a JSON request and the JSON answer back.

    process variables --request mapping--> HTTP call (Idempotency-Key: <external task id>)
    answer --error rules--> BpmnError | Failure      answer --response mapping, checks--> variables

The external task id is the idempotency key: when a lock runs out or a worker dies after
the department system acted, the next attempt carries the same key and the system answers
as before instead of, say, engraving a second seal.

Outcomes without a matching error rule: 5xx, 408, 425, 429, timeouts and refused connections
are transient (retried with backoff); any other 4xx, an answer that is not JSON or lacks a
mapped field, and a value that fails its check are not (an incident at once: retrying the
same request cannot help, someone must look).
"""
from __future__ import annotations

import json
import logging
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import quote

import requests

from . import credit_code
from .config import TASK_FIELDS, TRANSIENT_STATUSES, ConnectorsConfig, TopicConfig, placeholders, variable_roots
from .runtime import Worker
from .task import BpmnError, ExternalTask, Failure

log = logging.getLogger("approvals.workers.connectors")

# Checks a configuration may apply to a mapped response value: name -> problem(value) or None.
CHECKS: dict[str, Callable[[Any], str | None]] = {
    "credit_code": credit_code.problem,
    "non_empty": lambda value: None if value not in (None, "", [], {}) else "is empty",
}

_MISSING = object()


def lookup(data: Any, path: str) -> Any:
    """`a.b.0` in nested dicts and lists; `_MISSING` when absent; `""` is the whole value."""
    if path in ("", "."):
        return data
    for part in path.split("."):
        if isinstance(data, Mapping) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return _MISSING
    return data


def _assign(body: dict, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        body = body.setdefault(part, {})
    body[last] = value


class HttpConnector:
    """The handler for one topic (callable as `handler(task) -> variables`)."""

    def __init__(self, topic: TopicConfig, session: requests.Session | None = None) -> None:
        self.topic = topic
        self.system = topic.system
        self.session = session or requests.Session()

    def __call__(self, task: ExternalTask) -> dict:
        response = self._send(task)
        body = self._json(response)
        self._apply_error_rules(response.status_code, body)
        if response.status_code >= 400:
            self._unmapped_error(response, body)
        return self._map_response(body)

    # --- request ---------------------------------------------------------------------------

    def source(self, task: ExternalTask, source: Any, target: str) -> Any:
        if not isinstance(source, str):
            return source
        if source.startswith("="):
            return source[1:]
        optional, name = source.endswith("?"), source.rstrip("?")
        if name in TASK_FIELDS:
            value = getattr(task, TASK_FIELDS[name])
            value = _MISSING if value is None else value
        else:
            value = lookup(task.variables, name)
        if value is _MISSING and not optional:
            raise Failure(f"{self.topic.topic}: {name} is missing on the case; the connector for "
                          f"{self.system.name} maps it to {target!r} (mark it optional with '{name}?' "
                          f"in {self.topic.topic}'s request mapping if it may be absent)", retries=0)
        return value

    def build_request(self, task: ExternalTask) -> tuple[str, dict]:
        path = self.topic.path
        for placeholder in sorted(set(placeholders(path))):
            value = self.source(task, placeholder, "path")
            path = path.replace("{" + placeholder + "}", quote(str(value), safe=""))
        body: dict = {}
        for target, source in self.topic.request.items():
            value = self.source(task, source, target)
            if value is not _MISSING:
                _assign(body, target, value)
        return self.system.base_url + path, body

    def _send(self, task: ExternalTask) -> requests.Response:
        url, body = self.build_request(task)
        headers = {"Accept": "application/json", "Idempotency-Key": task.id,
                   **self.system.headers, **self.system.auth.headers()}
        as_query = self.topic.method in ("GET", "DELETE")
        try:
            return self.session.request(self.topic.method, url, params=body if as_query else None,
                                        json=None if as_query else body, headers=headers,
                                        timeout=self.system.timeout_s)
        except requests.Timeout:
            raise Failure(f"{self.system.name}: no answer from {url} within {self.system.timeout_s:g} s") from None
        except requests.RequestException as err:
            raise Failure(f"{self.system.name}: cannot reach {url}: {err}") from None

    # --- answer ----------------------------------------------------------------------------

    def _json(self, response: requests.Response) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            if response.status_code < 400:
                raise Failure(f"{self.system.name} answered {response.status_code} with a body that is not JSON",
                              details=response.text[:2000], retries=0) from None
            return None

    def _apply_error_rules(self, status: int, body: Any) -> None:
        code = lookup(body, self.system.error_code_field) if isinstance(body, Mapping) else _MISSING
        code = None if code is _MISSING else code
        message = lookup(body, self.system.error_message_field) if isinstance(body, Mapping) else _MISSING
        message = None if message is _MISSING else str(message)
        for rule in self.topic.errors:
            if not rule.matches(status, code):
                continue
            summary = f"{self.system.name} answered {status}" + (f" {code}" if code else "") + \
                      (f": {message}" if message else "")
            if rule.bpmn_error:
                variables = {name: value for name, path in rule.variables.items()
                             if (value := lookup(body, path)) is not _MISSING}
                raise BpmnError(rule.bpmn_error, message or summary, variables)
            raise Failure(summary, details=_excerpt(body), retries=None if rule.retry else 0)

    def _unmapped_error(self, response: requests.Response, body: Any) -> None:
        status = response.status_code
        transient = status >= 500 or status in TRANSIENT_STATUSES
        detail = _excerpt(body) if body is not None else response.text[:2000]
        raise Failure(f"{self.system.name} answered {status} {response.reason or ''}".rstrip()
                      + ("" if transient else " (not retried: fix the request or the mapping, then set retries)"),
                      details=detail, retries=None if transient else 0)

    def _map_response(self, body: Any) -> dict:
        variables = {}
        for variable, path in self.topic.response.items():
            optional = path.endswith("?")
            value = lookup(body, path.rstrip("?"))
            if value is _MISSING:
                if optional:
                    continue
                raise Failure(f"{self.system.name}'s answer has no {path!r} (mapped to {variable})",
                              details=_excerpt(body), retries=0)
            variables[variable] = value
        for variable, check in self.topic.checks.items():
            if variable in variables and (problem := CHECKS[check](variables[variable])):
                raise Failure(f"{self.system.name} returned an invalid {variable}: {problem}",
                              details=_excerpt(body), retries=0)
        return variables


def _excerpt(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False)[:2000]


# --- wiring --------------------------------------------------------------------------------

def build_worker(config: ConnectorsConfig, topics: Iterable[str] | None = None, **overrides) -> Worker:
    """A worker subscribed to the configured topics (all, or the named ones)."""
    engine = config.engine
    options = dict(auth=engine.auth.as_client_auth(), worker_id=engine.worker_id, max_tasks=engine.max_tasks,
                   threads=engine.threads, lock_duration=engine.lock_duration_ms,
                   async_response_timeout=engine.async_response_timeout_ms, retry=config.retry,
                   shutdown_grace=engine.shutdown_grace_s)
    options.update(overrides)
    worker = Worker(engine.base_url, **options)
    subscribe(worker, config, topics)
    return worker


def subscribe(worker: Worker, config: ConnectorsConfig, topics: Iterable[str] | None = None) -> None:
    wanted = list(topics) if topics is not None else list(config.topics)
    unknown = [t for t in wanted if t not in config.topics]
    if unknown:
        raise ValueError(f"no connector configured for topic(s) {', '.join(unknown)} in {config.path} "
                         f"(configured: {', '.join(config.topics)})")
    sessions: dict[str, requests.Session] = {}
    for name in wanted:
        topic = config.topics[name]
        session = sessions.setdefault(topic.system.name, requests.Session())
        # a call waits up to timeout_s to connect and timeout_s for each read of the answer: a
        # handler still running after twice that is stuck (an answer trickling in, a hung name lookup)
        worker.subscribe(name, variables=variable_roots(topic), lock_duration=topic.lock_duration_ms,
                         retry=topic.retry, handler=HttpConnector(topic, session),
                         handler_timeout=2 * topic.system.timeout_s)
