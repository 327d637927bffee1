"""Runtime statistics per process definition version, Camunda 7's
GET /process-definition/statistics (what Cockpit's dashboard shows): running cases,
failed jobs and open incidents by type; and per activity of one version,
GET /process-definition/{id}/statistics (the counts Cockpit puts on the diagram).
Ended cases are not counted (no history)."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .authz import reads_every_department
from .errors import BadRequest, Forbidden
from .identity import WORKERS_GROUP, Principal
from .instances import RUNNING
from .models import ActivityInstance, Incident, ProcessDefinition, ProcessInstance
from .scheduler import FAILED_JOB

ONE_INCIDENT_OPTION = "Only one of the query parameters incidents, rootIncidents or incidentsForType can be set"


@dataclass
class Statistics:
    """One row: a definition version's (`id` its id, `definition` the version) or one
    activity's (`id` the activity id)."""
    id: str
    definition: ProcessDefinition | None = None
    instances: int = 0
    failed_jobs: int = 0
    incidents: dict[str, int] = field(default_factory=dict)    # incident type -> open incidents


def statistics(session: Session, principal: Principal, failed_jobs: bool = False, incidents: bool = False,
               incidents_for_type: str | None = None, root_incidents: bool = False) -> list[Statistics]:
    """Every deployed version, with its running cases; failed jobs when `failed_jobs`;
    open incidents by type when `incidents` (or `root_incidents`: a called process runs
    inside its caller's case, so every incident is a root one), or of `incidents_for_type` only."""
    _check_request(principal, incidents, incidents_for_type, root_incidents)
    incidents = incidents or root_incidents
    rows = {d.id: Statistics(d.id, d) for d in session.execute(select(ProcessDefinition).order_by(
        ProcessDefinition.key, ProcessDefinition.version, ProcessDefinition.id)).scalars()}
    for definition_id, count in session.execute(
            select(ProcessInstance.definition_id, func.count()).where(ProcessInstance.state.in_(RUNNING))
            .group_by(ProcessInstance.definition_id)):
        rows[definition_id].instances = count
    if failed_jobs or incidents or incidents_for_type is not None:
        for definition_id, incident_type, count in session.execute(_open_incidents(Incident.definition_id)):
            row = rows.get(definition_id)
            if row is not None:
                _count_incidents(row, incident_type, count, failed_jobs, incidents, incidents_for_type)
    return list(rows.values())


def activity_statistics(session: Session, principal: Principal, definition_id: str, failed_jobs: bool = False,
                        incidents: bool = False, incidents_for_type: str | None = None) -> list[Statistics]:
    """The activities of one version with something to report, by activity id: its running
    activity instances in running cases, and failed jobs and open incidents as `statistics`
    counts them.  An activity with neither is left out, as Camunda does."""
    _check_request(principal, incidents, incidents_for_type)
    rows: dict[str, Statistics] = {}
    for activity_id, count in session.execute(
            select(ActivityInstance.activity_id, func.count())
            .join(ProcessInstance, ProcessInstance.id == ActivityInstance.instance_id)
            .where(ActivityInstance.definition_id == definition_id, ActivityInstance.end_time.is_(None),
                   ProcessInstance.state.in_(RUNNING))
            .group_by(ActivityInstance.activity_id)):
        rows[activity_id] = Statistics(activity_id, instances=count)
    if failed_jobs or incidents or incidents_for_type is not None:
        for activity_id, incident_type, count in session.execute(
                _open_incidents(Incident.activity_id).where(Incident.definition_id == definition_id,
                                                             Incident.activity_id.is_not(None))):
            row = rows.get(activity_id) or Statistics(activity_id)
            if _count_incidents(row, incident_type, count, failed_jobs, incidents, incidents_for_type):
                rows[activity_id] = row
    return [rows[activity_id] for activity_id in sorted(rows)]


def _check_request(principal: Principal, incidents: bool, incidents_for_type: str | None,
                   root_incidents: bool = False) -> None:
    """Counts of every department's cases and incidents: for administrators and supervisors
    (督查), who read every department's statistics, and the department systems' workers, who
    see the incidents (GET /incident); not for an officer or an applicant."""
    if not (reads_every_department(principal) or WORKERS_GROUP in principal.groups):
        raise Forbidden(f"user '{principal.user_id}' may not read the statistics of every process: they are for "
                        f"administrators, supervisors and '{WORKERS_GROUP}'", userId=principal.user_id)
    if incidents + root_incidents + (incidents_for_type is not None) > 1:
        raise BadRequest(ONE_INCIDENT_OPTION)


def _count_incidents(row: Statistics, incident_type: str, count: int,
                     failed_jobs: bool, incidents: bool, incidents_for_type: str | None) -> bool:
    """Add one incident type's count to `row` where the options ask for it; whether they did."""
    counted = False
    if incident_type == FAILED_JOB and failed_jobs:
        row.failed_jobs = count
        counted = True
    if incidents or incident_type == incidents_for_type:
        row.incidents[incident_type] = count
        counted = True
    return counted


def _open_incidents(by):
    """(`by`: definition or activity id, incident type, count) of the incidents of running cases."""
    return (select(by, Incident.incident_type, func.count())
            .join(ProcessInstance, ProcessInstance.id == Incident.instance_id)
            .where(ProcessInstance.state.in_(RUNNING))
            .group_by(by, Incident.incident_type))
