"""A page of the cases an officer takes part in, and their count (engine/history.py): read
from the set of the reader's cases, or, for a list filtered by nothing but the running
states (or not at all) in start-time order, from each way's first entries in that order
(`_by_start`, authz.cases_by_start).  Both ways must give the same pages, in the same
order, and the same counts.  Storage test: SQLite and PostgreSQL.  On SQLite, the plan of
a reader's running cases is read too: a count or a page reads no case by the index on
state (15 ms for a reader of no case at 50,000 running cases when they did)."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert, select

from engine import fastsql, history, identity, instances
from engine.db import reading
from engine.deployments import Upload, deploy
from engine.identity import Principal
from engine.models import (ActivityInstance, ProcessDefinition, ProcessInstance, TaskCandidate, UserTask,
                           VariableInstance)
from tests.security.models import HEAD

NOW = datetime(2026, 12, 7, 9, 0)
MODEL = HEAD.format(key="d") + """
  <bpmn:process id="d" isExecutable="true"><bpmn:startEvent id="S" /></bpmn:process>
</bpmn:definitions>
"""
LI = Principal("li", frozenset({"fgw"}))
ZHANG = Principal("zhang", frozenset({"fgw", "zjj"}))
WANG = Principal("wang", frozenset({"xf"}))


def _write(uow) -> None:
    """90 cases: one in three offered to fgw, others to zjj; li started some, is assigned
    some, delegated some, is named on some, worked some; a fifth have ended; start times
    repeat (the id breaks the tie); three in four have a variable `kind`."""
    deploy(uow, [Upload("d.bpmn", MODEL.encode())], identity.SYSTEM)
    run = uow.session.execute
    definition = run(select(ProcessDefinition.id)).scalar()
    for n in range(90):
        case = f"c{n:02d}"
        ended = n % 5 == 4
        run(insert(ProcessInstance), [dict(
            id=case, definition_id=definition, definition_key="d", business_key=f"BK-{n % 3}-{n}",
            state="COMPLETED" if ended else "SUSPENDED" if n % 11 == 0 else "ACTIVE",
            start_time=NOW + timedelta(minutes=(89 - n) // 2), end_time=NOW if ended else None,
            start_user_id="li" if n % 13 == 0 else "zhao", called_definitions={}, version=1, audit_seq=0)])
        if not ended:
            assigned = "li" if n % 7 == 0 else None
            run(insert(UserTask), [dict(id=f"t-{case}", instance_id=case, definition_id=definition,
                                        definition_key="d", task_definition_key="T", created=NOW, properties={},
                                        assignee=assigned, owner="li" if n % 19 == 1 else None)])
            started = NOW + timedelta(minutes=(89 - n) // 2)
            run(insert(TaskCandidate), [dict(task_id=f"t-{case}", group_id="fgw" if n % 3 == 0 else "zjj",
                                             unassigned=assigned is None, instance_id=case, instance_start_time=started)]
                + ([dict(task_id=f"t-{case}", user_id="li", unassigned=assigned is None, instance_id=case,
                         instance_start_time=started)] if n % 23 == 5 else []))
        if n % 4:
            run(insert(VariableInstance), [dict(id=f"v-{case}", instance_id=case, name="kind", type="String",
                                                value="permit" if n % 4 == 1 else "filing", created=NOW,
                                                updated=NOW)])
        run(insert(ActivityInstance), [dict(id=f"a-{case}", instance_id=case, definition_id=definition,
                                            definition_key="d", activity_id="T", activity_type="userTask",
                                            start_time=NOW, end_time=NOW, canceled=False,
                                            assignee="li" if n % 17 == 0 else None)])


@pytest.fixture
def cases(engine):
    with engine.uow() as uow:
        _write(uow)
        uow.commit()
    return engine


def _get(key, build):
    return fastsql.Shapes.get(history._QUERIES, key, build)


def _pages(engine, monkeypatch, principal, query: dict, states, by_start: bool) -> tuple[list, list]:
    """Every page of 7 of the list (and one of 40 from the 5th case, one of none, one past
    the end), its count, and which statements read each: "by start" or "cases"."""
    if not by_start:
        monkeypatch.setattr(history, "_BY_START", ())
    read, pages = [], []
    monkeypatch.setattr(history._QUERIES, "get", lambda key, build: read[-1].append(key[0]) or _get(key, build))
    with reading(engine.db) as conn:
        for first, size in [(k, 7) for k in range(0, 91, 7)] + [(5, 40), (3, 0), (200, 7)]:
            read.append([])
            rows = history.process_instances(conn, principal, instances.InstanceQuery(
                first_result=first, max_results=size, **query), states)
            pages.append([row.id for row in rows])
        read.append([])
        pages.append(history.process_instances(conn, principal, instances.InstanceQuery(**query), states,
                                               count_only=True))
    monkeypatch.undo()
    return pages, read


@pytest.mark.parametrize("query, states, by_start", [
    ({}, instances.RUNNING, True),
    ({}, None, True),                                           # the history's list: ended cases too
    ({"sort_by": "startTime", "sort_order": "desc"}, instances.RUNNING, True),     # the newest first
    ({"sort_by": "startTime", "sort_order": "asc"}, None, True),
    ({"sort_by": "businessKey"}, instances.RUNNING, False),     # an order start time does not give
    ({}, ("ACTIVE",), False),                                   # not all the running states
    ({"business_key_like": "BK-0-%"}, instances.RUNNING, False),
    ({"process_definition_key": "d", "started_by": "zhao"}, ("ACTIVE",), False),
    ({"variables": [history.VariableCondition("kind", "eq", "permit")]}, instances.RUNNING, False),
])
def test_an_officers_pages_and_count_are_the_same_read_either_way(cases, monkeypatch, query, states, by_start):
    for principal in (LI, ZHANG, WANG):
        expected, read = _pages(cases, monkeypatch, principal, query, states, by_start=False)
        assert all(statements == ["cases"] for statements in read)
        found, read = _pages(cases, monkeypatch, principal, query, states, by_start=True)
        assert found == expected, principal
        if principal is not WANG:
            assert sum(map(len, expected[:-1])) > 14                # the lists are longer than two pages
        assert read == [["by start" if by_start else "cases"]] * len(read)


def test_the_running_cases_of_an_officer_read_by_start_time(cases):
    """The reader's cases from each way in start-time order, ties by id: the department's
    open tasks, the cases they started, were assigned, delegated, were named on or worked,
    running ones only; the count the same."""
    with reading(cases.db) as conn:
        ids = [row.id for row in history.process_instances(conn, LI, instances.InstanceQuery(max_results=100),
                                                           instances.RUNNING)]
        count = history.process_instances(conn, LI, instances.InstanceQuery(), instances.RUNNING, count_only=True)
    running = [n for n in range(90) if n % 5 != 4]
    mine = [n for n in running if n % 3 == 0 or n % 13 == 0 or n % 7 == 0 or n % 19 == 1 or n % 23 == 5
            or n % 17 == 0]
    # start time falls as n grows, two cases a minute: the later case of a minute has the lower n
    expected = [f"c{n:02d}" for n in sorted(mine, key=lambda n: ((89 - n) // 2, f"c{n:02d}"))]
    assert ids == expected and count == len(expected)


def test_a_readers_running_cases_are_read_by_their_ids_not_by_state(cases, monkeypatch):
    if cases.db.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's plans follow its statistics: bench/query_plans.py reads them on 100,000 cases")
    sent = []
    real = fastsql._cursor
    monkeypatch.setattr(fastsql, "_cursor", lambda conn, sql, args, many: sent.append((sql, args))
                        or real(conn, sql, args, many))
    with reading(cases.db) as conn:
        history.process_instances(conn, WANG, instances.InstanceQuery(max_results=7, first_result=150),
                                  instances.RUNNING)
        history.process_instances(conn, WANG, instances.InstanceQuery(), instances.RUNNING, count_only=True)
        history.process_instances(conn, WANG, instances.InstanceQuery(max_results=7, sort_by="businessKey"),
                                  instances.RUNNING)
    sent = [(sql, args) for sql, args in sent if "FROM process_instance" in sql]
    assert len(sent) == 3
    with cases.db.connect() as conn:
        for sql, args in sent:
            plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, args)]
            assert not any("ix_process_instance_state" in step for step in plan), plan
