"""Task comments (Camunda 7): an officer's notes on a task, kept with the case's history."""
from __future__ import annotations

import marshmallow as ma
from flask import url_for

from engine import comments
from engine.variables import format_date

from .auth import engine, principal
from .blueprint import Blueprint
from .schemas import Link, Strict

blp = Blueprint("task_comment", __name__, url_prefix="/engine-rest/task",
                description="Officers' notes on tasks (Camunda's task comments)")


class CommentBody(Strict):
    message = ma.fields.String(required=True, metadata={"description": "the note (at most 4,000 characters)"})
    processInstanceId = ma.fields.String(allow_none=True, metadata={"description": "the task's case, if given"})


class Comment(Strict):
    id = ma.fields.String()
    userId = ma.fields.String()
    taskId = ma.fields.String()
    processInstanceId = ma.fields.String()
    time = ma.fields.String()
    message = ma.fields.String()
    removalTime = ma.fields.String(allow_none=True)
    rootProcessInstanceId = ma.fields.String()
    links = ma.fields.List(ma.fields.Nested(Link))


def _render(row, links: bool = False) -> dict:
    body = {"id": row.id, "userId": row.user_id, "taskId": row.task_id, "processInstanceId": row.instance_id,
            "time": format_date(row.time), "message": row.message, "removalTime": None,
            "rootProcessInstanceId": row.instance_id}
    if links:
        body["links"] = [{"method": "GET", "rel": "self", "href": url_for(
            "task_comment.get_comment", task_id=row.task_id, comment_id=row.id, _external=True)}]
    return body


@blp.route("/<task_id>/comment")
@blp.response(200, Comment(many=True))
def list_comments(task_id):
    """The task's comments, oldest first (also once the task is done, for whoever takes part in its case)."""
    with engine().uow(write=False) as uow:
        return [_render(row) for row in comments.of_task(uow.session, principal(), task_id)]


@blp.route("/<task_id>/comment/<comment_id>")
@blp.response(200, Comment)
def get_comment(task_id, comment_id):
    with engine().uow(write=False) as uow:
        return _render(comments.one(uow.session, principal(), task_id, comment_id))


@blp.route("/<task_id>/comment/create", methods=["POST"])
@blp.arguments(CommentBody)
@blp.response(200, Comment)
def create_comment(body, task_id):
    """A note on an open task, by whoever may see it."""
    with engine().uow() as uow:
        row = comments.add(uow.session, principal(), task_id, body["message"], body.get("processInstanceId"))
        result = _render(row, links=True)
        uow.commit()
    return result
