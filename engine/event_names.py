"""What a deployed process definition starts on and which signals it knows, read once
per definition version from its BPMN file (a definition never changes): the message
and signal names of its start events, for POST /message and POST /signal to find the
processes to start, and the names of the signals its file declares, for POST /signal
to tell a name no model knows (a typo) from one nobody waits for now."""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from lxml import etree
from sqlalchemy import and_, func, select

from .definitions import resource_content
from .models import ProcessDefinition
from .parser import BPMN_NS, SAFE_XML_PARSER


@dataclass(frozen=True)
class EventNames:
    start: dict            # "message" | "signal" -> frozenset of the names its start events wait for
    signals: frozenset     # every signal name declared in its BPMN file


class _Cache:
    """definition id -> EventNames."""

    def __init__(self, size: int = 2048) -> None:
        self._entries: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.size = size

    def get(self, session, definition: ProcessDefinition) -> EventNames:
        with self._lock:
            found = self._entries.get(definition.id)
        if found is not None:
            return found
        names = _read(session, definition)
        with self._lock:
            self._entries[definition.id] = names
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return names


_NS = {"bpmn": BPMN_NS}


def _read(session, definition: ProcessDefinition) -> EventNames:
    _, content = resource_content(session, definition.resource_id)
    root = etree.fromstring(content, SAFE_XML_PARSER)
    process = root.find(f"bpmn:process[@id='{definition.key}']", _NS)
    start = {kind: frozenset(() if process is None else (name for _, name in start_events(root, process, kind)))
             for kind in ("message", "signal")}
    return EventNames(start, frozenset(e.get("name") for e in root.iterfind("bpmn:signal", _NS) if e.get("name")))


def start_events(root, process, kind: str) -> list:
    """(start event, name) for each of the process's start events that waits for a
    message or signal (`kind`) with a name."""
    names = {e.get("id"): e.get("name") for e in root.iterfind(f"bpmn:{kind}", _NS)}
    found = []
    for definition in process.iterfind(f"bpmn:startEvent/bpmn:{kind}EventDefinition", _NS):
        name = names.get(definition.get(f"{kind}Ref"))
        if name:
            found.append((definition.getparent(), name))
    return found


_cache = _Cache()


def of(session, definition: ProcessDefinition) -> EventNames:
    return _cache.get(session, definition)


def latest_starting(session, kind: str, name: str, tenant=None, active_only: bool = True) -> list[ProcessDefinition]:
    """The latest version of every active process (`active_only`, else suspended ones
    too) whose start event waits for the message or signal `name`, by key.  `tenant`:
    None for all, or a tenant id, or NO_TENANT for the definitions of none."""
    latest = (select(ProcessDefinition.key, ProcessDefinition.tenant_id,
                     func.max(ProcessDefinition.version).label("version"))
              .group_by(ProcessDefinition.key, ProcessDefinition.tenant_id).subquery())
    query = select(ProcessDefinition).join(latest, and_(
        latest.c.key == ProcessDefinition.key, latest.c.version == ProcessDefinition.version,
        latest.c.tenant_id.is_not_distinct_from(ProcessDefinition.tenant_id)))
    if active_only:
        query = query.where(ProcessDefinition.suspended.is_(False))
    query = for_tenant(query, ProcessDefinition.tenant_id, tenant).order_by(ProcessDefinition.key)
    return [d for d in session.execute(query).scalars().all() if name in of(session, d).start[kind]]


def knows_signal(session, name: str) -> bool:
    """Whether any deployed definition's file declares a signal of that name."""
    definitions = session.execute(select(ProcessDefinition)).scalars().all()
    return any(name in of(session, d).signals for d in definitions)


NO_TENANT = object()


def for_tenant(query, column, tenant):
    if tenant is None:
        return query
    if tenant is NO_TENANT:
        return query.where(column.is_(None))
    return query.where(column == tenant)
