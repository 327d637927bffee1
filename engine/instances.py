"""Process instances: start, a case read alone, its variables and activity tree, delete
(the lists of cases are engine/history.py's)."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from . import authz, runtime, variable_types
from .db import UnitOfWork
from .definitions import definition_by_id, latest_definition
from .errors import BadRequest, Forbidden, NotFound
from .fastsql import Shapes, Statement
from .identity import Principal
from .models import ActivityInstance, ProcessInstance
from .projections import process_variables
from .variables import VariableMap

RUNNING = (runtime.ACTIVE, "SUSPENDED")


def start(uow: UnitOfWork, principal: Principal, variables: dict, business_key: str | None,
          key: str | None = None, definition_id: str | None = None,
          tenant_id: str | None = None) -> tuple[runtime.InstanceRecord, dict]:
    session = uow.session
    definition = latest_definition(session, key, tenant_id) if key else definition_by_id(session, definition_id)
    authz.require_start(principal, definition)
    if business_key is not None and (not isinstance(business_key, str) or len(business_key) > 255):
        raise BadRequest("businessKey must be a string of at most 255 characters")
    record, workflow = runtime.start_instance(uow, definition, variables, business_key, principal, by_request=True)
    result = variable_types.typed(workflow, process_variables(workflow))
    uow.commit()
    return record, result


@dataclass
class InstanceQuery:
    """A list of cases (engine/history.py `process_instances`): Camunda's filters whose
    data the tables hold, its order (`sort_by`: a name of history.CASE_SORTS), a page."""
    process_definition_key: str | None = None
    process_definition_id: str | None = None
    business_key: str | None = None
    process_instance_ids: list | None = None
    first_result: int = 0
    max_results: int | None = None
    business_key_like: str | None = None
    business_key_in: list | None = None
    definition_key_in: list | None = None
    definition_key_not_in: list | None = None
    definition_name: str | None = None
    definition_name_like: str | None = None
    deployment_id: str | None = None
    started_before: datetime | None = None         # naive UTC, as stored; each bound inclusive (Camunda)
    started_after: datetime | None = None
    finished_before: datetime | None = None
    finished_after: datetime | None = None
    started_by: str | None = None
    tenant_id_in: list | None = None
    without_tenant_id: bool = False
    with_incident: bool = False                    # an open incident (a resolved one is deleted)
    incident_id: str | None = None
    incident_type: str | None = None
    incident_message: str | None = None
    incident_message_like: str | None = None
    active_activity_ids: list | None = None        # an activity of one of these ids open now
    executed_activity_ids: list | None = None      # ... or finished
    executed_activity_after: datetime | None = None
    executed_activity_before: datetime | None = None
    variables: list | None = None                  # [history.VariableCondition]: all must hold
    sort_by: str | None = None
    sort_order: str = "asc"


# A case read alone (GET /process-instance/{id}, its variables, its activity tree, its
# history and legal clocks) and whether the reader may see it: one statement per number of
# the reader's departments, the values bound, run on the driver's cursor (engine/fastsql.py).
_CASES = ProcessInstance.__table__
CASE_COLUMNS = [c for c in _CASES.c if c.key != "state_json"]      # a case as the API shows it
_CASE = Shapes()


def get(db: Session | Connection, principal: Principal, instance_id: str, running_only: bool = True,
        supervised: bool = False):
    """The case's row as plain values (all but its state document), if `principal` takes
    part in it (engine.authz), or, for a `supervised` read (its legal clocks), supervises
    every department; on a unit of work's session or a bare connection."""
    values, departments = {"instance_id": instance_id}, None
    if not (authz.reads_every_department(principal) if supervised else principal.is_admin):
        departments = authz.bind_reader(principal, values)

    def build():
        columns = list(CASE_COLUMNS)
        if departments is not None:
            columns.append(authz.takes_part_in(_CASES.c.id, *authz.reader_params(departments)).label("readable"))
        return select(*columns).where(_CASES.c.id == bindparam("instance_id"))
    shape = ("readable", departments) if departments is not None else ("all",)
    row = _CASE.get(shape, build).execute(db, values).first()
    if row is None or (running_only and row.state not in RUNNING):
        raise NotFound(f"Process instance with id {instance_id} does not exist")
    if departments is not None and not row.readable:
        raise Forbidden(f"user '{principal.user_id}' takes no part in process instance {instance_id}",
                        userId=principal.user_id)
    return row


def variables(uow: UnitOfWork, principal: Principal, instance_id: str) -> VariableMap:
    get(uow.session, principal, instance_id)
    with runtime.peek_workflow(uow, instance_id) as workflow:
        return variable_types.typed(workflow, copy.deepcopy(process_variables(workflow)))


def delete(uow: UnitOfWork, principal: Principal, instance_id: str, reason: str | None = None,
           fail_if_not_exists: bool = True) -> None:
    """Cancel a running case.  One that is not running (never known, ended, deleted before)
    is a 404, or nothing to do with Camunda's failIfNotExists=false."""
    try:
        row = get(uow.session, principal, instance_id)
    except NotFound:
        if fail_if_not_exists:
            raise
        return
    if not principal.is_admin and row.start_user_id != principal.user_id:
        raise Forbidden(f"only an administrator or the user who started process instance {instance_id} may "
                        "delete it", userId=principal.user_id)
    command = runtime.open_instance(uow, instance_id, principal)
    runtime.terminate(command, reason)
    runtime.save(command)
    uow.commit()


_ACTIVITIES = ActivityInstance.__table__
_OPEN_ACTIVITIES = Statement(select(_ACTIVITIES).where(
    _ACTIVITIES.c.instance_id == bindparam("instance_id"), _ACTIVITIES.c.end_time.is_(None))
    .order_by(_ACTIVITIES.c.start_time))


def activity_tree(db: Session | Connection, definitions, principal: Principal, instance_id: str) -> dict:
    """Camunda's activity-instance tree: the running activities nested under their scopes;
    on a unit of work's session or a bare connection (`definitions`: the engine's cache)."""
    row = get(db, principal, instance_id)
    open_rows = _OPEN_ACTIVITIES.execute(db, {"instance_id": instance_id}).all()
    definition = definitions.find(db, row.definition_id)

    def node(ident, parent, activity_id, activity_type, name):
        return {"id": ident, "parentActivityInstanceId": parent, "activityId": activity_id,
                "activityType": activity_type, "processInstanceId": instance_id,
                "processDefinitionId": row.definition_id, "childActivityInstances": [],
                "childTransitionInstances": [], "executionIds": [ident], "activityName": name,
                "name": name, "incidentIds": [], "incidents": []}

    root = node(instance_id, None, row.definition_key, "processDefinition", definition.name if definition else None)
    nodes = {instance_id: root}
    for a in open_rows:
        nodes[a.id] = node(a.id, a.parent_activity_instance_id or instance_id, a.activity_id, a.activity_type,
                           a.activity_name)
    for a in open_rows:
        parent = nodes.get(a.parent_activity_instance_id or instance_id, root)
        parent["childActivityInstances"].append(nodes[a.id])
    return root
