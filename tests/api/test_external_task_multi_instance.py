"""A multi-instance external task tells its worker which element it handles, as Camunda 7
does: the camunda:elementVariable is a variable of the instance's own (local) scope, and
fetchAndLock gives it with the task, under a `variables` filter that names it and among
the `localVariables` (with the task's camunda:inputParameters).  水电气暖联合报装 pushes
the approved result to each utility company (供水、供电、燃气、供热) in turn."""
from __future__ import annotations

import pytest

from tests.conftest import typed
from tests.security.models import HEAD

ET = "/engine-rest/external-task"


def push_model(sequential: bool = False) -> str:
    """start → Task_push (external, one instance per utility; input `company`) → Issue → end."""
    kind = ' isSequential="true"' if sequential else ""
    return HEAD.format(key="utility_push") + f"""
  <bpmn:process id="utility_push" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Task_push" />
    <bpmn:serviceTask id="Task_push" name="结果推送" camunda:type="external" camunda:topic="utility.push">
      <bpmn:extensionElements><camunda:inputOutput>
        <camunda:inputParameter name="company">${{utility}}-co</camunda:inputParameter>
      </camunda:inputOutput></bpmn:extensionElements>
      <bpmn:multiInstanceLoopCharacteristics{kind} camunda:collection="${{utilities}}"
                                              camunda:elementVariable="utility" />
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="F2" sourceRef="Task_push" targetRef="Issue" />
    <bpmn:userTask id="Issue" name="统一出件" camunda:candidateGroups="window" />
    <bpmn:sequenceFlow id="F3" sourceRef="Issue" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>"""


@pytest.fixture(params=["parallel", "sequential-restored"])
def sequential(request, client, engine, monkeypatch) -> bool:
    """Deployed as drawn in parallel, or in sequence with the spec parsed anew at each command."""
    sequential = request.param.startswith("sequential")
    if request.param.endswith("restored"):
        monkeypatch.setattr(engine.workflows, "size", 0)
    response = client.deploy(extra={"utility_push.bpmn": push_model(sequential)})
    assert response.status_code == 200, response.get_json()
    return sequential


@pytest.fixture
def worker(client):
    return client.create_user("utility_gateway", ["external-workers"])


def fetch(worker, topic="utility.push", max_tasks=5, **options) -> list:
    response = worker.post(f"{ET}/fetchAndLock", json={
        "workerId": "gw-1", "maxTasks": max_tasks,
        "topics": [{"topicName": topic, "lockDuration": 60_000, **options}]})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def values(task) -> dict:
    return {name: typed_value["value"] for name, typed_value in task["variables"].items()}


def complete(worker, task, **variables) -> None:
    response = worker.post(f"{ET}/{task['id']}/complete", json={"workerId": "gw-1", "variables": typed(**variables)})
    assert response.status_code == 204, response.get_json()


def push_all(worker, **options) -> list[dict]:
    """Fetches and completes the pushes as they open; what each fetched task carried."""
    seen = []
    while tasks := fetch(worker, **options):
        for task in tasks:
            seen.append(values(task))
            complete(worker, task, receiptNo=f"R-{len(seen)}")
    return seen


def in_order(seen: list[dict], sequential: bool) -> list:
    """The utilities the pushes were for: in the collection's order one by one, as a
    parallel multi-instance's instances (opened at once, fetched in any order) when sorted."""
    utilities = [v["utility"] for v in seen]
    return utilities if sequential else sorted(utilities, key=["water", "power", "gas", "heat"].index)


def test_each_fetched_push_carries_the_utility_it_is_for(client, worker, sequential):
    case = client.start("utility_push", typed(utilities=["water", "power"], applicantName="张三"))
    seen = push_all(worker)
    assert in_order(seen, sequential) == ["water", "power"]
    for v in seen:
        assert v["company"] == f"{v['utility']}-co"                   # the input parameter still there
        assert v["applicantName"] == "张三" and v["utilities"] == '["water", "power"]'   # Json, serialized
    [issue] = client.tasks(processInstanceId=case["id"])
    assert issue["taskDefinitionKey"] == "Issue"


def test_a_variables_filter_that_names_the_element_gets_it(client, worker, sequential):
    client.start("utility_push", typed(utilities=["water", "power"], applicantName="张三"))
    seen = push_all(worker, variables=["utility"])
    assert in_order(seen, sequential) == ["water", "power"] and all(list(v) == ["utility"] for v in seen)
    client.start("utility_push", typed(utilities=["gas"]))
    assert push_all(worker, variables=["applicantName"]) == [{}]     # not named: not given


def test_local_variables_are_the_element_and_the_input_parameters(client, worker, sequential):
    client.start("utility_push", typed(utilities=["water", "heat"], applicantName="张三"))
    seen = push_all(worker, localVariables=True)
    assert in_order(seen, sequential) == ["water", "heat"]
    assert all(v == {"utility": v["utility"], "company": f"{v['utility']}-co"} for v in seen)


def test_a_case_variable_named_like_the_element_is_the_element_for_the_worker_and_kept(client, worker,
                                                                                       sequential):
    case = client.start("utility_push", typed(utilities=["water", "power"], utility="all"))
    assert in_order(push_all(worker), sequential) == ["water", "power"]
    found = client.get(f"/engine-rest/process-instance/{case['id']}/variables/utility")
    assert found.status_code == 200 and found.get_json()["value"] == "all"


NESTED = HEAD.format(key="utility_nested") + """
  <bpmn:process id="utility_nested" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Sub_utility" />
    <bpmn:subProcess id="Sub_utility" name="每家公用事业单位">
      <bpmn:multiInstanceLoopCharacteristics camunda:collection="${utilities}" camunda:elementVariable="utility" />
      <bpmn:startEvent id="SS" />
      <bpmn:sequenceFlow id="G1" sourceRef="SS" targetRef="Task_push" />
      <bpmn:serviceTask id="Task_push" camunda:type="external" camunda:topic="utility.push" />
      <bpmn:sequenceFlow id="G2" sourceRef="Task_push" targetRef="SE" />
      <bpmn:endEvent id="SE" />
    </bpmn:subProcess>
    <bpmn:sequenceFlow id="F2" sourceRef="Sub_utility" targetRef="Task_archive" />
    <bpmn:serviceTask id="Task_archive" camunda:type="external" camunda:topic="utility.archive" />
    <bpmn:sequenceFlow id="F3" sourceRef="Task_archive" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>"""


def test_a_task_inside_a_multi_instance_subprocess_carries_its_element_and_one_after_it_none(client, worker):
    assert client.deploy(extra={"utility_nested.bpmn": NESTED}).status_code == 200
    client.start("utility_nested", typed(utilities=["water", "gas"], utility="all"))
    assert sorted(v["utility"] for v in push_all(worker)) == ["gas", "water"]
    [archive] = fetch(worker, topic="utility.archive", localVariables=True)
    assert archive["variables"] == {}                                # the element was the instances' only
    assert worker.post(f"{ET}/{archive['id']}/unlock").status_code == 204
    [archive] = fetch(worker, topic="utility.archive")
    assert values(archive)["utility"] == "all"                       # the case's own, back after the instances


CALLED = HEAD.format(key="utility_called") + """
  <bpmn:process id="utility_called" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Call_push" />
    <bpmn:callActivity id="Call_push" calledElement="utility_push_one">
      <bpmn:extensionElements><camunda:in variables="all" /><camunda:out variables="all" /></bpmn:extensionElements>
      <bpmn:multiInstanceLoopCharacteristics camunda:collection="${utilities}" camunda:elementVariable="utility" />
    </bpmn:callActivity>
    <bpmn:sequenceFlow id="F2" sourceRef="Call_push" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>"""

PUSH_ONE = HEAD.format(key="utility_push_one") + """
  <bpmn:process id="utility_push_one" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Task_push" />
    <bpmn:serviceTask id="Task_push" camunda:type="external" camunda:topic="utility.push" />
    <bpmn:sequenceFlow id="F2" sourceRef="Task_push" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>"""


def test_a_task_in_the_called_process_of_a_multi_instance_call_activity_carries_its_element(client, worker):
    deployed = client.deploy(extra={"utility_called.bpmn": CALLED, "utility_push_one.bpmn": PUSH_ONE})
    assert deployed.status_code == 200, deployed.get_json()
    case = client.start("utility_called", typed(utilities=["water", "heat"]))
    assert sorted(v["utility"] for v in push_all(worker, localVariables=True)) == ["heat", "water"]
    ended = client.get(f"/engine-rest/history/process-instance/{case['id']}").get_json()
    assert ended["state"] == "COMPLETED", ended
