"""Deployed process and form definitions: lookups by id/key/binding, and the parsed
specs an instance runs on (cached per definition version)."""
from __future__ import annotations

import hashlib
import json

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from . import forms as form_schema
from . import legal
from .errors import BadRequest, NotFound
from .fastsql import Statement
from .models import FormDefinition, ProcessDefinition, Resource
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
        raise NotFound(f"no deployed process definition with key '{key}'")
    return row


def definition_by_id(session: Session, definition_id: str) -> ProcessDefinition:
    row = session.get(ProcessDefinition, definition_id)
    if row is None:
        raise NotFound(f"no deployed process definition with id '{definition_id}'")
    return row


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
        return spec, subprocess_specs

    # --- forms ----------------------------------------------------------------------

    def form_definition_row(self, session: Session, ref: dict, deployment_id: str | None,
                            tenant_id: str | None = None):
        """camunda:formRef with formRefBinding latest | deployment | version: the
        form_definition row as read-only values (every completion of a task with a
        Camunda Form looks it up: one statement on the driver's cursor, not an ORM load)."""
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
