"""Deployed process and form definitions: lookups by id/key/binding, the list of them
(Camunda's process definition query), and the parsed specs an instance runs on (cached
per definition version)."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.orm import Session

from . import authz
from . import forms as form_schema
from . import legal
from .errors import BadRequest, NotFound
from .fastsql import LIKE_ESCAPE, Statement
from .identity import Principal
from .models import Deployment, FormDefinition, ProcessDefinition, Resource
from .specs import connect_multi_instances
from .variables import DATE_PRECISION
from .workflows import SpecCache, parse_resources


def _of_tenant(table, shared: bool):
    """No tenant (`shared`), or the tenant bound as :tenant_id (`IS :tenant_id` is not SQL
    on PostgreSQL)."""
    return table.c.tenant_id.is_(None) if shared else table.c.tenant_id == bindparam("tenant_id")


_LATEST = {shared: Statement(select(ProcessDefinition.__table__)
                             .where(ProcessDefinition.key == bindparam("key"),
                                    _of_tenant(ProcessDefinition.__table__, shared))
                             .order_by(ProcessDefinition.version.desc()).limit(1))
           for shared in (True, False)}


def latest_definition(session: Session, key: str, tenant_id: str | None = None):
    """The newest version of `key` (of the tenant, or without one) as read-only values:
    starting by key needs it on every start, one statement on the driver's cursor
    instead of an ORM load.  What the session holds is flushed first, as an ORM query
    would (a deployment checking its call activities)."""
    session.flush()
    row = _LATEST[tenant_id is None].execute(session, {"key": key, "tenant_id": tenant_id}).first()
    if row is None:
        raise NotFound(f"no deployed process definition with key '{key}' of tenant '{tenant_id}'" if tenant_id
                       else f"no deployed process definition with key '{key}' that belongs to no tenant"
                       if _OF_SOME_TENANT.execute(session, {"key": key}).first()
                       else f"no deployed process definition with key '{key}'")
    return row


_OF_SOME_TENANT = Statement(select(ProcessDefinition.tenant_id).where(ProcessDefinition.key == bindparam("key"))
                            .limit(1))


def definition_by_id(session: Session, definition_id: str) -> ProcessDefinition:
    row = session.get(ProcessDefinition, definition_id)
    if row is None:
        raise NotFound(f"no deployed process definition with id '{definition_id}'")
    return row


# camunda:historyTimeToLive: days, written 180 or P180D (Camunda 7's ParseUtil)
_TTL = re.compile(r"P(\d+)D|(\d+)", re.ASCII)
_TTL_MAX = 2**31 - 1        # a Java int, as Camunda keeps it


def history_time_to_live(text: str | None) -> int | None:
    """A process's camunda:historyTimeToLive in days, or None where it has none; a
    ValueError says what is wrong with one Camunda would refuse too."""
    if not text:
        return None
    match = _TTL.fullmatch(text)
    days = int(match.group(1) or match.group(2)) if match else None
    if days is None or days > _TTL_MAX:
        raise ValueError(f"camunda:historyTimeToLive {text!r} is not a number of days: write 180 or P180D")
    return days


# a process-level camunda:property: cases are started with a business key, which the
# department systems and their messages answer by (the enterprise opening's bank)
BUSINESS_KEY_REQUIRED = "businessKeyRequired"


def business_key_required(properties: dict | None) -> bool:
    """A process's camunda:property businessKeyRequired: `true`, or `false` as without it;
    a ValueError for any other value (refused at deploy)."""
    if not properties or BUSINESS_KEY_REQUIRED not in properties:
        return False
    value = (properties[BUSINESS_KEY_REQUIRED] or "").strip().lower()
    if value not in ("true", "false"):
        raise ValueError(f"camunda:property {BUSINESS_KEY_REQUIRED} must be true or false, "
                         f"not {properties[BUSINESS_KEY_REQUIRED]!r}")
    return value == "true"


def require_business_key(definition, business_key: str | None) -> None:
    """Before a case of `definition` is made: a 400 when it needs a business key and has none."""
    if (business_key is None or not business_key.strip()) and business_key_required(definition.properties):
        raise BadRequest(f"process '{definition.key}' needs a business key (its camunda:property "
                         f"{BUSINESS_KEY_REQUIRED} is true): send \"businessKey\", the case's own number that "
                         "department systems and messages answer by")


# --- the list of definitions (GET /process-definition) -----------------------------

@dataclass
class DefinitionQuery:
    """Camunda 7.22's process definition query, the filters whose data a definition
    holds (api/schemas.py reads them from the request); each one given narrows the list."""
    ids: list | None = None                     # processDefinitionId and processDefinitionIdIn: both
    keys: list | None = None                    # key and keysIn: both
    key_like: str | None = None
    name: str | None = None
    name_like: str | None = None
    deployment_id: str | None = None
    deployed_after: datetime | None = None      # naive UTC: after that millisecond (Camunda: exclusive)
    deployed_at: datetime | None = None         # in that millisecond
    version: int | None = None
    latest_version: bool = False
    resource_name: str | None = None
    resource_name_like: str | None = None
    version_tag: str | None = None
    version_tag_like: str | None = None
    without_version_tag: bool = False
    startable_in_tasklist: bool = False         # camunda:isStartableInTasklist is not "false"
    not_startable_in_tasklist: bool = False     # it is
    suspended: bool | None = None               # Camunda's active (False) or suspended (True)
    tenant_id_in: list | None = None
    without_tenant_id: bool = False
    include_without_tenant_id: bool = False     # with tenant_id_in: those of no tenant too
    startable_by: Principal | None = None       # startablePermissionCheck: whom authz lets start one
    sort_by: str | None = None                  # a name of DEFINITION_SORTS
    sort_order: str = "asc"
    first_result: int = 0
    max_results: int | None = None


_DEFINITION_COLUMNS = ProcessDefinition.__table__.c
# Camunda's sortBy -> the column; every category is BPMN's namespace here (api/render.py),
# so that order is the default one
DEFINITION_SORTS = {
    "category": None, "key": _DEFINITION_COLUMNS.key, "id": _DEFINITION_COLUMNS.id,
    "name": _DEFINITION_COLUMNS.name, "version": _DEFINITION_COLUMNS.version,
    "deploymentId": _DEFINITION_COLUMNS.deployment_id, "deployTime": Deployment.__table__.c.deployment_time,
    "tenantId": _DEFINITION_COLUMNS.tenant_id, "versionTag": _DEFINITION_COLUMNS.version_tag}


def process_definitions(session: Session, query: DefinitionQuery) -> list:
    """The page of definitions `query` asks for, in its order (key and version without one)."""
    stmt = _ordered(_filtered(query), query)
    if query.startable_by is None:
        stmt = stmt.offset(query.first_result)
        return session.execute(stmt if query.max_results is None else stmt.limit(query.max_results)).scalars().all()
    # whom a definition lets start a case is authz's rule, read row by row: a catalogue of
    # processes, not a list of cases
    rows = [r for r in session.execute(stmt).scalars() if authz.why_not_start(query.startable_by, r) is None]
    end = None if query.max_results is None else query.first_result + query.max_results
    return rows[query.first_result:end]


def count_process_definitions(session: Session, query: DefinitionQuery) -> int:
    if query.startable_by is not None:
        return len(process_definitions(session, replace(query, first_result=0, max_results=None)))
    return session.execute(select(func.count()).select_from(_filtered(query).subquery())).scalar()


def _filtered(q: DefinitionQuery):
    d = ProcessDefinition
    stmt = select(d).join(Deployment, Deployment.id == d.deployment_id)
    conditions = [
        (q.ids is not None, lambda: d.id.in_(q.ids)), (q.keys is not None, lambda: d.key.in_(q.keys)),
        (q.key_like, lambda: d.key.like(q.key_like, escape=LIKE_ESCAPE)), (q.name, lambda: d.name == q.name),
        (q.name_like, lambda: d.name.like(q.name_like, escape=LIKE_ESCAPE)),
        (q.deployment_id, lambda: d.deployment_id == q.deployment_id),
        # to the millisecond, as Camunda writes a date (a deployment keeps microseconds)
        (q.deployed_after, lambda: Deployment.deployment_time >= q.deployed_after + DATE_PRECISION),
        (q.deployed_at, lambda: (Deployment.deployment_time >= q.deployed_at)
         & (Deployment.deployment_time < q.deployed_at + DATE_PRECISION)),
        (q.version is not None, lambda: d.version == q.version),
        (q.resource_name, lambda: d.resource_name == q.resource_name),
        (q.resource_name_like, lambda: d.resource_name.like(q.resource_name_like, escape=LIKE_ESCAPE)),
        (q.version_tag, lambda: d.version_tag == q.version_tag),
        (q.version_tag_like, lambda: d.version_tag.like(q.version_tag_like, escape=LIKE_ESCAPE)),
        (q.without_version_tag, lambda: d.version_tag.is_(None)),
        (q.startable_in_tasklist, lambda: d.startable.is_(True)),
        (q.not_startable_in_tasklist, lambda: d.startable.is_(False)),
        (q.suspended is not None, lambda: d.suspended.is_(q.suspended)),
        (q.tenant_id_in, lambda: or_(d.tenant_id.in_(q.tenant_id_in), d.tenant_id.is_(None))
         if q.include_without_tenant_id else d.tenant_id.in_(q.tenant_id_in)),
        (q.without_tenant_id, lambda: d.tenant_id.is_(None)),
    ]
    for given, condition in conditions:
        if given:
            stmt = stmt.where(condition())
    if q.latest_version:            # the newest version of each key, of each tenant (Camunda)
        latest = select(d.key, d.tenant_id, func.max(d.version).label("version")) \
            .group_by(d.key, d.tenant_id).subquery()
        stmt = stmt.join(latest, (latest.c.key == d.key) & latest.c.tenant_id.is_not_distinct_from(d.tenant_id)
                         & (latest.c.version == d.version))
    return stmt


def _ordered(stmt, q: DefinitionQuery):
    ties = (_DEFINITION_COLUMNS.key, _DEFINITION_COLUMNS.version, _DEFINITION_COLUMNS.id)
    column = DEFINITION_SORTS.get(q.sort_by)
    if column is None:
        return stmt.order_by(*ties)
    # an unset value (a name, a tag, a tenant) last going up, first going down, on both stores
    first = column.desc().nulls_first() if q.sort_order == "desc" else column.asc().nulls_last()
    return stmt.order_by(first, *ties)


def next_version(session: Session, model, key: str, tenant_id: str | None) -> int:
    # IS NOT DISTINCT FROM: tenant_id may be NULL (SQLite's `IS` with a value is an error on PostgreSQL)
    current = session.execute(select(func.max(model.version)).where(
        model.key == key, model.tenant_id.is_not_distinct_from(tenant_id))).scalar()
    return (current or 0) + 1


def resolve_called(session: Session, definition: ProcessDefinition) -> dict:
    """Pin the latest version of every process the definition calls, transitively."""
    pinned: dict[str, str] = {}
    pending = list(definition.called_keys or [])
    while pending:
        key = pending.pop()
        if key in pinned or key == definition.key:
            continue
        called = latest_definition(session, key, definition.tenant_id)
        pinned[key] = called.id
        pending.extend(called.called_keys or [])
    return pinned


def resource_content(session: Session, resource_id: str) -> tuple[str, bytes]:
    row = session.get(Resource, resource_id)
    return row.name, row.content


_DEFINITION = select(ProcessDefinition.__table__).where(ProcessDefinition.__table__.c.id == bindparam("definition_id"))


def _form_query(binding: str, shared: bool) -> Statement:
    """The newest form_definition row of a key for a formRefBinding, without a tenant
    (`shared`) or of the tenant given."""
    forms = FormDefinition.__table__
    query = select(forms).where(forms.c.key == bindparam("key"), _of_tenant(forms, shared))
    if binding == "deployment":
        query = query.where(forms.c.deployment_id == bindparam("deployment_id"))
    elif binding == "version":
        query = query.where(forms.c.version == bindparam("version"))
    return Statement(query.order_by(forms.c.version.desc()).limit(1))


_FORM_BY_BINDING = {(binding, shared): _form_query(binding, shared)
                    for binding in ("latest", "deployment", "version") for shared in (True, False)}
# the form deployed under a resource name in a deployment (camunda-forms:deployment:NAME)
_FORM_BY_RESOURCE = Statement(select(FormDefinition.__table__).where(
    FormDefinition.__table__.c.deployment_id == bindparam("deployment_id"),
    FormDefinition.__table__.c.resource_name == bindparam("resource_name")).limit(1))

# camunda:formKey="camunda-forms:deployment:order.form": Camunda 7's reference, before
# camunda:formRef, to the Camunda Form deployed as resource order.form beside the diagram;
# other keys (camunda-forms:app:..., embedded:...) name forms of a front end's own
DEPLOYED_FORM_KEY = "camunda-forms:deployment:"


def deployed_form_resource(form_key) -> str | None:
    """The resource name a camunda:formKey names in its deployment, or None."""
    if isinstance(form_key, str) and form_key.startswith(DEPLOYED_FORM_KEY):
        return form_key[len(DEPLOYED_FORM_KEY):]
    return None


def form_reference(form_ref: dict | None, form_key) -> dict | None:
    """The Camunda Form a user task or start event shows and the server enforces: its
    camunda:formRef ({"key", "binding", "version"}), else the form its formKey names in its
    deployment ({"resource"}), else None."""
    if form_ref is not None:
        return form_ref
    resource = deployed_form_resource(form_key)
    return {"resource": resource} if resource is not None else None


def start_form_reference(start_form: dict | None) -> dict | None:
    """form_reference() of a definition's start event (its `start_form` column)."""
    start_form = start_form or {}
    ref = start_form.get("formRef")
    return form_reference({"key": ref, "binding": start_form.get("binding"), "version": start_form.get("version")}
                          if ref else None, start_form.get("formKey"))


class Definitions:
    """The parsed-spec cache in front of the repository tables."""

    def __init__(self) -> None:
        self.specs = SpecCache()
        self._forms = SpecCache(max_entries=1024)
        self._rows = SpecCache(max_entries=1024)

    def definition(self, session: Session, definition_id: str):
        """The process_definition row as read-only values, cached: every command on an
        instance needs it, and a deployed definition never changes (rows go only with
        their deployment, and that takes its instances with it)."""
        def load():
            row = session.execute(_DEFINITION, {"definition_id": definition_id}).first()
            if row is None:
                raise NotFound(f"no deployed process definition with id '{definition_id}'")
            return row
        return self._rows.get(definition_id, load)

    def find(self, session, definition_id: str):
        """definition(), or None when it is gone: a read on a bare connection sees what was
        committed before each statement, and a deployment deleted since the case was read
        takes its definition (and the case) with it."""
        try:
            return self.definition(session, definition_id)
        except NotFound:
            return None

    def spec_for(self, session: Session, definition: ProcessDefinition, called: dict):
        key = (definition.id, tuple(sorted(called.items())))
        return self.specs.get(key, lambda: self._build(session, definition, called))

    def _build(self, session: Session, definition: ProcessDefinition, called: dict):
        resources = [resource_content(session, definition.resource_id)]
        seen = {definition.resource_id}
        for called_id in called.values():
            row = definition_by_id(session, called_id)
            if row.resource_id not in seen:
                seen.add(row.resource_id)
                resources.append(resource_content(session, row.resource_id))
        parser = parse_resources(resources)
        spec, subprocess_specs = parser.get_spec(definition.key), parser.get_subprocess_specs(definition.key)
        legal.connect_all(spec, subprocess_specs)
        connect_multi_instances(spec, subprocess_specs)
        return spec, subprocess_specs

    # --- forms ----------------------------------------------------------------------

    def form_definition_row(self, session: Session, ref: dict, deployment_id: str | None,
                            tenant_id: str | None = None):
        """camunda:formRef with formRefBinding latest | deployment | version, or the
        resource a formKey names in the deployment (form_reference): the form_definition
        row as read-only values (every completion of a task with a Camunda Form looks it
        up: one statement on the driver's cursor, not an ORM load)."""
        if ref.get("resource") is not None:
            row = _FORM_BY_RESOURCE.execute(session, {"deployment_id": deployment_id,
                                                      "resource_name": ref["resource"]}).first()
            if row is None:
                raise NotFound(f"no form deployed as resource '{ref['resource']}' in deployment '{deployment_id}' "
                               f"(camunda:formKey {DEPLOYED_FORM_KEY}{ref['resource']})")
            return row
        key, binding = ref.get("key"), (ref.get("binding") or "latest")
        params = {"key": key, "tenant_id": tenant_id}
        if binding == "deployment":
            params["deployment_id"] = deployment_id
        elif binding == "version":
            try:
                params["version"] = int(ref.get("version"))
            except (TypeError, ValueError):
                raise BadRequest(f"form '{key}': formRefVersion {ref.get('version')!r} is not a number") from None
        query = _FORM_BY_BINDING[(binding if binding in ("deployment", "version") else "latest", tenant_id is None)]
        row = query.execute(session, params).first()
        if row is None:
            raise NotFound(f"no deployed form with id '{key}' (binding {binding})")
        return row

    def form(self, session: Session, row) -> form_schema.FormDefinition:
        def build():
            name, content = resource_content(session, row.resource_id)
            return form_schema.parse_form(content, name)
        return self._forms.get(row.id, build)


def checksum(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def canonical_checksum(element) -> str:
    """Checksum of one process element, insensitive to diagram moves elsewhere in the file."""
    from lxml import etree
    return hashlib.sha256(etree.tostring(element, method="c14n")).hexdigest()


def json_checksum(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
