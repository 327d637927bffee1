"""Officers' notes on tasks (Camunda 7's task comments): `POST /task/{id}/comment/create`
on an open task by whoever may see it; read by them while it is open and, once it is
done, by whoever takes part in its case; never by an applicant, who writes none either
(the notes are the hall's own).  Kept with the case's history, deleted with the
case (a foreign key), not written into the case's audit chain: a note changes nothing
the case decides, and writing it there would take the case's lock from its commands."""
from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import authz, instances, tasks
from .clock import utcnow
from .errors import BadRequest, Forbidden, NotFound
from .identity import Principal
from .models import ActivityInstance, TaskComment

MAX_MESSAGE = 4000


def add(session: Session, principal: Principal, task_id: str, message, instance_id: str | None = None) -> TaskComment:
    """A note on an open task the principal may see (tasks.get checks)."""
    _refuse_applicants(principal)
    view = tasks.get(session, principal, task_id)
    if not isinstance(message, str) or not message.strip():
        raise BadRequest("a comment needs a 'message' (text)")
    if len(message) > MAX_MESSAGE:
        raise BadRequest(f"a comment's message has at most {MAX_MESSAGE} characters (it has {len(message)})")
    if instance_id not in (None, view.row.instance_id):
        raise BadRequest(f"task {task_id} belongs to process instance {view.row.instance_id}, not {instance_id}")
    comment = TaskComment(id=str(uuid.uuid4()), task_id=task_id, instance_id=view.row.instance_id,
                          user_id=principal.user_id, time=utcnow(), message=message)
    session.add(comment)
    session.flush()
    return comment


def of_task(session: Session, principal: Principal, task_id: str) -> list[TaskComment]:
    """The task's notes, oldest first: of an open task for whoever may see it, of a done
    one for whoever takes part in its case."""
    _require_reader(session, principal, task_id)
    return list(session.execute(select(TaskComment).where(TaskComment.task_id == task_id)
                                .order_by(TaskComment.time, TaskComment.id)).scalars())


def one(session: Session, principal: Principal, task_id: str, comment_id: str) -> TaskComment:
    _require_reader(session, principal, task_id)
    found = session.get(TaskComment, comment_id)
    if found is None or found.task_id != task_id:
        raise NotFound(f"task {task_id} has no comment with id {comment_id}")
    return found


def _refuse_applicants(principal: Principal) -> None:
    if authz.APPLICANTS_GROUP in principal.groups and not principal.is_admin:
        raise Forbidden(f"user '{principal.user_id}' is an applicant: notes on tasks are the hall's own",
                        userId=principal.user_id)


def _require_reader(session: Session, principal: Principal, task_id: str) -> None:
    _refuse_applicants(principal)
    try:
        tasks.get(session, principal, task_id)
        return
    except NotFound:
        pass
    instance_id = session.execute(select(ActivityInstance.instance_id)
                                  .where(ActivityInstance.id == task_id)).scalar()
    if instance_id is None:
        raise NotFound(f"No task found for task id {task_id}")
    instances.get(session, principal, instance_id, running_only=False)
