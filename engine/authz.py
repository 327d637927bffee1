"""Who may do what (授权), in one place, and the record of every refused write.

Groups are departments: the candidate groups of the models.  A few groups have fixed
meanings (the README's "Security" section has the whole table):

    camunda-admin     administers: every resource, every case
    designers         deploy and delete deployments
    external-workers  the external-task API, incidents, message correlation and signals
    applicants        the public (申请人): start the processes that name them in
                      camunda:candidateStarterGroups, and see only the cases they started
    auditors          read any case's dossier (卷宗评查)
    supervisors       (督查; the group Settings.supervisors_group names) read every
                      department's open tasks, every case's legal clocks and every
                      department's statistics; they work only the tasks offered to them

A department user sees, claims and completes the tasks offered to their groups or to
them, or assigned to them, or that they delegated (委派: they own it), and reads the cases
they take part in.  An offer to the group `applicants` means "the applicant of this
case": it reaches only the user who started it.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from typing import NamedTuple

from sqlalchemy import and_, bindparam, exists, or_, select, union
from sqlalchemy.orm import Session

from . import audit
from .errors import Forbidden
from .fastsql import bound, numbered
from .identity import ADMIN_GROUP, DESIGNERS_GROUP, WORKERS_GROUP, Principal, groups_of
from .models import ActivityInstance, ExternalTask, ProcessDefinition, ProcessInstance, TaskCandidate, UserTask

log = logging.getLogger(__name__)

APPLICANTS_GROUP = "applicants"
AUDITORS_GROUP = "auditors"
FIXED_GROUPS = (ADMIN_GROUP, DESIGNERS_GROUP, WORKERS_GROUP, APPLICANTS_GROUP, AUDITORS_GROUP)


def with_roles(principal: Principal, supervisors_group: str) -> Principal:
    """The principal as the server's settings see its groups: a member of
    `supervisors_group` is a supervisor (reads_every_department)."""
    return replace(principal, supervisor=supervisors_group in principal.groups)


def reads_every_department(principal: Principal) -> bool:
    """Administrators and supervisors (督查: "supervisors read deadlines, warnings and
    KPIs") read every department's open tasks, legal clocks and statistics.  Reading is
    all a supervisor gains: claiming, completing or changing a task still needs it to be
    offered to them (tasks.get)."""
    return principal.is_admin or principal.supervisor


def department_groups(principal: Principal) -> list[str]:
    """The groups through which an offer reaches this user for any case."""
    return sorted(principal.groups - {APPLICANTS_GROUP})


# --- starting a case ----------------------------------------------------------------

def starters(process_element, camunda_ns: str) -> dict | None:
    """camunda:candidateStarterGroups/Users of a <bpmn:process> (Camunda 7), or None."""
    def names(attr):
        return [n.strip() for n in (process_element.get(f"{{{camunda_ns}}}{attr}") or "").split(",") if n.strip()]
    groups, users = names("candidateStarterGroups"), names("candidateStarterUsers")
    return {"groups": groups, "users": users} if groups or users else None


def why_not_start(principal: Principal, definition: ProcessDefinition) -> str | None:
    """None if the principal may start a case of `definition`, else the reason.

    A process that names candidate starters is started by them (and administrators)
    only; one that names none by any staff user, but never by an applicant."""
    if principal.is_admin:
        return None
    declared = definition.starters
    if declared:
        if principal.user_id in declared.get("users", []) or principal.groups & set(declared.get("groups", [])):
            return None
        allowed = ", ".join([f"group '{g}'" for g in declared.get("groups", [])] +
                            [f"user '{u}'" for u in declared.get("users", [])])
        return (f"user '{principal.user_id}' may not start process '{definition.key}': "
                f"its candidate starters are {allowed}")
    if APPLICANTS_GROUP in principal.groups:
        return (f"process '{definition.key}' does not admit applicants: its designer must add "
                f"'{APPLICANTS_GROUP}' to camunda:candidateStarterGroups")
    return None


def require_start(principal: Principal, definition: ProcessDefinition) -> None:
    reason = why_not_start(principal, definition)
    if reason is not None:
        raise Forbidden(reason, userId=principal.user_id)


# --- moving cases from outside (POST /message, POST /signal) ------------------------

def require_event_sender(principal: Principal, what: str) -> None:
    """POST /message and POST /signal move cases from outside: department systems
    (external-workers) and administrators only."""
    if not (principal.is_admin or WORKERS_GROUP in principal.groups):
        raise Forbidden(f"user '{principal.user_id}' may not {what}: it is for members of "
                        f"'{WORKERS_GROUP}' (department systems) and administrators", userId=principal.user_id)


# --- readers in statements built once per shape ---------------------------------------

def bind_reader(principal: Principal, values: dict) -> int:
    """A (non-admin) reader's values for a statement built once per shape: their user id
    as `me` and their departments (department_groups) one parameter each, into `values`;
    returns how many departments, a part of the shape (reader_params names them)."""
    departments = department_groups(principal)
    values.update(numbered("department", departments), me=principal.user_id)
    return len(departments)


def reader_params(departments: int) -> tuple:
    """(me, departments) as the bind parameters bind_reader fills."""
    return bindparam("me"), bound("department", departments)


# --- reading cases ------------------------------------------------------------------

def cases_taken_part_in(me, departments: list):
    """The ids of the cases the user `me` takes part in: started by them, a task of it
    offered to one of their `departments` or to them, or assigned to them, or delegated by
    them (its owner), or an activity of it worked by them.  A UNION of one index-driven
    SELECT per way, each reading the reader's own rows however many cases the database
    holds (testing every open task and activity against them all cost an officer 40-100 ms
    a read at 100,000 cases): what a list or a count of cases needs.  `me` and the departments are values or bind
    parameters (a statement built once per shape, engine/history.py)."""
    cases, tasks, candidates, activities = _tables()
    ways = [select(cases.c.id).where(cases.c.start_user_id == me),
            select(tasks.c.instance_id).where(tasks.c.assignee == me),
            select(tasks.c.instance_id).where(tasks.c.owner == me),
            select(candidates.c.instance_id).where(candidates.c.user_id == me),
            select(activities.c.instance_id).where(activities.c.assignee == me)]
    if departments:
        ways.append(select(candidates.c.instance_id).where(candidates.c.group_id.in_(departments)))
    return union(*ways)


def cases_by_start(me, departments: list, of_cases=None) -> list:
    """The same cases, one SELECT of (start_time, id) per way and per department, each
    in the order of an index where the way can give it (a department's from
    ix_task_candidate_group_case, which repeats the case's start), so that a count reads
    index entries only and a page need not read the whole set (engine/history.py).
    `of_cases(cases)`: a condition on the cases read from process_instance (their states),
    or None; the cases of open tasks need none, as the running states are all a list
    filters them by: an ending case's command deletes its open tasks (engine/projections.py).
    `departments`: bind parameters, one per department."""
    cases, tasks, candidates, activities = _tables()
    of_cases = [] if of_cases is None else [of_cases(cases)]
    offers = [candidates.c.user_id == me] + [candidates.c.group_id == department for department in departments]
    return ([select(cases.c.start_time, cases.c.id).where(cases.c.start_user_id == me, *of_cases)]
            + [select(cases.c.start_time, cases.c.id).select_from(tasks).join(cases, cases.c.id == tasks.c.instance_id)
               .where(on_task) for on_task in (tasks.c.assignee == me, tasks.c.owner == me)]
            + [select(cases.c.start_time, cases.c.id).select_from(activities)
               .join(cases, cases.c.id == activities.c.instance_id).where(activities.c.assignee == me, *of_cases)]
            + [select(candidates.c.instance_start_time.label("start_time"), candidates.c.instance_id.label("id"))
               .where(offer) for offer in offers])


def takes_part_in(case_id, me, departments: list):
    """The same condition for one case, `case_id` (a column or a bind parameter), checked
    through that case's own rows, each way read from the case's index (a task's offers
    from the task's, not the department's thousands): what a case read alone needs
    (engine/instances.py `get`), or a list narrowed to one case."""
    cases, tasks, candidates, activities = _tables()
    offer = candidates.c.user_id == me
    if departments:
        offer = or_(offer, candidates.c.group_id.in_(departments))
    offered = exists().where(candidates.c.task_id == tasks.c.id, offer)
    return or_(exists().where(cases.c.id == case_id, cases.c.start_user_id == me),
               exists().where(tasks.c.instance_id == case_id,
                              or_(tasks.c.assignee == me, tasks.c.owner == me, offered)),
               exists().where(activities.c.instance_id == case_id, activities.c.assignee == me))


def _tables() -> tuple:
    """process_instance, user_task, task_candidate and activity_instance as tables of their
    own (aliases), so that a statement on the same tables does not correlate them."""
    return tuple(t.alias() for t in (ProcessInstance.__table__, UserTask.__table__, TaskCandidate.__table__,
                                     ActivityInstance.__table__))


def require_dossier_reader(principal: Principal, instance_id: str) -> None:
    if not (principal.is_admin or AUDITORS_GROUP in principal.groups):
        raise Forbidden(f"the dossier of process instance {instance_id} is for case-file review (卷宗评查): "
                        f"members of '{AUDITORS_GROUP}' or '{ADMIN_GROUP}'", userId=principal.user_id)


# --- user tasks ---------------------------------------------------------------------

def offered_exists(offer):
    """SQL condition on user_task: a task_candidate row of the task matches `offer`, checked
    task by task (what a page of a list needs, read in the list's order)."""
    return exists().where(TaskCandidate.task_id == UserTask.id, offer)


def offered_ids(offer):
    """The same condition as the set of task ids that `offer` matches, which the database
    reads from task_candidate's indexes (what a count, or a list in an order that no index
    of the queue gives, needs)."""
    return UserTask.id.in_(select(TaskCandidate.task_id).where(offer))


class Way(NamedTuple):
    """One way a task is visible to a user (visible_ways): a task_candidate row of it
    matches `offer` (if not None) and the task meets `task` (a condition on user_task, if
    not None)."""
    name: str
    offer: object = None
    task: object = None


def visible_ways(me, departments: list, applicant: bool) -> list[Way]:
    """The ways a task is visible to the user `me`: "assigned" to them, "owned" by them (they
    delegated it, 委派: it is theirs again once resolved), offered to them by name ("named"),
    to one of their `departments` (department_groups), or, for an `applicant`, to
    `applicants` in a case they started ("own case").  A task is visible if it is visible
    in one of them (visible_tasks).  Each is read from an index of its own, so a list can
    read their union instead of testing every open task against them all (engine/tasks.py).  `me` and the departments are values or bind parameters
    (engine/tasks.py builds a list's statement once, for any user)."""
    ways = [Way("assigned", task=UserTask.assignee == me), Way("owned", task=UserTask.owner == me),
            Way("named", offer=TaskCandidate.user_id == me)]
    if departments:
        ways.append(Way("departments", offer=TaskCandidate.group_id.in_(departments)))
    if applicant:
        own_cases = select(ProcessInstance.id).where(ProcessInstance.start_user_id == me)
        ways.append(Way("own case", offer=TaskCandidate.group_id == APPLICANTS_GROUP,
                        task=UserTask.instance_id.in_(own_cases)))
    return ways


def on_tasks(way: Way, offered=offered_exists):
    """A way of visible_ways as a condition on user_task; `offered`: offered_exists or offered_ids."""
    return and_(*([offered(way.offer)] if way.offer is not None else []),
                *([way.task] if way.task is not None else []))


def visible_tasks(me, departments: list, applicant: bool, offered=offered_exists):
    """SQL condition on user_task: visible to the user `me` in one of visible_ways (the
    same arguments); `offered`: offered_exists or offered_ids.  The ways that are plain
    offers are checked together, in one look at the task's candidate rows (a walk of a
    list checks each task: one probe of task_candidate, not one per way)."""
    ways = visible_ways(me, departments, applicant)
    offers = [way.offer for way in ways if way.offer is not None and way.task is None]
    conditions = []
    for way in ways:
        if way.offer is None or way.task is not None:
            conditions.append(on_tasks(way, offered))
        elif way.offer is offers[0]:                  # the first plain offer stands for them all
            conditions.append(offered(or_(*offers)))
    return or_(*conditions)


def sees_offers_to(principal: Principal, group: str | None) -> bool:
    """Whether every task offered to `group` is among `visible_tasks(principal)`."""
    return bool(group) and group in department_groups(principal)


def offered_to(principal: Principal, assignee: str | None, groups, users, case_starter,
               owner: str | None = None) -> bool:
    """`visible_tasks` for one task whose assignee, owner and candidates are already loaded
    (a command reads them anyway): the same rule without another query.  `case_starter()`
    returns who started the task's case; it is called only for offers to `applicants`."""
    if principal.is_admin:
        return True
    me = principal.user_id
    if me in (assignee, owner) or me in users or not set(department_groups(principal)).isdisjoint(groups):
        return True
    return APPLICANTS_GROUP in principal.groups and APPLICANTS_GROUP in groups and case_starter() == me


def may_see_task(session: Session, principal: Principal, task_id: str) -> bool:
    if principal.is_admin:
        return True
    visible = visible_tasks(principal.user_id, department_groups(principal), APPLICANTS_GROUP in principal.groups)
    found = session.execute(select(UserTask.id).where(UserTask.id == task_id, visible)).first()
    return found is not None


def may_be_assigned(session: Session, task_id: str, user_id: str) -> bool:
    """Only someone the task is offered to (by name, department, or as its case's applicant)
    may be made its assignee: handing a task over must not widen who sees the case."""
    return may_see_task(session, Principal(user_id, groups_of(session, user_id)), task_id)


# --- refused writes -----------------------------------------------------------------

READS = frozenset({"GET", "HEAD", "OPTIONS"})


def case_of(session: Session, view_args: dict) -> str | None:
    """The case a request path names (a process instance, a user task or an external task)."""
    if view_args.get("instance_id"):
        return view_args["instance_id"]
    task_id = view_args.get("task_id")
    if task_id:
        for model in (UserTask, ExternalTask):
            found = session.execute(select(model.instance_id).where(model.id == task_id)).scalar()
            if found:
                return found
    return None


def record_denial(engine, principal: Principal | None, method: str, path: str, view_args: dict,
                  reason: str) -> None:
    """File a refused write in the system audit chain (its own transaction: the refused
    command rolled back).  A failure here is logged, never turned into another error."""
    if method in READS:
        return
    try:
        with engine.uow() as uow:
            instance_id = case_of(uow.session, view_args or {})
            audit.record_system(uow.session, principal.user_id if principal else None, "AccessDenied",
                                {"reason": reason, "groups": sorted(principal.groups) if principal else []},
                                outcome="denied", instance_id=instance_id, target=f"{method} {path}"[:512])
            uow.commit()
    except Exception:                                   # noqa: BLE001 - the 403 stands regardless
        log.exception("could not record a refused %s %s in the audit trail", method, path)

