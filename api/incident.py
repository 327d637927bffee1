"""Incidents (Camunda 7's GET /incident): external tasks whose retries ran out."""
from __future__ import annotations

import marshmallow as ma
from marshmallow import fields as f

from engine import incidents
from engine.variables import format_date

from .auth import engine, principal
from .blueprint import Blueprint
from .schemas import Count, Paging, Strict

blp = Blueprint("incident", __name__, url_prefix="/engine-rest/incident", description="Incidents")

Str = f.String


class IncidentDto(Strict):
    id = Str()
    processDefinitionId = Str()
    processInstanceId = Str()
    executionId = Str(allow_none=True)
    incidentTimestamp = Str()
    incidentType = Str()
    activityId = Str(allow_none=True)
    failedActivityId = Str(allow_none=True)
    causeIncidentId = Str()
    rootCauseIncidentId = Str()
    configuration = Str(allow_none=True)
    tenantId = Str(allow_none=True)
    incidentMessage = Str(allow_none=True)
    jobDefinitionId = Str(allow_none=True)
    annotation = Str(allow_none=True)


class IncidentQuery(Paging):
    incidentId = Str()
    incidentType = Str()
    processInstanceId = Str()
    processDefinitionId = Str()
    activityId = Str()
    executionId = Str()
    configuration = Str()
    sortBy = Str(validate=ma.validate.OneOf(sorted(incidents.SORT_FIELDS)))
    sortOrder = Str(validate=ma.validate.OneOf(["asc", "desc"]), load_default="asc")


def render(row) -> dict:
    return {"id": row.id, "processDefinitionId": row.definition_id, "processInstanceId": row.instance_id,
            "executionId": row.execution_id, "incidentTimestamp": format_date(row.incident_timestamp),
            "incidentType": row.incident_type, "activityId": row.activity_id, "failedActivityId": row.activity_id,
            "causeIncidentId": row.id, "rootCauseIncidentId": row.id, "configuration": row.configuration,
            "tenantId": row.tenant_id, "incidentMessage": row.message, "jobDefinitionId": None,
            "annotation": row.annotation}


def _query(args) -> incidents.IncidentQuery:
    return incidents.IncidentQuery(
        incident_id=args.get("incidentId"), incident_type=args.get("incidentType"),
        process_instance_id=args.get("processInstanceId"), process_definition_id=args.get("processDefinitionId"),
        activity_id=args.get("activityId"), execution_id=args.get("executionId"),
        configuration=args.get("configuration"), sort_by=args.get("sortBy"),
        sort_order=args.get("sortOrder") or "asc", first_result=args.get("firstResult") or 0,
        max_results=args.get("maxResults"))


@blp.route("")
@blp.arguments(IncidentQuery, location="query")
@blp.response(200, IncidentDto(many=True))
def list_incidents(args):
    """Open incidents; an external task's incident is resolved by PUT /external-task/{id}/retries."""
    with engine().uow(write=False) as uow:
        return [render(r) for r in incidents.query(uow.session, principal(), _query(args))]


@blp.route("/count")
@blp.arguments(IncidentQuery, location="query")
@blp.response(200, Count)
def count_incidents(args):
    with engine().uow(write=False) as uow:
        return {"count": incidents.count(uow.session, principal(), _query(args))}


@blp.route("/<incident_id>")
@blp.response(200, IncidentDto)
def get_incident(incident_id):
    with engine().uow(write=False) as uow:
        return render(incidents.get(uow.session, principal(), incident_id))
