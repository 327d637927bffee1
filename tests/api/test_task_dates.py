"""camunda:dueDate and camunda:followUpDate: an exact point in time, or an ISO 8601 duration
from the task's creation (Camunda 7's user task reference), written as a literal or given
by an expression; a literal that is neither is refused at deploy."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from engine.clock import clock
from engine.variables import parse_date
from tests.conftest import typed
from tests.security.models import one_task


@pytest.fixture
def settings(settings):
    settings.test_clock = True
    settings.timers_enabled = False
    return settings


def deployed(client, attrs: str, key: str = "dated"):
    r = client.deploy(extra={f"{key}.bpmn": one_task(key, f'camunda:candidateGroups="fgw" {attrs}')})
    assert r.status_code == 200, r.get_json()


def the_task(client, variables=None, key: str = "dated") -> dict:
    case = client.start(key, variables)["id"]
    [task] = client.tasks(processInstanceId=case)
    return task


def when(task: dict, field: str) -> datetime | None:
    return parse_date(task[field]) if task[field] is not None else None


def test_a_literal_duration_counts_from_the_tasks_creation(client):
    """followUpDate="P2D" deployed and then failed every start: cannot parse 'P2D' as a date."""
    deployed(client, 'camunda:dueDate="PT4H" camunda:followUpDate="P2D"')
    task = the_task(client)
    created = when(task, "created")
    assert when(task, "due") - created == timedelta(hours=4)
    assert when(task, "followUp") - created == timedelta(days=2)


def test_months_are_calendar_months_and_the_31st_becomes_the_last_day(client):
    """As Camunda adds a period (Joda): one month after 31 January is 28 February."""
    clock.set(datetime.fromisoformat("2025-01-31T10:00:00+08:00"))
    deployed(client, 'camunda:dueDate="P1M" camunda:followUpDate="P1Y1M1DT2H"')
    task = the_task(client)
    created = when(task, "created")
    due, follow_up = when(task, "due"), when(task, "followUp")
    assert (due.date().isoformat(), due.time()) == ("2025-02-28", created.time())
    assert (follow_up.date().isoformat(), follow_up.time()) == ("2026-03-01", (created + timedelta(hours=2)).time())


@pytest.mark.parametrize("value", ["P3D", "2030-03-01T09:00:00+08:00"])
def test_an_expression_may_give_a_duration_or_a_date_as_text(client, value):
    deployed(client, 'camunda:dueDate="${deadline}"')
    task = the_task(client, typed(deadline=value))
    due = when(task, "due")
    if value.startswith("P"):
        assert due - when(task, "created") == timedelta(days=3)
    else:
        assert due == datetime.fromisoformat(value)


def test_an_expression_giving_a_date_variable_is_that_date(client):
    deployed(client, 'camunda:followUpDate="${remindAt}"')
    at = datetime.fromisoformat("2030-03-01T09:00:00+08:00")
    task = the_task(client, {"remindAt": {"value": "2030-03-01T09:00:00.000+0800", "type": "Date"}})
    assert when(task, "followUp") == at


def test_text_around_an_expression_may_make_a_duration(client):
    deployed(client, 'camunda:dueDate="P${n}D"')
    task = the_task(client, typed(n=5))
    assert when(task, "due") - when(task, "created") == timedelta(days=5)


@pytest.mark.parametrize("value, said", [("-P1D", "cannot parse '-P1D' as a date"),
                                         ("P2X", "'P2X' is not an ISO 8601 duration")])
def test_an_expression_giving_no_date_nor_duration_is_a_400_naming_the_task(client, value, said):
    deployed(client, 'camunda:dueDate="${deadline}"')
    r = client.post("/engine-rest/process-definition/key/dated/start", json={"variables": typed(deadline=value)})
    assert r.status_code == 400, r.get_json()
    body = r.get_json()
    assert body["activityId"] == "T" and "camunda:dueDate" in body["message"] and said in body["message"], body
    assert client.get("/engine-rest/process-instance/count").get_json()["count"] == 0


@pytest.mark.parametrize("attr", ["dueDate", "followUpDate"])
@pytest.mark.parametrize("value", ["tomorrow", "P2X", "-P1D", "R3/PT1H", "2025-13-45", "P1.5DT12H"])
def test_a_literal_that_is_neither_a_date_nor_a_duration_is_refused_at_deploy(client, attr, value):
    r = client.deploy(extra={"bad.bpmn": one_task("bad", f'camunda:candidateGroups="fgw" camunda:{attr}="{value}"')})
    assert r.status_code == 400, r.get_json()
    [problem] = r.get_json()["details"]["bad.bpmn"]["errors"]
    assert problem["mainElementId"] == "T", problem
    assert f"camunda:{attr} '{value}' is neither an ISO 8601 date-time" in problem["message"], problem


@pytest.mark.parametrize("value", ["2030-03-01T09:00:00+08:00", "2030-03-01", "P2D", "PT36H", "P1W", "${days(3)}"])
def test_a_date_a_duration_or_an_expression_deploys(client, value):
    deployed(client, f'camunda:followUpDate="{value}"')
    assert when(the_task(client), "followUp") is not None
