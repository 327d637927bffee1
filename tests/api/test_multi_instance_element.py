"""camunda:elementVariable is local to each instance of a multi-instance, as in Camunda 7:
a case variable of the same name is hidden from the instances, not overwritten, and is
there again after them; without one, the element never becomes a case variable."""
from __future__ import annotations

import pytest

from tests.conftest import FIXTURES, restarted_server, typed

MODEL = (FIXTURES / "mi_local_element.bpmn").read_text()


@pytest.fixture(params=["parallel-cached", "sequential-restored"])
def deployed(request, client, engine, monkeypatch):
    model = MODEL
    if request.param.startswith("sequential"):
        model = model.replace("<bpmn:multiInstanceLoopCharacteristics ",
                              '<bpmn:multiInstanceLoopCharacteristics isSequential="true" ')
    if request.param.endswith("restored"):
        monkeypatch.setattr(engine.workflows, "size", 0)
    response = client.deploy(extra={"mi_local_element.bpmn": model})
    assert response.status_code == 200, response.get_json()
    return request.param


def review_all(client, case, case_dept: str | None) -> list[str]:
    """Completes the reviews as they open, the case's `dept` staying `case_dept` (None: no
    such variable) meanwhile; the departments each saw as `dept`."""
    seen = []
    while True:
        reviews = [t for t in client.tasks(processInstanceId=case["id"]) if t["taskDefinitionKey"] == "Review"]
        if not reviews:
            return seen
        for task in reviews:
            own = client.get(f"/engine-rest/task/{task['id']}/variables/dept").get_json()["value"]
            assert task["name"] == f"Review {own}" and own != "window"
            assert client.variable_values(case["id"]).get("dept") == case_dept
            seen.append(own)
            assert client.complete(task["id"]).status_code == 204


def test_a_case_variable_named_like_the_element_is_hidden_from_the_instances_and_kept(client, deployed):
    case = client.start("mi_local_element", typed(depts=["fgw", "zrzy"], dept="window"))
    assert client.variable_values(case["id"])["dept"] == "window"
    assert sorted(review_all(client, case, "window")) == ["fgw", "zrzy"]
    [issue] = client.tasks(processInstanceId=case["id"])
    assert issue["taskDefinitionKey"] == "Issue"
    assert client.variable_values(case["id"])["dept"] == "window"


def test_without_one_the_element_never_becomes_a_case_variable(client, deployed):
    case = client.start("mi_local_element", typed(depts=["fgw", "zrzy"]))
    assert "dept" not in client.variable_values(case["id"])
    assert sorted(review_all(client, case, None)) == ["fgw", "zrzy"]
    assert "dept" not in client.variable_values(case["id"])


@pytest.mark.parametrize("sequential", [False, True])
def test_instances_created_before_a_restart_end_their_multi_instance_after_it(client, settings, sequential):
    """A construction permit in parallel review when the server restarted stood still after
    its last department: SpiffWorkflow hears an instance end through a connection it makes
    when it creates one, and a spec parsed anew by the restarted server (or by another
    server process) had none."""
    model = MODEL if not sequential else MODEL.replace("<bpmn:multiInstanceLoopCharacteristics ",
                                                       '<bpmn:multiInstanceLoopCharacteristics isSequential="true" ')
    assert client.deploy(extra={"mi_local_element.bpmn": model}).status_code == 200
    case = client.start("mi_local_element", typed(depts=["fgw", "zrzy"]))
    with restarted_server(settings) as again:
        assert sorted(review_all(again, case, None)) == ["fgw", "zrzy"]
        assert [t["taskDefinitionKey"] for t in again.tasks(processInstanceId=case["id"])] == ["Issue"]


def test_an_instance_s_user_task_shows_its_element_among_its_variables_and_form_variables(client, deployed):
    case = client.start("mi_local_element", typed(depts=["fgw", "zrzy"], dept="window"))
    for task in [t for t in client.tasks(processInstanceId=case["id"]) if t["taskDefinitionKey"] == "Review"]:
        own = task["name"].removeprefix("Review ")
        for view in ("variables", "form-variables"):
            found = client.get(f"/engine-rest/task/{task['id']}/{view}").get_json()
            assert found["dept"]["value"] == own and "depts" in found, view


def test_a_case_variable_named_like_the_element_may_be_changed_once_the_instances_are_done(client, deployed):
    """The task after the multi-instance is not inside it: a change to the case's `dept`
    reaches it (it was taken for the instances' own and lost)."""
    case = client.start("mi_local_element", typed(depts=["fgw", "zrzy"], dept="window"))
    review_all(client, case, "window")
    changed = client.put(f"/engine-rest/process-instance/{case['id']}/variables/dept", json=typed(v="counter")["v"])
    assert changed.status_code == 204, changed.get_json()
    assert client.variable_values(case["id"])["dept"] == "counter"
    [issue] = client.tasks(processInstanceId=case["id"])
    assert client.get(f"/engine-rest/task/{issue['id']}/variables/dept").get_json()["value"] == "counter"
