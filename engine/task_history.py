"""A user task's history row (its row of activity_instance, what GET /history/task reads)
repeats the open task's fields, so that the history shows a task as it is while open and
as it was when it ended (engine/projections.py writes the row when the task begins and
ends; engine/history.py reads it).

Whatever changes one of those fields on an open task (a claim, PUT /task/{id}, a
delegation, a legal clock's deadline moving) changes the row too, in the same
transaction, through copy_to_history."""
from __future__ import annotations

from sqlalchemy import bindparam, update

from .fastsql import Shapes
from .models import ActivityInstance, UserTask

# user_task column -> activity_instance column
TASK_HISTORY = {"name": "task_name", "description": "description", "assignee": "assignee", "owner": "owner",
                "priority": "priority", "due": "due", "follow_up": "follow_up"}
_TASKS, _ACTIVITIES = UserTask.__table__, ActivityInstance.__table__
_COPIES = Shapes()


def copy_to_history(session, rows: list[dict]) -> None:
    """The open user tasks' history rows get their new values: `rows` of {"task_id", and
    user_task columns of TASK_HISTORY}, all with the same columns (one executemany)."""
    if not rows:
        return
    columns = tuple(column for column in rows[0] if column != "task_id")

    def build():
        return update(_ACTIVITIES).where(_ACTIVITIES.c.id == bindparam("row_id")).values(
            {TASK_HISTORY[column]: bindparam(f"new_{column}", type_=_TASKS.c[column].type) for column in columns})
    # bound as row_id and new_<column>: an UPDATE compiled from its parameters' names SETs a column of such a name
    _COPIES.get(columns, build).executemany(session, [
        {"row_id": row["task_id"], **{f"new_{column}": row[column] for column in columns}} for row in rows])
