"""Settings read once from the environment (12-factor); tests build their own."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class Settings:
    database_url: str = f"sqlite:///{ROOT / 'instance' / 'approvals.db'}"
    host: str = "127.0.0.1"
    port: int = 8080
    admin_password: str | None = None
    test_clock: bool = False
    timezone: str = "Asia/Shanghai"
    max_content_length: int = 10 * 1024 * 1024
    # Script tasks run designer code; off unless a deployment or the operator enables them.
    script_tasks_enabled: bool = False
    workflow_cache_size: int = 256
    # Fire timers in this process (every server process does; tests may switch it off).
    timers_enabled: bool = True
    # Login failure handling (等保 登录失败处理): this many wrong passwords in a row lock the
    # account for `login_lock_minutes`; an administrator may unlock it sooner.
    login_max_attempts: int = 5
    login_lock_minutes: int = 15
    # Supervisors (督查): this group's members read every department's tasks, legal clocks
    # and statistics (engine/authz.py); the shipped models offer their escalations to it.
    supervisors_group: str = "supervisors"
    bpmn_dir: Path = ROOT / "bpmn"
    forms_dir: Path = ROOT / "forms"
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict | None = None) -> "Settings":
        env = os.environ if env is None else env
        s = cls()
        s.database_url = database_url(env.get("DATABASE_URL") or s.database_url)
        s.host = env.get("HOST") or s.host
        s.port = int(env.get("PORT") or s.port)
        s.admin_password = env.get("ADMIN_PASSWORD") or None
        s.test_clock = _flag(env.get("APPROVALS_TEST_CLOCK"))
        s.timezone = env.get("APPROVALS_TIMEZONE") or s.timezone
        s.max_content_length = int(env.get("APPROVALS_MAX_BODY") or s.max_content_length)
        s.script_tasks_enabled = _flag(env.get("APPROVALS_SCRIPT_TASKS"))
        s.workflow_cache_size = int(env.get("APPROVALS_WORKFLOW_CACHE") or s.workflow_cache_size)
        s.timers_enabled = not _flag(env.get("APPROVALS_NO_TIMERS"))
        if (env.get("APPROVALS_LOGIN_MAX_ATTEMPTS") or "").strip():          # 0: never lock
            s.login_max_attempts = int(env["APPROVALS_LOGIN_MAX_ATTEMPTS"])
        s.login_lock_minutes = int(env.get("APPROVALS_LOGIN_LOCK_MINUTES") or s.login_lock_minutes)
        s.supervisors_group = (env.get("APPROVALS_SUPERVISORS_GROUP") or "").strip() or s.supervisors_group
        if s.supervisors_group in _NOT_SUPERVISORS:
            raise SystemExit(f"APPROVALS_SUPERVISORS_GROUP={s.supervisors_group!r}: {_NOT_SUPERVISORS[s.supervisors_group]} "
                             "cannot be the supervisors (督查), who read every department's tasks, clocks and "
                             "statistics; name the supervisors' own group")
        return s

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


# groups that must not read every department (engine/authz.py; identity's fixed groups)
_NOT_SUPERVISORS = {"applicants": "the public (applicants)", "external-workers": "the department systems' workers"}


def database_url(url: str) -> str:
    """DATABASE_URL as SQLAlchemy reads it: `postgres://` and `postgresql://` (the forms
    hosting platforms and libpq write) name the psycopg driver this server ships with."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme):]
    return url
