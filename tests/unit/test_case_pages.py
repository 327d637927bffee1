"""A page of the cases an officer takes part in (engine/history.py): read from the reader's
own rows, or, for a busy department's first pages, from the first cases in order, each
checked through its own rows (`_walk`), falling back to the first way when that finds no
full page.  Both ways must give the same pages, in the same order, with every filter.
Storage test: SQLite and PostgreSQL.  On SQLite, the plan of a reader's running cases is
read too: they are read by their ids, not by the index on state (15 ms for a reader of no
case at 50,000 running cases when they were)."""
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
    some, worked some; a fifth have ended; start times repeat (the id breaks the tie); three
    in four have a variable `kind`."""
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
                                        assignee=assigned)])
            run(insert(TaskCandidate), [dict(task_id=f"t-{case}", group_id="fgw" if n % 3 == 0 else "zjj",
                                             unassigned=assigned is None)])
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


def _pages(engine, monkeypatch, principal, query: dict, states, walk: bool) -> tuple[list, list]:
    """Every page of 7 of the list (and one of 40 from the 5th case, one of none, one past
    the end), and which statements read each: "walk" and/or "cases"."""
    monkeypatch.setattr(history, "WALK_QUEUE", 5 if walk else 10 ** 9)
    read, pages = [], []
    monkeypatch.setattr(history._QUERIES, "get", lambda key, build: read[-1].append(key[0]) or _get(key, build))
    with reading(engine.db) as conn:
        for first, size in [(k, 7) for k in range(0, 91, 7)] + [(5, 40), (3, 0), (200, 7)]:
            read.append([])
            rows = history.process_instances(conn, principal, instances.InstanceQuery(
                first_result=first, max_results=size, **query), states)
            pages.append([row.id for row in rows])
    return pages, read


@pytest.mark.parametrize("query, states, walks", [
    ({}, instances.RUNNING, True),
    ({}, None, True),                                           # the history's list: ended cases too
    ({"sort_by": "startTime", "sort_order": "desc"}, instances.RUNNING, True),     # the newest first
    ({"sort_by": "startTime", "sort_order": "asc"}, None, True),
    # a filter few cases may meet: the first cases in order could be the whole table
    ({"business_key_like": "BK-0-%"}, instances.RUNNING, False),
    ({"process_definition_key": "d", "started_by": "zhao"}, ("ACTIVE",), False),
    ({"variables": [history.VariableCondition("kind", "eq", "permit")]}, instances.RUNNING, False),
])
def test_a_busy_departments_pages_are_the_same_read_either_way(cases, monkeypatch, query, states, walks):
    for principal in (LI, ZHANG):
        expected, read = _pages(cases, monkeypatch, principal, query, states, walk=False)
        assert all(statements == ["cases"] for statements in read)
        assert sum(map(len, expected)) > 14                         # the lists are longer than two pages
        found, read = _pages(cases, monkeypatch, principal, query, states, walk=True)
        assert found == expected, principal
        if walks:
            assert ["walk"] in read                                 # some pages came from the first cases
            assert ["walk", "cases"] in read                        # some were read from the reader's rows
        else:
            assert all(statements == ["cases"] for statements in read)


def test_the_walk_is_for_readers_with_a_busy_department_and_the_first_pages_only(cases, monkeypatch):
    monkeypatch.setattr(history, "WALK_QUEUE", 5)
    read = []
    monkeypatch.setattr(history._QUERIES, "get", lambda key, build: read.append(key[0]) or _get(key, build))

    def page(principal, first=0, size=7, **query):
        read.clear()
        with reading(cases.db) as conn:
            rows = history.process_instances(conn, principal, instances.InstanceQuery(
                first_result=first, max_results=size, **query), instances.RUNNING)
        return [row.id for row in rows], list(read)

    assert page(LI)[1] == ["walk"]
    assert page(WANG)[1] == ["cases"]                               # xf has no open task
    assert page(LI, first=history.WALK_PAGE_END)[1] == ["cases"]    # past the first pages
    assert page(LI, size=None)[1] == ["cases"]                      # not paged
    assert page(LI, sort_by="startTime", sort_order="desc")[1] == ["walk"]
    assert page(LI, sort_by="businessKey")[1] == ["cases"]          # another order
    assert page(LI, process_instance_ids=["c00"])[1] == ["cases"]   # one case: through its own rows
    with reading(cases.db) as conn:                                 # the administrator reads every case
        read.clear()
        rows = history.process_instances(conn, identity.SYSTEM, instances.InstanceQuery(max_results=7),
                                         instances.RUNNING)
    assert read == ["cases"] and len(rows) == 7


def test_a_readers_running_cases_are_read_by_their_ids_not_by_state(cases, monkeypatch):
    if cases.db.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's plans follow its statistics: bench/query_plans.py reads them on 100,000 cases")
    sent = []
    real = fastsql._cursor
    monkeypatch.setattr(fastsql, "_cursor", lambda conn, sql, args, many: sent.append((sql, args))
                        or real(conn, sql, args, many))
    with reading(cases.db) as conn:
        history.process_instances(conn, WANG, instances.InstanceQuery(max_results=7), instances.RUNNING)
        history.process_instances(conn, WANG, instances.InstanceQuery(), instances.RUNNING, count_only=True)
    sent = [(sql, args) for sql, args in sent if "FROM process_instance" in sql]      # not the queue's look
    assert len(sent) == 2
    with cases.db.connect() as conn:
        for sql, args in sent:
            plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, args)]
            assert not any("ix_process_instance_state" in step for step in plan), plan
            assert any(step.startswith("SEARCH process_instance USING INDEX sqlite_autoindex") for step in plan), plan
