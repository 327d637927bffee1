"""Timer lateness: due → fired and committed, with 1,000 / 10,000 / 100,000 timers pending.

For each size the database holds that many waiting timers (on placeholder cases, due
far in the future, so they only make the table big), then 100 real cases are started
whose boundary timers fall due spread over ~3 s while the scheduler runs as in the
server.  Lateness = the TimerFired audit event's time - the timer's due time.
Prints p50 / p99 / max per size; the goal is p99 under 1 s at 100,000.

Then a burst: 100 and 1,000 real cases whose timers all fall due at one instant, as the
legal clocks' deadlines do (a working day's tacit approvals at its 17:30, many cases
sharing one), with 1,000 timers pending: how late the last one fires is how long the
burst takes to go through (each timer in its own transaction, most of the cases no
longer in the workflow cache, as after a day's work).

Run: .venv/bin/python bench/bench_timers.py [--pg URL] [--sizes 1000,10000,100000 | --quick]
(a printed figure, not a test; the machine is noisy, so sizes are measured side by side)
"""
from __future__ import annotations

import argparse
import atexit
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, select, text  # noqa: E402

from engine import deployments, identity, runtime  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.context import Engine  # noqa: E402
from engine.db import migrate  # noqa: E402
from engine.models import AuditEvent, ProcessDefinition, ProcessInstance, Timer  # noqa: E402
from engine.scheduler import TimerScheduler  # noqa: E402

MODEL = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="D" targetNamespace="t">
  <bpmn:process id="timed" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="T" />
    <bpmn:userTask id="T" camunda:candidateGroups="fgw" />
    <bpmn:boundaryEvent id="B" attachedToRef="T">
      <bpmn:timerEventDefinition><bpmn:timeDate xsi:type="bpmn:tFormalExpression">${due}</bpmn:timeDate></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="F2" sourceRef="B" targetRef="E" />
    <bpmn:sequenceFlow id="F3" sourceRef="T" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>
"""
LIVE = 100


def fresh_database(url: str | None, workdir: Path) -> str:
    if url is None:
        return f"sqlite:///{workdir / f'timers-{uuid.uuid4().hex[:8]}.db'}"
    import sqlalchemy as sa
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    eng.dispose()
    atexit.register(drop_schema, url, schema)          # leave the database as it was
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


def drop_schema(url: str, schema: str) -> None:
    import sqlalchemy as sa
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    eng.dispose()


def pad(engine: Engine, definition_id: str, pending: int) -> None:
    """`pending` waiting timers on placeholder cases, due in 2099."""
    far = datetime(2099, 1, 1)
    now = datetime.utcnow()
    with engine.uow() as uow:
        for start in range(0, pending, 5000):
            ids = [str(uuid.uuid4()) for _ in range(min(5000, pending - start))]
            uow.session.execute(insert(ProcessInstance), [dict(
                id=i, definition_id=definition_id, definition_key="timed", state="ACTIVE", start_time=now,
                called_definitions={}, version=1, audit_seq=0, state_json="{}") for i in ids])
            uow.session.execute(insert(Timer), [dict(
                id=str(uuid.uuid4()), instance_id=i, definition_id=definition_id, activity_id="B",
                kind="timeDate", due_at=far + timedelta(seconds=k), created=now, failures=0)
                for k, i in enumerate(ids)])
        uow.commit()


def measure(url: str | None, pending: int, workdir: Path, live: int = LIVE, spread_ms: int = 30) -> list[float]:
    database_url = fresh_database(url, workdir)
    migrate(database_url)
    engine = Engine(Settings(database_url=database_url, timers_enabled=False))
    with engine.uow() as uow:
        source = deployments.Upload("timed.bpmn", MODEL.encode())
        result = deployments.deploy(uow, [source], identity.SYSTEM, name="bench")
        uow.commit()
    definition_id = result.process_definitions[0].id
    pad(engine, definition_id, pending)
    scheduler = TimerScheduler(engine)
    scheduler.start()
    try:
        base = engine.clock.now() + timedelta(seconds=2 + live * 0.008)      # after the last start
        for k in range(live):
            due = (base + timedelta(milliseconds=spread_ms * k)).isoformat()
            with engine.uow() as uow:
                definition = uow.session.get(ProcessDefinition, definition_id)
                runtime.start_instance(uow, definition, {"due": due}, None, identity.SYSTEM, start_form_check=False)
                uow.commit()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with engine.uow(write=False) as uow:
                fired = uow.session.execute(select(AuditEvent.at, AuditEvent.payload).where(
                    AuditEvent.kind == "TimerFired")).all()
            if len(fired) >= live:
                break
            time.sleep(0.2)
    finally:
        scheduler.stop()
        engine.close()
    late = []
    for at, payload in fired:
        due = datetime.fromisoformat(payload["due"].rstrip("Z"))
        late.append((at - due).total_seconds())
    return late


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", help="also measure on this PostgreSQL URL")
    parser.add_argument("--sizes", help="pending timers per measurement (default 1000,10000,100000)")
    parser.add_argument("--quick", action="store_true", help="sizes 1000,10000 (bench/run_all.py)")
    args = parser.parse_args()
    sizes = [int(s) for s in (args.sizes or ("1000,10000" if args.quick else "1000,10000,100000")).split(",")]
    stores = [("SQLite", None)] + ([("PostgreSQL", args.pg)] if args.pg else [])
    print(f"timer lateness (due → fired and committed), {LIVE} live timers due over ~3 s")
    print(f"{'store':12} {'pending':>9} {'fired':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, url in stores:
            for size in sizes:
                late = sorted(measure(url, size, Path(tmp)))
                print(f"{label:12} {size:>9,} {len(late):>6} {_figures(late)}", flush=True)
        print(f"\nburst: live timers all due at one instant, {sizes[0]:,} pending")
        print(f"{'store':12} {'due':>9} {'fired':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for label, url in stores:
            for live in (100, 1000):
                late = sorted(measure(url, sizes[0], Path(tmp), live=live, spread_ms=0))
                print(f"{label:12} {live:>9,} {len(late):>6} {_figures(late)}", flush=True)


def _figures(late: list[float]) -> str:
    """p50 / p99 / max of sorted lateness (s) in ms, or why there are none."""
    if not late:
        return "(nothing fired)"
    p99 = late[min(len(late) - 1, int(len(late) * 0.99))]
    return f"{statistics.median(late) * 1000:8.0f} {p99 * 1000:8.0f} {late[-1] * 1000:8.0f}"


if __name__ == "__main__":
    main()
