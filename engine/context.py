"""The engine's long-lived parts, built once per process: database, caches, script
engine.  Services receive a unit of work whose `ctx` is this object."""
from __future__ import annotations

from .calendars import CalendarStore
from .clock import clock
from .configs import ConfigCache
from .config import Settings
from .db import UnitOfWork, WalCheckpointer, check_migrated, commits_reads, make_engine, session_factories
from .definitions import Definitions
from .expressions import expression_functions
from .identity import AuditThrottle
from .script_engine import ApprovalScriptEngine
from .timers import route_spiffworkflow_clock
from .variables import set_display_zone
from .workflows import WorkflowCache, quiet_spiffworkflow_logs


class Engine:
    def __init__(self, settings: Settings, check_schema: bool = True) -> None:
        self.settings = settings
        self.clock = clock
        set_display_zone(settings.timezone)
        self.db = make_engine(settings.database_url)
        if check_schema:
            check_migrated(self.db)
        self._read, self._write = session_factories(self.db)
        self._commit_reads = commits_reads(self.db)
        self.checkpointer = WalCheckpointer.for_engine(self.db)             # SQLite files only
        self.definitions = Definitions()
        self.calendars = CalendarStore(self)
        self.configs = ConfigCache()
        if check_schema:
            self.calendars.seed()
        self.workflows = WorkflowCache(settings.workflow_cache_size)
        self.script_engine = ApprovalScriptEngine(expression_functions(self),
                                                  scripts_enabled=settings.script_tasks_enabled)
        route_spiffworkflow_clock(settings.timezone)
        quiet_spiffworkflow_logs()
        self.timer_listeners: list = []
        self.login_refusals = AuditThrottle()           # engine.identity.record_login

    def timer_scheduled(self, due) -> None:
        """A command committed a timer due at `due` (naive UTC): wake whoever fires timers."""
        for listener in self.timer_listeners:
            listener(due)

    def uow(self, write: bool = True) -> UnitOfWork:
        return UnitOfWork(self._write, self) if write else UnitOfWork(self._read, self, self._commit_reads)

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self.db.dispose()
