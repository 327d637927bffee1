"""The connector configuration (`workers/connectors.toml`): which engine the workers poll,
which department system serves which topic and how, and how the sandbox behaves.

Every string may use `${VAR}` (required) or `${VAR:-default}` (environment variables; a
default may hold another `${...}`), so the same file points at the sandbox on a laptop and
at real systems in production.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .client import Auth, authorization
from .runtime import RetryPolicy

DEFAULT_PATH = Path(__file__).resolve().parent / "connectors.toml"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Task attributes a mapping may read besides process variables.
TASK_FIELDS = {"$taskId": "id", "$businessKey": "business_key", "$processInstanceId": "process_instance_id",
               "$processDefinitionKey": "process_definition_key", "$activityId": "activity_id",
               "$topic": "topic_name"}
TRANSIENT_STATUSES = frozenset({408, 425, 429})


class ConfigError(ValueError):
    """The connector file is wrong; the message names the file and the key."""


@dataclass(frozen=True)
class AuthConfig:
    type: str = "none"                  # none | basic | bearer | header
    user: str | None = None
    password: str | None = None
    token: str | None = None
    header: str | None = None           # for type = "header": e.g. X-Api-Key
    value: str | None = None

    def headers(self) -> dict:
        if self.type == "basic":
            return authorization((self.user or "", self.password or ""))
        if self.type == "bearer":
            return authorization(self.token or "")
        if self.type == "header":
            return {self.header: self.value or ""}
        return {}

    def as_client_auth(self) -> Auth:
        if self.type == "basic":
            return (self.user or "", self.password or "")
        if self.type == "bearer":
            return self.token
        return None


@dataclass(frozen=True)
class EngineConfig:
    base_url: str
    auth: AuthConfig
    worker_id: str | None = None
    max_tasks: int = 16
    threads: int | None = None
    lock_duration_ms: int = 30_000
    async_response_timeout_ms: int = 20_000
    shutdown_grace_s: float = 10.0


@dataclass(frozen=True)
class SystemConfig:
    name: str
    base_url: str
    auth: AuthConfig = AuthConfig()
    timeout_s: float = 10.0
    headers: Mapping[str, str] = field(default_factory=dict)
    error_code_field: str = "code"
    error_message_field: str = "message"


@dataclass(frozen=True)
class ErrorRule:
    """What an answer means: match `status` (any of) and/or the body's error `code`; then raise
    `bpmn_error`, or fail with (`retry` true) or without (`retry` false) further retries."""
    status: frozenset | None = None
    code: str | None = None
    bpmn_error: str | None = None
    retry: bool | None = None
    variables: Mapping[str, str] = field(default_factory=dict)

    def matches(self, status: int, code: Any) -> bool:
        if self.status is None and self.code is None:
            return False
        if 200 <= status < 300 and self.code is None:
            return False            # a plain success never matches a status-less rule
        return (self.status is None or status in self.status) and (self.code is None or code == self.code)


@dataclass(frozen=True)
class TopicConfig:
    topic: str
    system: SystemConfig
    method: str
    path: str
    request: Mapping[str, Any] = field(default_factory=dict)
    response: Mapping[str, str] = field(default_factory=dict)
    errors: tuple[ErrorRule, ...] = ()
    checks: Mapping[str, str] = field(default_factory=dict)
    variables: tuple[str, ...] | None = None
    lock_duration_ms: int | None = None
    retry: RetryPolicy | None = None


@dataclass(frozen=True)
class SandboxConfig:
    host: str = "127.0.0.1"
    port: int = 8081
    latency_ms: tuple[int, int] = (0, 0)
    failure_rate: float = 0.0
    token: str | None = None
    callback_delay_s: float = 2.0
    callback_attempts: int = 8
    engine_url: str = "http://127.0.0.1:8080/engine-rest"
    engine_auth: AuthConfig = AuthConfig()


@dataclass(frozen=True)
class ConnectorsConfig:
    path: Path
    engine: EngineConfig
    retry: RetryPolicy
    systems: Mapping[str, SystemConfig]
    topics: Mapping[str, TopicConfig]
    sandbox: SandboxConfig


# --- loading -----------------------------------------------------------------------------

def load(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> ConnectorsConfig:
    path = Path(path or os.environ.get("APPROVALS_CONNECTORS") or DEFAULT_PATH)
    env = os.environ if env is None else env
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such connector file (set APPROVALS_CONNECTORS or pass --config)") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    data = _substitute(raw, env, path, "")
    return parse(data, path, env)


def parse(data: Mapping[str, Any], path: Path, env: Mapping[str, str]) -> ConnectorsConfig:
    where = _Where(path)
    engine = _engine(data.get("engine", {}), where.at("engine"), env)
    retry = _retry(data.get("retry", {}), where.at("retry")) or RetryPolicy()
    systems = {name: _system(name, table, where.at(f"systems.{name}"))
               for name, table in _table(data, "systems", where).items()}
    topics = {name: _topic(name, table, systems, where.at(f'topics."{name}"'))
              for name, table in _table(data, "topics", where).items()}
    sandbox = _sandbox(data.get("sandbox", {}), where.at("sandbox"), engine)
    unknown = set(data) - {"engine", "retry", "systems", "topics", "sandbox"}
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}")
    return ConnectorsConfig(path, engine, retry, systems, topics, sandbox)


def engine_auth_from_env(env: Mapping[str, str]) -> AuthConfig:
    """WORKER_TOKEN (Bearer), else WORKER_USER + WORKER_PASSWORD, else admin + ADMIN_PASSWORD."""
    if env.get("WORKER_TOKEN"):
        return AuthConfig("bearer", token=env["WORKER_TOKEN"])
    if env.get("WORKER_USER"):
        return AuthConfig("basic", user=env["WORKER_USER"], password=env.get("WORKER_PASSWORD", ""))
    if env.get("ADMIN_PASSWORD"):
        return AuthConfig("basic", user="admin", password=env["ADMIN_PASSWORD"])
    return AuthConfig()


class _Where:
    def __init__(self, path: Path, key: str = "") -> None:
        self.path, self.key = path, key

    def at(self, key: str) -> "_Where":
        return _Where(self.path, f"{self.key}.{key}" if self.key else key)

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: [{self.key}] {message}")


def _substitute(value: Any, env: Mapping[str, str], path: Path, key: str) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, env, path, f"{key}.{k}" if key else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, env, path, key) for v in value]
    if not isinstance(value, str):
        return value
    text, end = _expand(value, 0, env, path, key, inside=False)
    return text


def _expand(text: str, i: int, env: Mapping[str, str], path: Path, key: str, inside: bool) -> tuple[str, int]:
    """Expand `${VAR}` and `${VAR:-default}` (defaults may nest) from position i; inside a
    default, stop at its closing brace.  Returns the text and the position after it."""
    out = []
    while i < len(text):
        if text.startswith("${", i):
            match = _NAME.match(text, i + 2)
            if match is None:
                raise ConfigError(f"{path}: {key}: '${{' at position {i} does not start ${{NAME}} or ${{NAME:-default}}")
            name, i = match.group(0), match.end()
            default = None
            if text.startswith(":-", i):
                default, i = _expand(text, i + 2, env, path, key, inside=True)
            elif text.startswith("}", i):
                i += 1
            else:
                raise ConfigError(f"{path}: {key}: ${{{name} is not closed with '}}'")
            if env.get(name):
                out.append(env[name])
            elif default is not None:
                out.append(default)
            else:
                raise ConfigError(f"{path}: {key} needs the environment variable {name} "
                                  f"(or write ${{{name}:-default}})")
        elif inside and text[i] == "}":
            return "".join(out), i + 1
        else:
            out.append(text[i])
            i += 1
    if inside:
        raise ConfigError(f"{path}: {key}: a ${{NAME:-default}} is not closed with '}}'")
    return "".join(out), i


def _table(data: Mapping, key: str, where: _Where) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise where.at(key).error("must be a table")
    return value


def _auth(value: Any, where: _Where) -> AuthConfig:
    if value is None:
        return AuthConfig()
    if not isinstance(value, dict):
        raise where.error("auth must be a table like { type = \"bearer\", token = \"...\" }")
    kind = value.get("type", "none")
    needed = {"none": (), "basic": ("user", "password"), "bearer": ("token",), "header": ("header", "value")}
    if kind not in needed:
        raise where.error(f"auth type {kind!r} is not one of {', '.join(needed)}")
    missing = [k for k in needed[kind] if value.get(k) in (None, "") and not (k == "password" and k in value)]
    if missing:
        raise where.error(f"auth type {kind!r} needs {', '.join(missing)}")
    return AuthConfig(kind, **{k: value.get(k) for k in ("user", "password", "token", "header", "value")})


def _engine(table: Mapping, where: _Where, env: Mapping[str, str]) -> EngineConfig:
    auth = _auth(table["auth"], where) if "auth" in table else engine_auth_from_env(env)
    return EngineConfig(
        base_url=str(table.get("base_url", "http://127.0.0.1:8080/engine-rest")).rstrip("/"), auth=auth,
        worker_id=table.get("worker_id") or None, max_tasks=_int(table, "max_tasks", 16, where),
        threads=_int(table, "threads", None, where),
        lock_duration_ms=_int(table, "lock_duration_ms", 30_000, where),
        async_response_timeout_ms=_int(table, "async_response_timeout_ms", 20_000, where),
        shutdown_grace_s=float(table.get("shutdown_grace_s", 10.0)))


def _int(table: Mapping, key: str, default: int | None, where: _Where) -> int | None:
    value = table.get(key, default)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise where.error(f"{key} must be a whole number, got {value!r}") from None


def _retry(table: Mapping | None, where: _Where) -> RetryPolicy | None:
    if not table:
        return None
    base = RetryPolicy()
    return RetryPolicy(retries=_int(table, "retries", base.retries, where),
                       initial_ms=_int(table, "initial_backoff_ms", base.initial_ms, where),
                       factor=float(table.get("backoff_factor", base.factor)),
                       max_ms=_int(table, "max_backoff_ms", base.max_ms, where))


def _system(name: str, table: Mapping, where: _Where) -> SystemConfig:
    if "base_url" not in table:
        raise where.error("needs base_url")
    return SystemConfig(name=name, base_url=str(table["base_url"]).rstrip("/"), auth=_auth(table.get("auth"), where),
                        timeout_s=float(table.get("timeout_s", 10.0)), headers=dict(table.get("headers", {})),
                        error_code_field=table.get("error_code_field", "code"),
                        error_message_field=table.get("error_message_field", "message"))


def _topic(name: str, table: Mapping, systems: Mapping[str, SystemConfig], where: _Where) -> TopicConfig:
    system = systems.get(table.get("system"))
    if system is None:
        raise where.error(f"system {table.get('system')!r} is not defined under [systems] "
                          f"(defined: {', '.join(sorted(systems)) or 'none'})")
    method = str(table.get("method", "POST")).upper()
    if method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        raise where.error(f"method {method!r} is not an HTTP method")
    request, response = dict(table.get("request", {})), dict(table.get("response", {}))
    for target, source in request.items():
        check_source(source, where.at(f"request.{target}"))
    for source in placeholders(table.get("path", "")):
        check_source(source, where.at("path"))
    checks = dict(table.get("checks", {}))
    from .connectors import CHECKS
    for variable, check in checks.items():
        if check not in CHECKS:
            raise where.at("checks").error(f"{variable}: unknown check {check!r} (known: {', '.join(CHECKS)})")
    errors = tuple(_error_rule(rule, where.at(f"errors[{i}]")) for i, rule in enumerate(table.get("errors", [])))
    variables = table.get("variables")
    return TopicConfig(topic=name, system=system, method=method, path=str(table.get("path", "")),
                       request=request, response=response, errors=errors, checks=checks,
                       variables=tuple(variables) if variables is not None else None,
                       lock_duration_ms=_int(table, "lock_duration_ms", None, where),
                       retry=_retry(table.get("retry"), where.at("retry")))


def _error_rule(rule: Mapping, where: _Where) -> ErrorRule:
    status = rule.get("status")
    if status is not None:
        status = frozenset(status if isinstance(status, list) else [status])
        if not all(isinstance(s, int) and 100 <= s <= 599 for s in status):
            raise where.error(f"status must be an HTTP status or a list of them, got {rule.get('status')!r}")
    if status is None and rule.get("code") is None:
        raise where.error("an error rule needs status and/or code to match")
    if (rule.get("bpmn_error") is None) == (rule.get("retry") is None):
        raise where.error("an error rule needs exactly one of bpmn_error = \"CODE\" or retry = true|false")
    return ErrorRule(status=status, code=rule.get("code"), bpmn_error=rule.get("bpmn_error"),
                     retry=rule.get("retry"), variables=dict(rule.get("variables", {})))


def _sandbox(table: Mapping, where: _Where, engine: EngineConfig) -> SandboxConfig:
    base = SandboxConfig()
    return SandboxConfig(
        host=table.get("host", base.host), port=_int(table, "port", base.port, where),
        latency_ms=parse_latency(table.get("latency_ms", "0"), where),
        failure_rate=parse_rate(table.get("failure_rate", 0.0), where), token=table.get("token") or None,
        callback_delay_s=float(table.get("callback_delay_s", base.callback_delay_s)),
        callback_attempts=_int(table, "callback_attempts", base.callback_attempts, where),
        engine_url=str(table.get("engine_url", engine.base_url)).rstrip("/"),
        engine_auth=_auth(table["engine_auth"], where) if "engine_auth" in table else engine.auth)


def parse_latency(value: Any, where: _Where | None = None) -> tuple[int, int]:
    """`150` or `"50-300"` (milliseconds) -> (low, high)."""
    try:
        low, _, high = str(value).partition("-")
        pair = (int(float(low)), int(float(high or low)))
    except ValueError:
        pair = (-1, -1)
    if not 0 <= pair[0] <= pair[1]:
        message = f"latency must be milliseconds like 150 or \"50-300\", got {value!r}"
        raise where.error(message) if where else ConfigError(message)
    return pair


def parse_rate(value: Any, where: _Where | None = None) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        message = f"failure rate must be between 0 and 1, got {value!r}"
        raise where.error(message) if where else ConfigError(message)
    return rate


# --- mapping sources -----------------------------------------------------------------------

def check_source(source: Any, where: _Where) -> None:
    """A request source is a process variable path (`applicant.name`, `?` = optional), a task
    attribute (`$businessKey`), a literal string (`=营业执照`) or any non-string TOML value."""
    if not isinstance(source, str):
        return
    name = source.rstrip("?")
    if name.startswith("$") and name not in TASK_FIELDS:
        raise where.error(f"{source!r}: unknown task attribute; use one of {', '.join(TASK_FIELDS)}")
    if not name or (name.startswith("=") and source.endswith("?")):
        raise where.error(f"{source!r} is not a variable, task attribute or =literal")


def placeholders(path: str) -> list[str]:
    return re.findall(r"\{([^}]+)\}", path)


def variable_roots(topic: TopicConfig) -> list[str]:
    """The process variables a topic's request reads (fetched with the task)."""
    if topic.variables is not None:
        return list(topic.variables)
    names = []
    for source in [*topic.request.values(), *placeholders(topic.path)]:
        if isinstance(source, str) and not source.startswith(("$", "=")):
            root = source.rstrip("?").split(".")[0]
            if root not in names:
                names.append(root)
    return names
