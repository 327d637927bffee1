"""The audit trail (全程留痕): one append-only, hash-chained event per state change.

Each process instance has its own chain; the instance row holds the chain's head
(hash and sequence number), so an edited, inserted or deleted event is detectable and
appending never contends across instances.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from .models import AuditEvent
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


def append(session: Session, head: ChainHead, instance_id: str | None, at: datetime, actor: str | None,
           kind: str, payload: dict | None = None, activity_id: str | None = None,
           task_id: str | None = None) -> ChainHead:
    """Add one event after `head`; returns the new head (the caller stores it)."""
    payload = jsonable(payload or {})
    seq = head.seq + 1
    digest = event_hash(head.hash, seq, at, actor, kind, activity_id, task_id, payload)
    session.add(AuditEvent(instance_id=instance_id, seq=seq, at=at, actor=actor, kind=kind,
                           activity_id=activity_id, task_id=task_id, payload=payload,
                           prev_hash=head.hash, hash=digest))
    return ChainHead(digest, seq)
