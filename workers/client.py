"""The engine's external-task and message REST calls, as Camunda 7 documents them.

Short calls go through one `requests.Session` (pooled, thread-safe for our use).  The long
poll (`fetchAndLock` with `asyncResponseTimeout`) goes through `http.client` on a
connection of its own, because `stop()` must be able to cut a poll that the server holds
for up to half a minute, and requests offers no way to interrupt a blocked call.
"""
from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
from typing import Any, Mapping
from urllib.parse import urlsplit

import requests

Auth = tuple[str, str] | str | None


class EngineError(Exception):
    """The engine answered with an error status; `type` is Camunda's exception type."""

    def __init__(self, status: int, type_: str | None, message: str):
        super().__init__(f"{status} {type_ or 'error'}: {message}")
        self.status = status
        self.type = type_
        self.message = message


class EngineUnavailable(Exception):
    """The engine could not be reached (connection refused, reset, timeout, 502-504)."""


class PollInterrupted(Exception):
    """`interrupt()` cut the long poll (the worker is stopping)."""


def authorization(auth: Auth) -> dict:
    """HTTP Basic for a (user, password) pair, Bearer for a token string."""
    if auth is None:
        return {}
    if isinstance(auth, str):
        return {"Authorization": f"Bearer {auth}"}
    user, password = auth
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _raise_for(status: int, body: bytes) -> None:
    if status < 400:
        return
    if status in (502, 503, 504):
        raise EngineUnavailable(f"engine answered {status}")
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    raise EngineError(status, data.get("type"), data.get("message") or body[:300].decode("utf-8", "replace"))


class EngineClient:
    def __init__(self, base_url: str, auth: Auth = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json", "Accept": "application/json", **authorization(auth)}
        self._session = requests.Session()
        self._poll_lock = threading.Lock()
        self._poll_conn: http.client.HTTPConnection | None = None
        self._interrupted = False

    # --- short calls -------------------------------------------------------------------

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        try:
            response = self._session.post(self.base_url + path, data=json.dumps(body or {}),
                                          headers=self.headers, timeout=self.timeout)
        except requests.RequestException as err:
            raise EngineUnavailable(f"{self.base_url}{path}: {err}") from None
        _raise_for(response.status_code, response.content)
        return response.json() if response.content else None

    def complete(self, task_id: str, worker_id: str, variables: dict, local_variables: dict | None = None) -> None:
        body = {"workerId": worker_id, "variables": variables}
        if local_variables:
            body["localVariables"] = local_variables
        self.post(f"/external-task/{task_id}/complete", body)

    def failure(self, task_id: str, worker_id: str, message: str, details: str | None,
                retries: int, retry_timeout_ms: int) -> None:
        self.post(f"/external-task/{task_id}/failure",
                  {"workerId": worker_id, "errorMessage": message, "errorDetails": details,
                   "retries": retries, "retryTimeout": retry_timeout_ms})

    def bpmn_error(self, task_id: str, worker_id: str, code: str, message: str | None, variables: dict) -> None:
        body = {"workerId": worker_id, "errorCode": code, "variables": variables}
        if message is not None:
            body["errorMessage"] = message
        self.post(f"/external-task/{task_id}/bpmnError", body)

    def extend_lock(self, task_id: str, worker_id: str, new_duration_ms: int) -> None:
        self.post(f"/external-task/{task_id}/extendLock", {"workerId": worker_id, "newDuration": new_duration_ms})

    def unlock(self, task_id: str) -> None:
        self.post(f"/external-task/{task_id}/unlock")

    def correlate_message(self, name: str, business_key: str | None = None,
                          process_variables: dict | None = None, message_id: str | None = None,
                          correlation_keys: dict | None = None) -> Any:
        body: dict[str, Any] = {"messageName": name}
        if business_key is not None:
            body["businessKey"] = business_key
        if correlation_keys:
            body["correlationKeys"] = correlation_keys
        if process_variables:
            body["processVariables"] = process_variables
        if message_id is not None:
            body["messageId"] = message_id     # extension: the same id twice is delivered once
        return self.post("/message", body)

    # --- the long poll -----------------------------------------------------------------

    def fetch_and_lock(self, body: Mapping[str, Any]) -> list[dict]:
        """POST /external-task/fetchAndLock; waits up to body['asyncResponseTimeout'] ms."""
        wait = (body.get("asyncResponseTimeout") or 0) / 1000
        conn = self._connection(timeout=wait + self.timeout)
        try:
            conn.connect()      # connected before it is registered, so interrupt() always finds the socket
        except OSError as err:
            raise EngineUnavailable(f"{self.base_url}: {err}") from None
        with self._poll_lock:
            if self._interrupted:
                conn.close()
                raise PollInterrupted()
            self._poll_conn = conn
        try:
            path = urlsplit(self.base_url).path + "/external-task/fetchAndLock"
            conn.request("POST", path, body=json.dumps(body).encode(), headers=self.headers)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as err:
            if self._interrupted:
                raise PollInterrupted() from None
            raise EngineUnavailable(f"{self.base_url}/external-task/fetchAndLock: {err}") from None
        finally:
            with self._poll_lock:
                self._poll_conn = None
            conn.close()
        _raise_for(response.status, data)
        return json.loads(data or b"[]")

    def interrupt(self) -> None:
        """Cut the running long poll and refuse new ones (for shutdown)."""
        with self._poll_lock:
            self._interrupted = True
            conn = self._poll_conn
        if conn is not None and conn.sock is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        parts = urlsplit(self.base_url)
        if parts.scheme == "https":
            return http.client.HTTPSConnection(parts.hostname, parts.port or 443, timeout=timeout)
        return http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)

    def close(self) -> None:
        self._session.close()
