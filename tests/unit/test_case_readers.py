"""Who takes part in a case (engine/authz.py), in its two forms: the set of a reader's
cases (`cases_taken_part_in`, a UNION of one index-driven SELECT per way, for lists and
counts) and the check of one case through its own rows (`takes_part_in`, for a case read
alone).  Each way of taking part, on rows written directly; both forms must agree.
Storage test: SQLite and PostgreSQL.  On SQLite, the plan of the one-case check is read
too: each way goes through the case's own index, not the department's candidate rows
(40-60 ms an officer's read at 100,000 cases when it did)."""
from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import bindparam, insert, select

from engine import authz, identity
from engine.deployments import Upload, deploy
from engine.fastsql import bound, numbered
from engine.models import ActivityInstance, ProcessDefinition, ProcessInstance, TaskCandidate, UserTask
from tests.security.models import HEAD

CASES = ProcessInstance.__table__
NOW = datetime(2026, 12, 6, 9, 0)
# case -> what ties whom to it
WAYS = {"started": "li started it", "assigned": "a task of it is assigned to li", "named": "a task names li",
        "department": "a task is offered to fgw", "worked": "li worked an activity of it",
        "other": "a task is offered to zjj, zhao started it, wang worked it",
        "unoffered": "nobody started it (a timer's), its task names no candidate and is assigned to li"}


MODEL = HEAD.format(key="d") + """
  <bpmn:process id="d" isExecutable="true"><bpmn:startEvent id="S" /></bpmn:process>
</bpmn:definitions>
"""


def _write(uow) -> None:
    deploy(uow, [Upload("d.bpmn", MODEL.encode())], identity.SYSTEM)
    run = uow.session.execute
    definition = run(select(ProcessDefinition.id)).scalar()
    for case in WAYS:
        starter = {"started": "li", "unoffered": None}.get(case, "zhao")
        run(insert(ProcessInstance), [dict(id=case, definition_id=definition, definition_key="d", state="ACTIVE",
                                           start_time=NOW, start_user_id=starter,
                                           called_definitions={}, version=1, audit_seq=0)])
        run(insert(UserTask), [dict(id=f"t-{case}", instance_id=case, definition_id=definition, definition_key="d",
                                    task_definition_key="T", created=NOW, properties={},
                                    assignee="li" if case in ("assigned", "unoffered") else None)])
        if case != "unoffered":
            run(insert(TaskCandidate), [dict(task_id=f"t-{case}", group_id={"department": "fgw"}.get(case, "zjj"),
                                             unassigned=case != "assigned", instance_id=case, instance_start_time=NOW)])
        if case == "named":
            run(insert(TaskCandidate), [dict(task_id=f"t-{case}", user_id="li", unassigned=True, instance_id=case,
                                             instance_start_time=NOW)])
        run(insert(ActivityInstance), [dict(id=f"a-{case}", instance_id=case, definition_id=definition,
                                            definition_key="d", activity_id="T", activity_type="userTask",
                                            start_time=NOW, end_time=NOW, canceled=False,
                                            assignee={"worked": "li", "other": "wang"}.get(case))])


def _both(session, me: str, departments: list) -> tuple[set, set]:
    values = {"me": me, **numbered("department", departments)}
    deps = bound("department", len(departments))
    as_set = select(CASES.c.id).where(CASES.c.id.in_(authz.cases_taken_part_in(bindparam("me"), deps)))
    one_by_one = select(CASES.c.id).where(authz.takes_part_in(CASES.c.id, bindparam("me"), deps))
    return ({r.id for r in session.execute(as_set, values)}, {r.id for r in session.execute(one_by_one, values)})


def test_each_way_of_taking_part_in_a_case_in_both_forms(engine):
    with engine.uow() as uow:
        _write(uow)
        uow.commit()
    with engine.uow(write=False) as uow:
        session = uow.session
        expected = {"started", "assigned", "named", "department", "worked", "unoffered"}
        assert _both(session, "li", ["fgw"]) == (expected, expected)
        assert _both(session, "li", []) == (expected - {"department"},) * 2
        assert _both(session, "zhang", ["fgw"]) == ({"department"},) * 2        # a colleague of the department
        assert _both(session, "wang", []) == ({"other"},) * 2                   # worked it, nothing open
        assert _both(session, "zhao", []) == (set(WAYS) - {"started", "unoffered"},) * 2   # started these
        assert _both(session, "nobody", ["xf"]) == (set(), set())


def test_one_case_is_checked_through_its_own_rows(engine):
    if engine.db.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's plans follow its statistics: bench/query_plans.py reads them on 100,000 cases")
    statement = select(CASES.c.id, authz.takes_part_in(CASES.c.id, bindparam("me"), bound("department", 2))
                       .label("readable")).where(CASES.c.id == bindparam("case"))
    compiled = statement.compile(engine.db)
    values = {"me": "li", "case": "x", **numbered("department", ["fgw", "zjj"])}
    with engine.db.connect() as conn:
        plan = [row[3] for row in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + str(compiled), tuple(values[name] for name in compiled.positiontup))]
    searches = [step for step in plan if step.startswith(("SEARCH", "SCAN"))]
    assert searches and all(step.startswith("SEARCH") for step in searches), plan
    assert not any("ix_task_candidate_group" in step or "ix_task_candidate_queue" in step for step in searches), plan
    assert any("ix_user_task_instance_id" in step for step in searches), plan
