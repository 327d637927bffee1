"""Incidents: what an operator must look at.  Two kinds: an external task whose
retries ran out (`failedExternalTask`, opened by `external_tasks.failure`, resolved by
setting retries again, or by a failure that reports retries left, as Camunda's
setRetriesAndManageIncidents does), and a case's timer whose firing failed (`failedJob`, opened and
resolved by `scheduler`)."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .errors import BadRequest, NotFound
from .external_tasks import require_worker
from .identity import Principal
from .models import Incident


@dataclass
class IncidentQuery:
    incident_id: str | None = None
    incident_type: str | None = None
    process_instance_id: str | None = None
    process_definition_id: str | None = None
    activity_id: str | None = None
    execution_id: str | None = None
    configuration: str | None = None
    sort_by: str | None = None
    sort_order: str = "asc"
    first_result: int = 0
    max_results: int | None = None


SORT_FIELDS = {"incidentId": Incident.id, "incidentTimestamp": Incident.incident_timestamp,
               "incidentType": Incident.incident_type, "activityId": Incident.activity_id,
               "processInstanceId": Incident.instance_id, "processDefinitionId": Incident.definition_id,
               "configuration": Incident.configuration, "tenantId": Incident.tenant_id}


def _filtered(q: IncidentQuery):
    stmt = select(Incident)
    for value, column in ((q.incident_id, Incident.id), (q.incident_type, Incident.incident_type),
                          (q.process_instance_id, Incident.instance_id),
                          (q.process_definition_id, Incident.definition_id), (q.activity_id, Incident.activity_id),
                          (q.execution_id, Incident.execution_id), (q.configuration, Incident.configuration)):
        if value is not None:
            stmt = stmt.where(column == value)
    return stmt


def query(session: Session, principal: Principal, q: IncidentQuery) -> list[Incident]:
    require_worker(principal)
    stmt = _filtered(q)
    column = SORT_FIELDS.get(q.sort_by or "incidentTimestamp")
    if column is None:
        raise BadRequest(f"sortBy {q.sort_by!r} is not supported; use one of {', '.join(SORT_FIELDS)}")
    stmt = stmt.order_by(column.desc() if q.sort_order == "desc" else column.asc(), Incident.id)
    stmt = stmt.offset(q.first_result or 0)
    if q.max_results is not None:
        stmt = stmt.limit(q.max_results)
    return list(session.execute(stmt).scalars())


def count(session: Session, principal: Principal, q: IncidentQuery) -> int:
    require_worker(principal)
    return session.execute(select(func.count()).select_from(_filtered(q).subquery())).scalar()


def get(session: Session, principal: Principal, incident_id: str) -> Incident:
    require_worker(principal)
    row = session.get(Incident, incident_id)
    if row is None:
        raise NotFound(f"Incident with id {incident_id} does not exist")
    return row
