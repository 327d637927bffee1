"""A command on a task reads the task before it locks the case (engine/tasks.py): what
another command commits in between must not be overwritten or bypassed.  The other
command is run at that very moment, deterministically, by wrapping the lock.  On SQLite
a writing unit of work holds the writer lock from its BEGIN, so nothing can come in
between there; these run on PostgreSQL."""
from __future__ import annotations

import pytest

from engine import identity, instances, runtime, tasks
from engine.deployments import Upload, deploy
from engine.errors import Conflict, Forbidden, TaskAlreadyClaimed
from engine.identity import Principal
from tests.security.models import one_task

LI, ZHANG = Principal("li", frozenset({"fgw"})), Principal("zhang", frozenset({"fgw"}))


@pytest.fixture
def task_id(engine):
    if engine.db.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writing unit of work at a time: no command can come in between")
    with engine.uow() as uow:
        deploy(uow, [Upload("q.bpmn", one_task("for_fgw").encode())], identity.SYSTEM)
        for user in ("li", "zhang"):
            identity.create_user(uow.session, user, "pw", actor=identity.SYSTEM.user_id)
        uow.commit()
    with engine.uow() as uow:
        record, _ = instances.start(uow, identity.SYSTEM, {}, None, key="for_fgw")
    with engine.uow(write=False) as uow:
        [view] = tasks.query(uow.session, identity.SYSTEM, tasks.TaskQuery(process_instance_id=record.id))
    return view.row.id


def _in_between(monkeypatch, name: str, step) -> None:
    """Run `step()` the first time runtime.`name` is called."""
    original, done = getattr(runtime, name), []

    def wrapped(*args, **kwargs):
        if not done:
            done.append(True)
            step()
        return original(*args, **kwargs)
    monkeypatch.setattr(runtime, name, wrapped)


def _command(engine, action, *args):
    """`action(uow, *args)` in a unit of work of its own (the command that comes in between)."""
    def run():
        with engine.uow() as uow:
            action(uow, *args)
    return run


def _assignee(engine, task_id):
    with engine.uow(write=False) as uow:
        return tasks.get(uow.session, identity.SYSTEM, task_id).row.assignee


def test_a_completion_does_not_take_a_task_a_colleague_claimed_in_between(engine, monkeypatch, task_id):
    _in_between(monkeypatch, "open_instance", _command(engine, tasks.claim, LI, task_id, "li"))
    with pytest.raises(Forbidden, match="'li' claimed it at the same time"):
        _command(engine, tasks.complete, ZHANG, task_id, {})()
    assert _assignee(engine, task_id) == "li"                  # still open, still li's


def test_a_claim_does_not_replace_one_made_in_between(engine, monkeypatch, task_id):
    _in_between(monkeypatch, "load_record", _command(engine, tasks.claim, LI, task_id, "li"))
    with pytest.raises(TaskAlreadyClaimed, match="at the same time"):
        _command(engine, tasks.claim, ZHANG, task_id, "zhang")()
    assert _assignee(engine, task_id) == "li"


def test_a_claim_of_a_task_completed_in_between_says_so(engine, monkeypatch, task_id):
    _in_between(monkeypatch, "load_record", _command(engine, tasks.complete, ZHANG, task_id, {}))
    with pytest.raises(Conflict, match="completed at the same time"):
        _command(engine, tasks.claim, LI, task_id, "li")()
