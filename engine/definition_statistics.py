"""Runtime statistics per process definition version, Camunda 7's
GET /process-definition/statistics (what Cockpit's dashboard shows): running cases,
failed jobs and open incidents by type.  Ended cases are not counted (no history)."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .authz import reads_every_department
from .errors import BadRequest, Forbidden
from .identity import WORKERS_GROUP, Principal
from .instances import RUNNING
from .models import Incident, ProcessDefinition, ProcessInstance
from .scheduler import FAILED_JOB

ONE_INCIDENT_OPTION = "Only one of the query parameters incidents, rootIncidents or incidentsForType can be set"


@dataclass
class DefinitionStatistics:
    definition: ProcessDefinition
    instances: int = 0
    failed_jobs: int = 0
    incidents: dict[str, int] = field(default_factory=dict)    # incident type -> open incidents


def statistics(session: Session, principal: Principal, failed_jobs: bool = False, incidents: bool = False,
               incidents_for_type: str | None = None) -> list[DefinitionStatistics]:
    """Every deployed version, with its running cases; failed jobs when `failed_jobs`;
    open incidents by type when `incidents`, or of `incidents_for_type` only.  Counts of
    every department's cases and incidents: for administrators and supervisors (督查), who
    read every department's statistics, and the department systems' workers, who see the
    incidents (GET /incident); not for an officer or an applicant."""
    if not (reads_every_department(principal) or WORKERS_GROUP in principal.groups):
        raise Forbidden(f"user '{principal.user_id}' may not read the statistics of every process: they are for "
                        f"administrators, supervisors and '{WORKERS_GROUP}'", userId=principal.user_id)
    if incidents and incidents_for_type is not None:
        raise BadRequest(ONE_INCIDENT_OPTION)
    rows = {d.id: DefinitionStatistics(d) for d in session.execute(select(ProcessDefinition).order_by(
        ProcessDefinition.key, ProcessDefinition.version, ProcessDefinition.id)).scalars()}
    for definition_id, count in session.execute(
            select(ProcessInstance.definition_id, func.count()).where(ProcessInstance.state.in_(RUNNING))
            .group_by(ProcessInstance.definition_id)):
        rows[definition_id].instances = count
    if failed_jobs or incidents or incidents_for_type is not None:
        for definition_id, incident_type, count in session.execute(_open_incidents()):
            row = rows.get(definition_id)
            if row is None:
                continue
            if incident_type == FAILED_JOB and failed_jobs:
                row.failed_jobs = count
            if incidents or incident_type == incidents_for_type:
                row.incidents[incident_type] = count
    return list(rows.values())


def _open_incidents():
    """(definition id, incident type, count) of the incidents of running cases."""
    return (select(Incident.definition_id, Incident.incident_type, func.count())
            .join(ProcessInstance, ProcessInstance.id == Incident.instance_id)
            .where(ProcessInstance.state.in_(RUNNING))
            .group_by(Incident.definition_id, Incident.incident_type))
