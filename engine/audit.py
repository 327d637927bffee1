"""The audit trail (全程留痕): one append-only, hash-chained event per state change.

Each process instance has its own chain; the instance row holds the chain's head
(hash and sequence number), so an edited, inserted or deleted event is detectable and
appending never contends across instances.  What happens outside a case (deployments,
users, groups, tokens, calendars) and every refused write is appended to one more chain,
`system`, whose head is a row of its own; a refusal naming a case is filed there, never in
the case's chain, which only records what changed the case.  `verify_*` recompute it all.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from .clock import utcnow
from .fastsql import Statement
from .models import AuditChainHead, AuditEvent, ProcessInstance, SystemAuditEvent
from .variables import jsonable


@dataclass
class ChainHead:
    hash: str | None
    seq: int


def event_hash(prev: str | None, seq: int, at: datetime, actor: str | None, kind: str,
               activity_id: str | None, task_id: str | None, payload: dict) -> str:
    body = json.dumps({"prev": prev, "seq": seq, "at": at.isoformat(), "actor": actor, "kind": kind,
                       "activity": activity_id, "task": task_id, "payload": payload},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


_INSERT_EVENT = Statement(AuditEvent.__table__.insert())


def append(session: Session, head: ChainHead, instance_id: str | None, at: datetime, actor: str | None,
           kind: str, payload: dict | None = None, activity_id: str | None = None,
           task_id: str | None = None) -> ChainHead:
    """Add one event after `head`; returns the new head (the caller stores it)."""
    payload = jsonable(payload or {})
    seq = head.seq + 1
    digest = event_hash(head.hash, seq, at, actor, kind, activity_id, task_id, payload)
    # a Core INSERT built once and run on the driver's cursor, rather than an ORM object for
    # the flush at commit (~3x cheaper; engine/fastsql.py)
    _INSERT_EVENT.execute(session, dict(instance_id=instance_id, seq=seq, at=at, actor=actor, kind=kind,
                                        activity_id=activity_id, task_id=task_id, payload=payload,
                                        prev_hash=head.hash, hash=digest))
    return ChainHead(digest, seq)


# --- the system chain: changes outside any case, and refused writes ------------------

SYSTEM_CHAIN = "system"


def system_event_hash(prev: str | None, seq: int, at: datetime, actor: str | None, kind: str, outcome: str,
                      instance_id: str | None, target: str | None, payload: dict) -> str:
    body = json.dumps({"prev": prev, "seq": seq, "at": at.isoformat(), "actor": actor, "kind": kind,
                       "outcome": outcome, "instance": instance_id, "target": target, "payload": payload},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def _locked_system_head(session: Session) -> AuditChainHead:
    """The chain head, row-locked (PostgreSQL) so concurrent appends queue; created on first use."""
    stmt = select(AuditChainHead).where(AuditChainHead.name == SYSTEM_CHAIN).with_for_update()
    head = session.execute(stmt).scalar_one_or_none()
    if head is None:
        insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert
        session.execute(insert(AuditChainHead).values(name=SYSTEM_CHAIN, hash=None, seq=0)
                        .on_conflict_do_nothing(index_elements=["name"]))
        head = session.execute(stmt.execution_options(populate_existing=True)).scalar_one()
    return head


def record_system(session: Session, actor: str | None, kind: str, payload: dict | None = None,
                  outcome: str = "done", instance_id: str | None = None, target: str | None = None) -> None:
    """Append to the system chain inside the caller's transaction (it commits or rolls back with it)."""
    payload = jsonable(payload or {})
    head = _locked_system_head(session)
    seq, at = head.seq + 1, utcnow()
    digest = system_event_hash(head.hash, seq, at, actor, kind, outcome, instance_id, target, payload)
    session.add(SystemAuditEvent(seq=seq, at=at, actor=actor, kind=kind, outcome=outcome, instance_id=instance_id,
                                 target=target, payload=payload, prev_hash=head.hash, hash=digest))
    head.hash, head.seq = digest, seq
    session.flush()


# --- verification (`python app.py audit verify`, the dossier) ----------------------------

@dataclass
class ChainReport:
    """The verdict on one chain; `seq` is the first event found wrong."""
    chain: str                       # "process instance <id>" or "system"
    instance_id: str | None
    events: int
    ok: bool = True
    seq: int | None = None
    problem: str | None = None
    head: str | None = None          # the last event's hash: archive it elsewhere as an anchor

    def fail(self, seq: int | None, problem: str) -> "ChainReport":
        if self.ok:
            self.ok, self.seq, self.problem = False, seq, problem
        return self

    def as_dict(self) -> dict:
        return {"chain": self.chain, "processInstanceId": self.instance_id, "events": self.events,
                "valid": self.ok, "sequence": self.seq, "problem": self.problem}

    def __str__(self) -> str:
        if self.ok:
            return f"{self.chain}: {self.events} event(s), chain intact, head {self.head or '-'}"
        return f"{self.chain}: TAMPERED at sequence {self.seq}: {self.problem}"


def _walk(report: ChainReport, rows, digest, head_hash: str | None, head_seq: int | None) -> ChainReport:
    """Check sequence numbers 1..n without gaps, every hash, every back link, and the head."""
    prev_hash, expected = None, 1
    for row in rows:
        if row.seq != expected:
            what = "is missing (deleted)" if row.seq > expected else "appears twice (inserted)"
            return report.fail(expected, f"event {expected} {what}")
        if row.prev_hash != prev_hash:
            return report.fail(row.seq, "its link to the previous event was changed")
        if digest(row) != row.hash:
            return report.fail(row.seq, "its content was edited after it was written (hash mismatch)")
        prev_hash, expected = row.hash, expected + 1
    report.head = prev_hash
    last = expected - 1
    if head_seq is not None and head_seq != last:
        if head_seq > last:
            return report.fail(last + 1, f"events {last + 1}..{head_seq} were deleted (the head says {head_seq})")
        return report.fail(head_seq + 1, f"events after {head_seq} were added behind the head")
    if head_seq is not None and head_hash != prev_hash:
        return report.fail(last, "the last event does not match the chain head")
    return report


def _instance_digest(row: AuditEvent) -> str:
    return event_hash(row.prev_hash, row.seq, row.at, row.actor, row.kind, row.activity_id, row.task_id,
                      row.payload or {})


def _system_digest(row: SystemAuditEvent) -> str:
    return system_event_hash(row.prev_hash, row.seq, row.at, row.actor, row.kind, row.outcome, row.instance_id,
                             row.target, row.payload or {})


def verify_instance(session: Session, instance_id: str, deleted_ok: frozenset = frozenset()) -> ChainReport:
    rows = session.execute(select(AuditEvent).where(AuditEvent.instance_id == instance_id)
                           .order_by(AuditEvent.seq, AuditEvent.id)).scalars().all()
    head = session.execute(select(ProcessInstance.audit_head, ProcessInstance.audit_seq)
                           .where(ProcessInstance.id == instance_id)).first()
    report = ChainReport(f"process instance {instance_id}", instance_id, len(rows))
    if head is None and instance_id not in deleted_ok:
        report.fail(None, "the process instance row was deleted, but no deployment deletion records it")
    head_hash, head_seq = (head.audit_head, head.audit_seq or 0) if head is not None else (None, None)
    return _walk(report, rows, _instance_digest, head_hash, head_seq)


def verify_system(session: Session) -> ChainReport:
    rows = session.execute(select(SystemAuditEvent).order_by(SystemAuditEvent.seq)).scalars().all()
    head = session.get(AuditChainHead, SYSTEM_CHAIN)
    report = ChainReport("system", None, len(rows))
    return _walk(report, rows, _system_digest, head.hash if head else None, head.seq if head else 0)


def deleted_instances(session: Session) -> frozenset:
    """Instances removed with their deployment (cascade), as the system chain recorded it."""
    payloads = session.execute(select(SystemAuditEvent.payload)
                               .where(SystemAuditEvent.kind == "DeploymentDeleted")).scalars()
    return frozenset(i for p in payloads for i in (p or {}).get("processInstanceIds", []))


def verify_all(session: Session) -> list[ChainReport]:
    """Every case's chain (cases without events included: their head must say 0) and the system chain."""
    ids = set(session.execute(select(ProcessInstance.id)).scalars())
    ids |= set(session.execute(select(AuditEvent.instance_id).where(AuditEvent.instance_id.is_not(None))
                               .distinct()).scalars())
    deleted = deleted_instances(session)
    return [verify_instance(session, i, deleted) for i in sorted(ids)] + [verify_system(session)]
