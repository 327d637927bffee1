"""Database tables.

The serialized workflow of a running case (`process_instance.state_json` with its tasks
in `instance_task`) is the truth; every other runtime table is a projection written in
the same transaction for queries.  An ended case keeps its history, not that state.
Times are naive UTC.  Alembic migrations in `migrations/` create exactly these tables.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (JSON, Boolean, Date, DateTime, Float, ForeignKey, Index, Integer, LargeBinary,
                        String, Text, UniqueConstraint, text, true)
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column

ID = String(64)


class Base(DeclarativeBase):
    pass


# --- repository -------------------------------------------------------------------

class Deployment(Base):
    __tablename__ = "deployment"
    __table_args__ = (Index("ux_deployment_seq", "seq", unique=True),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    # the order deployments were made in (1, 2, ...): "the latest" of anything deployed is by
    # this, not by deployment_time, which the test clock or a wall-clock step can move back
    seq: Mapped[int | None] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str | None] = mapped_column(String(255))
    tenant_id: Mapped[str | None] = mapped_column(String(64))
    deployment_time: Mapped[datetime] = mapped_column(DateTime, index=True)
    deployed_by: Mapped[str | None] = mapped_column(String(64))


class Resource(Base):
    __tablename__ = "resource"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployment.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))          # bpmn | form | other
    checksum: Mapped[str] = mapped_column(String(64), index=True)
    content: Mapped[bytes] = deferred(mapped_column(LargeBinary))


class ProcessDefinition(Base):
    __tablename__ = "process_definition"
    __table_args__ = (UniqueConstraint("key", "version", "tenant_id", name="uq_process_definition_key_version"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), index=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(String(255))
    version_tag: Mapped[str | None] = mapped_column(String(64))
    history_time_to_live: Mapped[int | None] = mapped_column(Integer)    # days (migration 0018)
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployment.id", ondelete="CASCADE"), index=True)
    resource_id: Mapped[str] = mapped_column(ForeignKey("resource.id", ondelete="CASCADE"))
    resource_name: Mapped[str] = mapped_column(String(255))
    tenant_id: Mapped[str | None] = mapped_column(String(64))
    # checksum of the process element's canonical XML: an unchanged process is not redeployed
    checksum: Mapped[str] = mapped_column(String(64))
    called_keys: Mapped[list] = mapped_column(JSON, default=list)   # call activities, transitively
    startable: Mapped[bool] = mapped_column(Boolean, default=True)
    suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    start_form: Mapped[dict | None] = mapped_column(JSON)            # {"formKey"} or {"formRef", "binding", "version"}
    properties: Mapped[dict] = mapped_column(JSON, default=dict)     # process-level camunda:properties
    description: Mapped[str | None] = mapped_column(Text)
    # camunda:candidateStarterGroups/Users as {"groups": [...], "users": [...]}; null: none declared
    starters: Mapped[dict | None] = mapped_column(JSON)


class FormDefinition(Base):
    __tablename__ = "form_definition"
    __table_args__ = (UniqueConstraint("key", "version", "tenant_id", name="uq_form_definition_key_version"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), index=True)       # the form's "id" in the .form JSON
    version: Mapped[int] = mapped_column(Integer)
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployment.id", ondelete="CASCADE"), index=True)
    resource_id: Mapped[str] = mapped_column(ForeignKey("resource.id", ondelete="CASCADE"))
    resource_name: Mapped[str] = mapped_column(String(255))
    tenant_id: Mapped[str | None] = mapped_column(String(64))
    checksum: Mapped[str] = mapped_column(String(64))


# --- runtime ----------------------------------------------------------------------

class ProcessInstance(Base):
    """Runtime and history in one row: `state` says which."""
    __tablename__ = "process_instance"
    # the lists of cases in their order, ties included (migration 0017; engine/history.py)
    __table_args__ = (Index("ix_process_instance_start_time_id", "start_time", "id"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    definition_id: Mapped[str] = mapped_column(ForeignKey("process_definition.id"), index=True)
    definition_key: Mapped[str] = mapped_column(String(255), index=True)
    business_key: Mapped[str | None] = mapped_column(String(255), index=True)
    state: Mapped[str] = mapped_column(String(32), index=True)   # ACTIVE | SUSPENDED | COMPLETED | EXTERNALLY_TERMINATED | INTERNALLY_TERMINATED
    start_time: Mapped[datetime] = mapped_column(DateTime)
    end_time: Mapped[datetime | None] = mapped_column(DateTime)
    start_user_id: Mapped[str | None] = mapped_column(String(64), index=True)
    start_activity_id: Mapped[str | None] = mapped_column(String(255))
    end_activity_id: Mapped[str | None] = mapped_column(String(255))
    delete_reason: Mapped[str | None] = mapped_column(Text)
    tenant_id: Mapped[str | None] = mapped_column(String(64))
    # definition ids pinned for each called process key at start (call activities)
    called_definitions: Mapped[dict] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    state_json: Mapped[str | None] = deferred(mapped_column(Text))
    audit_head: Mapped[str | None] = mapped_column(String(64))
    audit_seq: Mapped[int] = mapped_column(Integer, default=0)


class InstanceTask(Base):
    """One task of an instance's state: SpiffWorkflow's JSON of the task.  The rest of the
    state is `process_instance.state_json`, whose "tasks" mappings are left empty; a
    command writes only the tasks it changed, so its cost does not grow with the tasks
    the case has finished (bench/bench_flatness.py)."""
    __tablename__ = "instance_task"
    instance_id: Mapped[str] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"), primary_key=True)
    task_id: Mapped[str] = mapped_column(ID, primary_key=True)
    workflow_id: Mapped[str | None] = mapped_column(ID)      # the subprocess's (its calling task's id); None: the process
    seq: Mapped[int] = mapped_column(Integer)                 # order of the tasks in their workflow
    body: Mapped[str] = mapped_column(Text)


class UserTask(Base):
    __tablename__ = "user_task"
    # a department's queue (unassigned, in creation order) and an officer's own tasks are
    # read a page at a time along the first index (migration 0009); a queue by due date
    # along the second, which holds the unassigned tasks in the list's order (migration 0010);
    # the tasks an officer delegated (委派) along the third, one way a task is visible, and the
    # delegated tasks (delegationState) along the fourth, which holds them only (migration 0020)
    __table_args__ = (Index("ix_user_task_assignee_created", "assignee", "created"),
                      Index("ix_user_task_queue_due", "due", "id", sqlite_where=text("assignee IS NULL"),
                            postgresql_where=text("assignee IS NULL")),
                      Index("ix_user_task_owner", "owner"),
                      Index("ix_user_task_delegated", "delegation_state",
                            sqlite_where=text("delegation_state IS NOT NULL"),
                            postgresql_where=text("delegation_state IS NOT NULL")))
    id: Mapped[str] = mapped_column(ID, primary_key=True)           # the SpiffWorkflow task id
    instance_id: Mapped[str] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"), index=True)
    definition_id: Mapped[str] = mapped_column(String(64))
    definition_key: Mapped[str] = mapped_column(String(255), index=True)
    task_definition_key: Mapped[str] = mapped_column(String(255), index=True)
    activity_instance_id: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    assignee: Mapped[str | None] = mapped_column(String(64))
    owner: Mapped[str | None] = mapped_column(String(64))        # who delegated it (委派), Camunda's owner
    delegation_state: Mapped[str | None] = mapped_column(String(16))     # PENDING | RESOLVED (migration 0020)
    priority: Mapped[int] = mapped_column(Integer, default=50)
    created: Mapped[datetime] = mapped_column(DateTime, index=True)
    last_updated: Mapped[datetime | None] = mapped_column(DateTime)
    due: Mapped[datetime | None] = mapped_column(DateTime)
    follow_up: Mapped[datetime | None] = mapped_column(DateTime)
    form_key: Mapped[str | None] = mapped_column(String(255))
    # {"key", "binding", "version"} (camunda:formRef) or {"resource"} (definitions.form_reference)
    form_ref: Mapped[dict | None] = mapped_column(JSON)
    business_key: Mapped[str | None] = mapped_column(String(255), index=True)
    tenant_id: Mapped[str | None] = mapped_column(String(64))
    properties: Mapped[dict] = mapped_column(JSON, default=dict)


class TaskCandidate(Base):
    """Who may claim a task: one row per candidate group or user (camunda:candidateGroups/Users).
    `unassigned` repeats the task's `assignee IS NULL`, so that a department's queue is
    counted from the third index alone (migration 0011, engine/tasks.py `count`).
    `instance_id` and `instance_start_time` repeat the task's case and when it started, so
    that the cases a department takes part in are counted, and paged in start-time order,
    from the fourth index alone (migration 0022, engine/authz.py `cases_by_start`)."""
    __tablename__ = "task_candidate"
    __table_args__ = (Index("ix_task_candidate_group", "group_id", "task_id"),
                      Index("ix_task_candidate_user", "user_id", "task_id"),
                      Index("ix_task_candidate_queue", "group_id", "unassigned", "task_id"),
                      Index("ix_task_candidate_group_case", "group_id", "instance_start_time", "instance_id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("user_task.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[str | None] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(64))
    unassigned: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    instance_id: Mapped[str] = mapped_column(String(64))
    instance_start_time: Mapped[datetime] = mapped_column(DateTime)


class Timer(Base):
    """A waiting BPMN timer: the scheduler fires it when `due_at` has passed.

    `instance_id` is null for a timer start event (it starts a new instance)."""
    __tablename__ = "timer"
    id: Mapped[str] = mapped_column(ID, primary_key=True)            # SpiffWorkflow task id (or start-event key)
    instance_id: Mapped[str | None] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"),
                                                    index=True)
    definition_id: Mapped[str] = mapped_column(String(255))
    activity_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))                     # timeDate | timeDuration | timeCycle
    due_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    created: Mapped[datetime] = mapped_column(DateTime)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict | None] = mapped_column(JSON)                 # timer start events: cycles left, period


# --- history and audit --------------------------------------------------------------

class ActivityInstance(Base):
    """An activity of a case, open or ended.  A user task's row is also its historic task
    (GET /history/task): it keeps the task's fields as the task row has them, and when
    they were last changed as it ended (migration 0020)."""
    __tablename__ = "activity_instance"
    # the cases a user worked, one way of taking part in a case (engine/authz.py, migration 0012);
    # the user tasks in the order they ended, the usual "completed tasks" view (migration 0020)
    __table_args__ = (Index("ix_activity_instance_assignee", "assignee", "instance_id"),
                      Index("ix_activity_instance_task_end", "end_time", "id",
                            sqlite_where=text("task_id IS NOT NULL"), postgresql_where=text("task_id IS NOT NULL")))
    id: Mapped[str] = mapped_column(ID, primary_key=True)            # the SpiffWorkflow task id
    instance_id: Mapped[str] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"), index=True)
    definition_id: Mapped[str] = mapped_column(String(64))
    definition_key: Mapped[str] = mapped_column(String(255))
    activity_id: Mapped[str] = mapped_column(String(255), index=True)
    activity_name: Mapped[str | None] = mapped_column(String(255))
    activity_type: Mapped[str] = mapped_column(String(64))
    parent_activity_instance_id: Mapped[str | None] = mapped_column(String(64))
    task_id: Mapped[str | None] = mapped_column(String(64))
    assignee: Mapped[str | None] = mapped_column(String(64))
    start_time: Mapped[datetime] = mapped_column(DateTime, index=True)
    end_time: Mapped[datetime | None] = mapped_column(DateTime)
    canceled: Mapped[bool] = mapped_column(Boolean, default=False)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    # a user task's own fields (null for other activities); its name as the task list showed
    # it (expressions evaluated, or as PUT /task/{id} set it), not the diagram's
    task_name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[int | None] = mapped_column(Integer)
    due: Mapped[datetime | None] = mapped_column(DateTime)
    follow_up: Mapped[datetime | None] = mapped_column(DateTime)
    delete_reason: Mapped[str | None] = mapped_column(Text)          # completed | deleted | the case's deleteReason


class VariableInstance(Base):
    """The latest value of each process variable (history keeps it after the end)."""
    __tablename__ = "variable_instance"
    __table_args__ = (UniqueConstraint("instance_id", "name", name="uq_variable_instance_name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    type: Mapped[str] = mapped_column(String(32))
    value: Mapped[object] = mapped_column(JSON)
    created: Mapped[datetime] = mapped_column(DateTime)
    updated: Mapped[datetime] = mapped_column(DateTime)
    activity_instance_id: Mapped[str | None] = mapped_column(String(64))


class AuditEvent(Base):
    """Append-only log: who did what, when, with which data (全程留痕)."""
    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_instance_seq", "instance_id", "seq"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_id: Mapped[str | None] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer, default=0)
    at: Mapped[datetime] = mapped_column(DateTime, index=True)
    actor: Mapped[str | None] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    activity_id: Mapped[str | None] = mapped_column(String(255))
    task_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


class SystemAuditEvent(Base):
    """Audit events outside any case's own chain: deployments, users, groups, tokens,
    calendars, and every refused write (403).  One hash chain; its head is in
    `audit_chain_head`, so a deleted last event is detected too."""
    __tablename__ = "system_audit_event"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    at: Mapped[datetime] = mapped_column(DateTime, index=True)
    actor: Mapped[str | None] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(16))                  # done | denied
    instance_id: Mapped[str | None] = mapped_column(String(64), index=True)   # the case concerned, if any
    target: Mapped[str | None] = mapped_column(String(512))             # e.g. "POST /engine-rest/task/1/complete"
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The head (hash, sequence number) of a chain that has no process-instance row."""
    __tablename__ = "audit_chain_head"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    hash: Mapped[str | None] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer, default=0)


# --- identity -----------------------------------------------------------------------

class User(Base):
    __tablename__ = "app_user"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_name: Mapped[str | None] = mapped_column(String(255))
    last_name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    credentials_version: Mapped[int] = mapped_column(Integer, default=0)
    # consecutive wrong passwords, and until when the account refuses logins (登录失败处理)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)


class Group(Base):
    __tablename__ = "app_group"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    type: Mapped[str | None] = mapped_column(String(64))


class Membership(Base):
    __tablename__ = "membership"
    user_id: Mapped[str] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("app_group.id", ondelete="CASCADE"), primary_key=True, index=True)


class ApiToken(Base):
    __tablename__ = "api_token"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(255))
    created: Mapped[datetime] = mapped_column(DateTime)
    expires: Mapped[datetime | None] = mapped_column(DateTime)
    revoked: Mapped[datetime | None] = mapped_column(DateTime)


# --- working-day calendar and legal clocks -------------------------------------------

class Calendar(Base):
    """A working-day calendar: national (`CN`) or a region's / service hall's own.

    `published_years` are the years whose official schedule is loaded; outside them the
    calendar falls back to weekends only and marks results provisional."""
    __tablename__ = "calendar"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    office_hours: Mapped[list] = mapped_column(JSON, default=list)    # [["09:00", "12:00"], ["13:30", "17:30"]]
    published_years: Mapped[list] = mapped_column(JSON, default=list)
    revision: Mapped[int] = mapped_column(Integer, default=1)         # bumped on every change (cache key)
    updated: Mapped[datetime] = mapped_column(DateTime)


class CalendarDay(Base):
    """A day that differs from the plain weekday rule: a holiday on a weekday, or an
    adjusted working weekend (调休)."""
    __tablename__ = "calendar_day"
    calendar_id: Mapped[str] = mapped_column(ForeignKey("calendar.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    working: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(16), default="seed")   # seed | import | override


class LegalClock(Base):
    """A legal (or promised) time limit of one stage of one case.

    The deadline is start + limit on the calendar, extended by every pause (补正);
    `scope` tells apart the same stage in parallel branches (e.g. each department's review)."""
    __tablename__ = "legal_clock"
    __table_args__ = (UniqueConstraint("instance_id", "scope", "stage"),
                      Index("ix_legal_clock_open", "stopped_at", "deadline_at"))
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"), index=True)
    definition_key: Mapped[str] = mapped_column(String(255), index=True)
    business_key: Mapped[str | None] = mapped_column(String(255))
    scope: Mapped[str] = mapped_column(String(64), default="")
    stage: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16), default="legal")       # legal | promised
    limit_value: Mapped[float] = mapped_column(Float)
    limit_unit: Mapped[str] = mapped_column(String(16))                  # workdays | workhours | days
    calendar_id: Mapped[str] = mapped_column(String(64), default="CN")
    yellow_share: Mapped[float] = mapped_column(Float, default=0.8)
    department: Mapped[str | None] = mapped_column(String(128))
    activity_id: Mapped[str | None] = mapped_column(String(255))      # the element that started it
    task_id: Mapped[str | None] = mapped_column(String(64))           # ... and its task (user task `due`)
    started_at: Mapped[datetime] = mapped_column(DateTime)
    pauses: Mapped[list] = mapped_column(JSON, default=list)            # [{"from", "to", "reason"}]
    paused_since: Mapped[datetime | None] = mapped_column(DateTime)
    deadline_at: Mapped[datetime | None] = mapped_column(DateTime)      # null while paused
    warning_at: Mapped[datetime | None] = mapped_column(DateTime)      # kept while paused (its status), not shown
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime)
    outcome: Mapped[str | None] = mapped_column(String(32))              # decided | tacit_approval | cancelled


class LegalEvent(Base):
    """What the statistics count: warnings (催办), escalations (督办), tacit approvals
    (超时默许), decisions in time or overdue."""
    __tablename__ = "legal_event"
    __table_args__ = (Index("ix_legal_event_stats", "definition_key", "kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"), index=True)
    definition_key: Mapped[str] = mapped_column(String(255))
    clock_id: Mapped[str | None] = mapped_column(String(64))
    stage: Mapped[str | None] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))       # yellow | red | tacit_approval | decided | overdue_decided
    activity_id: Mapped[str | None] = mapped_column(String(255))
    department: Mapped[str | None] = mapped_column(String(128), index=True)
    assignee: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime, index=True)
    details: Mapped[dict] = mapped_column(JSON, default=dict)


# --- external tasks, incidents, message subscriptions (issue 4) ----------------------

class ExternalTask(Base):
    """A READY external service task (camunda:type="external") as workers fetch it.

    Written with the instance state; `worker_id` / `lock_expiration_time` are the lock
    (fetchAndLock, extendLock, unlock change only them).  `retries` stays null until the
    first failure, as in Camunda; 0 means an incident is open and nobody fetches it."""
    __tablename__ = "external_task"
    __table_args__ = (Index("ix_external_task_fetch", "topic_name", "lock_expiration_time"),
                      Index("ix_external_task_created", "created", "id"))     # GET /external-task's order
    id: Mapped[str] = mapped_column(ID, primary_key=True)            # the SpiffWorkflow task id
    instance_id: Mapped[str] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"), index=True)
    definition_id: Mapped[str] = mapped_column(String(64))
    definition_key: Mapped[str] = mapped_column(String(255), index=True)
    definition_version_tag: Mapped[str | None] = mapped_column(String(64))
    activity_id: Mapped[str] = mapped_column(String(255), index=True)
    activity_instance_id: Mapped[str] = mapped_column(String(64))
    execution_id: Mapped[str] = mapped_column(String(64))
    topic_name: Mapped[str] = mapped_column(String(255))
    worker_id: Mapped[str | None] = mapped_column(String(255), index=True)
    lock_expiration_time: Mapped[datetime | None] = mapped_column(DateTime)
    retries: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(Text)
    error_details: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer, default=0, index=True)
    business_key: Mapped[str | None] = mapped_column(String(255), index=True)
    tenant_id: Mapped[str | None] = mapped_column(String(64))
    created: Mapped[datetime] = mapped_column(DateTime)
    suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    local_variables: Mapped[dict] = mapped_column(JSON, default=dict)   # typed inputs (camunda:inputParameter)
    properties: Mapped[dict] = mapped_column(JSON, default=dict)        # camunda:properties (extensionProperties)


class TaskComment(Base):
    """An officer's note on a task (Camunda's task comment): kept with the case's history
    after the task is done, deleted with the case's rows."""
    __tablename__ = "task_comment"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    task_id: Mapped[str] = mapped_column(ID, index=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    time: Mapped[datetime] = mapped_column(DateTime)
    message: Mapped[str] = mapped_column(Text)


class TaskFilter(Base):
    """A saved task query (Camunda's filter, what Camunda's Tasklist lists tasks through):
    a user's own, or shared with everyone when it has no owner (an administrator's)."""
    __tablename__ = "task_filter"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    resource_type: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))
    owner: Mapped[str | None] = mapped_column(String(64), index=True)
    query: Mapped[dict] = mapped_column(JSON)
    properties: Mapped[dict] = mapped_column(JSON)


class Incident(Base):
    """Something that needs an operator: an external task out of retries (failedExternalTask)."""
    __tablename__ = "incident"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    incident_type: Mapped[str] = mapped_column(String(64), index=True)
    incident_timestamp: Mapped[datetime] = mapped_column(DateTime)
    instance_id: Mapped[str] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"), index=True)
    definition_id: Mapped[str] = mapped_column(String(64))
    execution_id: Mapped[str | None] = mapped_column(String(64))
    activity_id: Mapped[str | None] = mapped_column(String(255))
    configuration: Mapped[str | None] = mapped_column(String(64), index=True)   # the external task id
    message: Mapped[str | None] = mapped_column(Text)
    tenant_id: Mapped[str | None] = mapped_column(String(64))
    annotation: Mapped[str | None] = mapped_column(Text)


class MessageSubscription(Base):
    """A waiting message or signal catch (intermediate event, receive task, boundary event,
    event gateway branch), Camunda's event subscription: correlation and broadcast look
    these up instead of opening every instance (engine/subscriptions.py)."""
    __tablename__ = "message_subscription"
    __table_args__ = (Index("ix_message_subscription_name", "event_type", "message_name", "business_key"),
                      UniqueConstraint("task_id", "event_type", "message_name", name="uq_message_subscription_task"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(String(64))                 # the waiting SpiffWorkflow task
    instance_id: Mapped[str] = mapped_column(ForeignKey("process_instance.id", ondelete="CASCADE"), index=True)
    definition_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(16), server_default="message")    # message | signal
    message_name: Mapped[str] = mapped_column(String(255))          # the message's or the signal's name
    activity_id: Mapped[str] = mapped_column(String(255))
    business_key: Mapped[str | None] = mapped_column(String(255))
    created: Mapped[datetime] = mapped_column(DateTime)


class ProcessedMessage(Base):
    """An idempotency key of POST /message that was applied: a redelivery returns `result`."""
    __tablename__ = "processed_message"
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    message_name: Mapped[str] = mapped_column(String(255))
    processed_at: Mapped[datetime] = mapped_column(DateTime)
    result: Mapped[list | None] = mapped_column(JSON)              # the response body, or null for 204
