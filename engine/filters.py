"""Saved task queries (Camunda 7's filters, /filter): what Camunda's Tasklist lists tasks
through.  A filter is its owner's, or everyone's when it has no owner (only an
administrator saves such a one).  Its query is Camunda's task query as a JSON object
(POST /task's body), kept as given; it runs as the user who lists it, so a shared filter
shows each user only the tasks they may see.  Of Camunda's expressions, the ones its
Tasklist's filters use are taken: `${currentUser()}` in `assigneeExpression`,
`candidateUserExpression`, `involvedUserExpression` and `ownerExpression`, and
`${currentUserGroups()}` in `candidateGroupsExpression`."""
from __future__ import annotations

import re
import uuid

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from . import authz
from .errors import BadRequest, Forbidden, NotFound
from .identity import Principal
from .models import TaskFilter

RESOURCE_TYPES = ("Task",)
USER_EXPRESSIONS = ("assignee", "candidateUser", "involvedUser", "owner")
_CURRENT_USER = re.compile(r"^\s*[$#]\{\s*currentUser\(\)\s*\}\s*$")
_CURRENT_USER_GROUPS = re.compile(r"^\s*[$#]\{\s*currentUserGroups\(\)\s*\}\s*$")
SORTS = {"filterId": TaskFilter.id, "resourceType": TaskFilter.resource_type, "name": TaskFilter.name,
         "owner": TaskFilter.owner}


def resolved(query: dict, principal: Principal) -> dict:
    """The filter's query with its expressions put in for `principal`; another expression
    is a 400 naming it."""
    out = {}
    for name, value in (query or {}).items():
        if not name.endswith("Expression"):
            out[name] = value
            continue
        field = name[:-len("Expression")]
        if field in USER_EXPRESSIONS and isinstance(value, str) and _CURRENT_USER.match(value):
            out[field] = principal.user_id
        elif field == "candidateGroups" and isinstance(value, str) and _CURRENT_USER_GROUPS.match(value):
            out[field] = authz.department_groups(principal)
        else:
            raise BadRequest(f"filter query: {name} {value!r} is not supported here; "
                             f"{', '.join(f + 'Expression' for f in USER_EXPRESSIONS)} take ${{currentUser()}} "
                             "and candidateGroupsExpression ${currentUserGroups()}")
    return out


def _visible(principal: Principal):
    return None if principal.is_admin else or_(TaskFilter.owner.is_(None), TaskFilter.owner == principal.user_id)


def get(session: Session, principal: Principal, filter_id: str) -> TaskFilter:
    found = session.get(TaskFilter, filter_id)
    if found is None or not (principal.is_admin or found.owner in (None, principal.user_id)):
        raise NotFound(f"Filter with id '{filter_id}' does not exist.")
    return found


def find(session: Session, principal: Principal, resource_type=None, name=None, name_like=None, owner=None,
         filter_id=None, sort_by=None, sort_order="asc", first_result=0, max_results=None, count_only=False):
    stmt = select(func.count()).select_from(TaskFilter) if count_only else select(TaskFilter)
    visible = _visible(principal)
    if visible is not None:
        stmt = stmt.where(visible)
    for column, value in ((TaskFilter.id, filter_id), (TaskFilter.resource_type, resource_type),
                          (TaskFilter.name, name), (TaskFilter.owner, owner)):
        if value is not None:
            stmt = stmt.where(column == value)
    if name_like is not None:
        stmt = stmt.where(TaskFilter.name.like(name_like, escape="\\"))
    if count_only:
        return session.execute(stmt).scalar()
    column = SORTS[sort_by] if sort_by else TaskFilter.name
    stmt = stmt.order_by(column.desc() if sort_order == "desc" else column.asc(), TaskFilter.id)
    stmt = stmt.offset(first_result or 0)
    if max_results is not None:
        stmt = stmt.limit(max_results)
    return list(session.execute(stmt).scalars())


def _owner(principal: Principal, owner: str | None) -> str | None:
    """Who a saved filter belongs to: anyone saves their own; only an administrator saves
    one for another user or for everyone (no owner)."""
    if principal.is_admin:
        return owner
    if owner not in (None, principal.user_id):
        raise Forbidden(f"user '{principal.user_id}' may save filters of their own only, not of '{owner}'",
                        userId=principal.user_id)
    return principal.user_id


def create(session: Session, principal: Principal, body: dict, check) -> TaskFilter:
    """A new filter; `check(query)` refuses a query the task query would refuse."""
    resource_type = body.get("resourceType")
    if resource_type not in RESOURCE_TYPES:
        raise BadRequest(f"resourceType {resource_type!r}: this server keeps filters of tasks only ('Task')")
    row = TaskFilter(id=str(uuid.uuid4()), resource_type=resource_type, name=_name(body.get("name")),
                     owner=_owner(principal, body.get("owner")), query=_query(body.get("query"), principal, check),
                     properties=body.get("properties") or {})
    session.add(row)
    session.flush()
    return row


def update(session: Session, principal: Principal, filter_id: str, body: dict, check) -> None:
    """Camunda's PUT /filter/{id}: name, owner, query and properties replaced."""
    row = _own(session, principal, filter_id)
    row.name = _name(body.get("name"))
    row.owner = _owner(principal, body.get("owner"))
    row.query = _query(body.get("query"), principal, check)
    row.properties = body.get("properties") or {}
    session.flush()


def delete(session: Session, principal: Principal, filter_id: str) -> None:
    session.delete(_own(session, principal, filter_id))
    session.flush()


def _own(session: Session, principal: Principal, filter_id: str) -> TaskFilter:
    row = get(session, principal, filter_id)
    if not principal.is_admin and row.owner != principal.user_id:
        raise Forbidden(f"filter '{filter_id}' is shared: only an administrator changes it", userId=principal.user_id)
    return row


def _name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise BadRequest("a filter needs a 'name'")
    if len(name) > 255:
        raise BadRequest(f"a filter's name has at most 255 characters (it has {len(name)})")
    return name


def _query(query, principal: Principal, check) -> dict:
    if query is None:
        return {}
    if not isinstance(query, dict):
        raise BadRequest("a filter's 'query' is an object: Camunda's task query (POST /task's body)")
    check(resolved(query, principal))
    return query
