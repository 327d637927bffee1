"""Task filters (Camunda 7's /filter): saved task queries, what Camunda's Tasklist lists
tasks through (engine/filters.py says who sees and changes which)."""
from __future__ import annotations

import dataclasses

import marshmallow as ma
from marshmallow import fields as f

from engine import filters, tasks
from engine.errors import BadRequest

from . import schemas, task, task_query
from .auth import engine, principal
from .blueprint import Blueprint

blp = Blueprint("filter", __name__, url_prefix="/engine-rest/filter",
                description="Saved task queries (Camunda's filters, as Camunda's Tasklist uses them)")


class FilterBody(schemas.Strict):
    resourceType = f.String(required=True, metadata={"description": "Task"})
    name = f.String(required=True)
    owner = f.String(allow_none=True, metadata={"description": "yours; only an administrator names another "
                                                              "user or none (a filter shared with everyone)"})
    query = f.Dict(allow_none=True, metadata={"description": "Camunda's task query, as POST /task's body; "
                                                             "${currentUser()} and ${currentUserGroups()} taken"})
    properties = f.Dict(allow_none=True, metadata={"description": "kept as given (Tasklist's color, variables...)"})


class Filter(schemas.Strict):
    id = f.String()
    resourceType = f.String()
    name = f.String()
    owner = f.String(allow_none=True)
    query = f.Dict()
    properties = f.Dict()
    itemCount = f.Integer(metadata={"description": "with itemCount=true: how many tasks it lists for you"})


class FilterArgs(schemas.Paging):
    filterId = f.String()
    resourceType = f.String()
    name = f.String()
    nameLike = f.String()
    owner = f.String()
    itemCount = f.Boolean(load_default=False)
    sortBy = f.String(validate=ma.validate.OneOf(sorted(filters.SORTS)))
    sortOrder = f.String(validate=ma.validate.OneOf(["asc", "desc"]))

    @ma.validates_schema
    def _both(self, data, **kwargs):
        if ("sortBy" in data) != ("sortOrder" in data):
            raise ma.ValidationError("Only a single sorting parameter specified. sortBy and sortOrder required")


class ItemCountArgs(schemas.Strict):
    itemCount = f.Boolean(load_default=False)


def _check(query: dict) -> tasks.TaskQuery:
    """The task query a filter's (resolved) query is, or a 400 saying what is wrong with it."""
    try:
        loaded = task_query.TaskQueryBody().load(query)
    except ma.ValidationError as err:
        raise BadRequest(f"filter query: {err.messages}") from None
    return task_query.task_query(loaded, {})


def _tasks_query(row, extending: dict | None, paging: dict) -> tasks.TaskQuery:
    who = principal()
    query = {**filters.resolved(row.query, who), **filters.resolved(extending or {}, who)}
    return dataclasses.replace(_check(query), first_result=paging.get("firstResult") or 0,
                               max_results=paging.get("maxResults"))


def _render(row, item_count: bool = False) -> dict:
    body = {"id": row.id, "resourceType": row.resource_type, "name": row.name, "owner": row.owner,
            "query": row.query, "properties": row.properties}
    if item_count:
        body["itemCount"] = task.counted(_tasks_query(row, None, {}))["count"]
    return body


def _load(filter_id: str):
    with engine().uow(write=False) as uow:
        row = filters.get(uow.session, principal(), filter_id)
        uow.session.expunge(row)
        return row


def _find(session, args: dict, **options):
    return filters.find(session, principal(), args.get("resourceType"), args.get("name"), args.get("nameLike"),
                        args.get("owner"), args.get("filterId"), **options)


@blp.route("")
@blp.arguments(FilterArgs, location="query")
@blp.response(200, Filter(many=True))
def list_filters(args):
    """The filters you may use: your own and the shared ones (all, for an administrator)."""
    with engine().uow(write=False) as uow:
        rows = _find(uow.session, args, sort_by=args.get("sortBy"), sort_order=args.get("sortOrder", "asc"),
                     first_result=args["firstResult"], max_results=args["maxResults"])
        for row in rows:
            uow.session.expunge(row)
    return [_render(row, args["itemCount"]) for row in rows]


@blp.route("/count")
@blp.arguments(FilterArgs, location="query")
@blp.response(200, schemas.Count)
def count_filters(args):
    with engine().uow(write=False) as uow:
        return {"count": _find(uow.session, args, count_only=True)}


@blp.route("/create", methods=["POST"])
@blp.arguments(FilterBody)
@blp.response(200, Filter)
def create_filter(body):
    with engine().uow() as uow:
        row = filters.create(uow.session, principal(), body, _check)
        result = _render(row)
        uow.commit()
    return result


@blp.route("/<filter_id>")
@blp.arguments(ItemCountArgs, location="query")
@blp.response(200, Filter)
def get_filter(args, filter_id):
    return _render(_load(filter_id), args["itemCount"])


@blp.route("/<filter_id>", methods=["PUT"])
@blp.arguments(FilterBody)
@blp.response(204)
def update_filter(body, filter_id):
    with engine().uow() as uow:
        filters.update(uow.session, principal(), filter_id, body, _check)
        uow.commit()


@blp.route("/<filter_id>", methods=["DELETE"])
@blp.response(204)
def delete_filter(filter_id):
    with engine().uow() as uow:
        filters.delete(uow.session, principal(), filter_id)
        uow.commit()


def _listed(filter_id: str, extending: dict | None, paging: dict) -> list:
    return task.listed(_tasks_query(_load(filter_id), extending, paging))


@blp.route("/<filter_id>/list")
@blp.arguments(schemas.Paging, location="query")
@blp.response(200, schemas.Task(many=True))
def filter_list(paging, filter_id):
    """The filter's tasks that you may see."""
    return _listed(filter_id, None, paging)


@blp.route("/<filter_id>/list", methods=["POST"])
@blp.arguments(schemas.Paging, location="query")
@blp.arguments(schemas.QueryExtension)
@blp.response(200, schemas.Task(many=True))
def filter_list_extended(paging, body, filter_id):
    """The same, the filter's query extended by the body's (a task query: its keys win)."""
    return _listed(filter_id, body, paging)


@blp.route("/<filter_id>/count")
@blp.response(200, schemas.Count)
def filter_count(filter_id):
    return task.counted(_tasks_query(_load(filter_id), None, {}))


@blp.route("/<filter_id>/count", methods=["POST"])
@blp.arguments(schemas.QueryExtension)
@blp.response(200, schemas.Count)
def filter_count_extended(body, filter_id):
    return task.counted(_tasks_query(_load(filter_id), body, {}))


@blp.route("/<filter_id>/singleResult")
@blp.response(200, schemas.Task)
@blp.alt_response(204, description="the filter lists no task for you")
def filter_single(filter_id):
    found = _listed(filter_id, None, {"maxResults": 2})
    if len(found) > 1:
        raise BadRequest(f"Filter with id '{filter_id}' does not return a single result")
    return (found[0], 200) if found else (None, 204)
