"""What a parallel join hands on: a simple deregistration (简易注销) waits for creditors'
objections (债权人异议, a message) beside the department's pre-check (部门预审).  Each
branch carries its own copy of the case's variables; at the join, what a branch changed
stays changed, whichever branch arrives last, as in Camunda 7's one copy of them."""
from __future__ import annotations

import json

import pytest

from tests.api.test_case_variables import restoring  # noqa: F401 (a fixture: cached, restored, kept in rows)
from tests.conftest import FIXTURES, typed

PI = "/engine-rest/process-instance"
NO_OBJECTION = {"objection": None, "creditors": {"notified": 0},
                "checks": {"tax": {"cleared": False}, "social": {"cleared": False}}}


@pytest.fixture
def people(client):
    deployed = client.deploy(FIXTURES / "deregistration_join.bpmn", name="deregistration")
    assert deployed.status_code == 200, deployed.get_json()
    return {"dept": client.create_user("dept_officer", ["dept"]), "window": client.create_user("window_clerk", ["window"]),
            "registry": client.create_user("credit_registry", ["external-workers"])}


def start(client, business_key="ZX-2025-0001", **variables):
    return client.start("deregistration_join", typed(**{**NO_OBJECTION, **variables}), business_key)


def object_(people, business_key="ZX-2025-0001", **variables):
    answer = people["registry"].post("/engine-rest/message", json={
        "messageName": "CreditorObjection", "businessKey": business_key, "processVariables": typed(**variables)})
    assert answer.status_code == 204, answer.get_json()


def precheck(people, **variables):
    [task] = people["dept"].tasks()
    answer = people["dept"].complete(task["id"], typed(**variables))
    assert answer.status_code == 204, answer.get_json()


def next_step(client, case) -> str:
    [task] = client.tasks(processInstanceId=case["id"])
    return task["taskDefinitionKey"]


def variables(client, case) -> dict:
    answer = client.get(f"{PI}/{case['id']}/variables")
    assert answer.status_code == 200, answer.get_json()
    return {name: json.loads(typed_value["value"]) if typed_value["type"] == "Json" else typed_value["value"]
            for name, typed_value in answer.get_json().items()}


def test_an_objection_one_branch_recorded_survives_the_pre_check_finishing_later(client, people, restoring):
    case = start(client)
    object_(people, objection="债权人甲：尚有未清偿债务", creditors={"notified": 12})
    precheck(people)                                    # arrives last, with its copies from the split
    assert next_step(client, case) == "Task_objection"
    found = variables(client, case)
    assert (found["objection"], found["creditors"]) == ("债权人甲：尚有未清偿债务", {"notified": 12})


@pytest.mark.parametrize("message_first", [True, False])
def test_a_nested_value_one_branch_changed_survives_the_other_branchs_copy(client, people, restoring, message_first):
    case = start(client)
    steps = [lambda: object_(people, checks={"tax": {"cleared": True}, "social": {"cleared": False}}),
             lambda: precheck(people)]
    for step in steps if message_first else reversed(steps):
        step()
    assert variables(client, case)["checks"] == {"tax": {"cleared": True}, "social": {"cleared": False}}


@pytest.mark.parametrize("message_first", [True, False])
def test_two_branches_changing_different_keys_of_one_dict_keep_both(client, people, restoring, message_first):
    case = start(client)
    steps = [lambda: object_(people, checks={"tax": {"cleared": True}, "social": {"cleared": False}}),
             lambda: precheck(people, checks={"tax": {"cleared": False}, "social": {"cleared": True}})]
    for step in steps if message_first else reversed(steps):
        step()
    assert variables(client, case)["checks"] == {"tax": {"cleared": True}, "social": {"cleared": True}}
    assert next_step(client, case) == "Task_deregister"


def test_two_branches_changing_the_same_variable_the_later_one_wins(client, people, restoring):
    case = start(client)
    object_(people, objection="债权人丙")
    precheck(people, objection="异议已核实撤回")
    assert variables(client, case)["objection"] == "异议已核实撤回"


def test_a_variable_one_branch_deleted_stays_deleted(client, people, restoring, scripts_on):
    deployed = client.deploy(FIXTURES / "tidy_join.bpmn", name="tidy")
    assert deployed.status_code == 200, deployed.get_json()
    case = client.start("tidy_join", typed(draftNote="待补：股东会决议", applicant="某某贸易有限公司"))
    precheck(people)                                    # its copy still holds the draft note
    assert next_step(client, case) == "Task_issue"
    assert variables(client, case) == {"applicant": "某某贸易有限公司"}


def test_a_value_set_through_the_variables_api_survives_the_join(client, people, restoring):
    case = start(client)
    put = client.put(f"{PI}/{case['id']}/variables/objection", json={"value": "窗口登记：债权人丁", "type": "String"})
    assert put.status_code == 204, put.get_json()
    object_(people, creditorCount=1)                    # the message branch does not touch the objection
    put = client.put(f"{PI}/{case['id']}/variables/remark", json={"value": "已公告45日", "type": "String"})
    assert put.status_code == 204, put.get_json()      # one branch waits at the join, the other is open
    precheck(people)
    assert next_step(client, case) == "Task_objection"
    found = variables(client, case)
    assert (found["objection"], found["remark"], found["creditorCount"]) == ("窗口登记：债权人丁", "已公告45日", 1)


@pytest.mark.parametrize("fgw_first", [True, False])
def test_what_one_department_of_a_parallel_multi_instance_set_survives_the_others_copy(client, restoring, fgw_first):
    deployed = client.deploy(FIXTURES / "mi_local_element.bpmn", name="mi")
    assert deployed.status_code == 200, deployed.get_json()
    case = client.start("mi_local_element", typed(depts=["fgw", "zrzy"], objection=None,
                                                  cleared={"fgw": False, "zrzy": False}))
    answers = {"fgw": typed(objection="发改委：需补充能评", cleared={"fgw": True, "zrzy": False}),
               "zrzy": typed(cleared={"fgw": False, "zrzy": True})}
    reviews = {t["name"].split()[-1]: t for t in client.tasks(processInstanceId=case["id"])}
    for dept in ("fgw", "zrzy") if fgw_first else ("zrzy", "fgw"):
        assert client.complete(reviews[dept]["id"], answers[dept]).status_code == 204
    assert next_step(client, case) == "Issue"
    found = variables(client, case)
    assert (found["objection"], found["cleared"]) == ("发改委：需补充能评", {"fgw": True, "zrzy": True})
