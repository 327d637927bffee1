"""A variable keeps the type it was written with, as in Camunda 7: the window sets a fee
of 0 as a Long, a department completes its task with a Short, a payment system answers
with a Json "5", and every read shows those types (the case's variables, a task's, a
worker's fetch, the history), from the workflow cache, restored from the database, and
after a restart, while conditions still compare the plain numbers."""
from __future__ import annotations

import pytest

from tests.api.test_case_variables import restoring  # noqa: F401  (the fixture)
from tests.api.test_signals import deploy as deploy_signals, started_by_signal, waiting_for
from tests.conftest import FIXTURES, restarted_server

PI = "/engine-rest/process-instance"
TASK = "/engine-rest/task"
FEE = FIXTURES / "fee_assessment.bpmn"

# what each is sent as, and what Camunda 7 answers on reading it back
DECLARED = {
    "fee": ({"value": 0, "type": "Long"}, ("Long", 0)),
    "level": ({"value": 3, "type": "Short"}, ("Short", 3)),
    "score": ({"value": "5", "type": "Json"}, ("Json", "5")),
    "waived": ({"value": "true", "type": "Json"}, ("Json", "true")),
    "code": ({"value": '"A1"', "type": "Json"}, ("Json", '"A1"')),
    "nothing": ({"value": "null", "type": "Json"}, ("Json", None)),
    "remark": ({"value": None, "type": "String"}, ("String", None)),
}
# types that a value shows by itself: they round-tripped before, and still do
OWN = {
    "area": ({"value": 5, "type": "Double"}, ("Double", 5.0)),
    "count": ({"value": 5.0, "type": "Integer"}, ("Integer", 5)),
    "serial": ({"value": 2**40, "type": "Long"}, ("Long", 2**40)),
    "name": ({"value": "苏州", "type": "String"}, ("String", "苏州")),
    "paid": ({"value": "false", "type": "Boolean"}, ("Boolean", False)),
    "items": ({"value": "[1, 2]", "type": "Json"}, ("Json", "[1, 2]")),
    "due": ({"value": "2025-09-26T10:00:00.000+0800", "type": "Date"}, ("Date", "2025-09-26T10:00:00.000+0800")),
    "none": ({"value": None, "type": "Null"}, ("Null", None)),
}


@pytest.fixture
def settings(settings):
    settings.timers_enabled = False
    return settings


@pytest.fixture
def people(client):
    deployed = client.deploy(FEE, name="fee")
    assert deployed.status_code == 200, deployed.get_json()
    return {"window": client.create_user("window_clerk", ["window"]),
            "worker": client.create_user("fee_system", ["external-workers"])}


def shown(answer) -> dict:
    """Typed variables as {name: (type, value)}."""
    assert answer.status_code == 200, answer.get_json()
    return {name: (typed["type"], typed["value"]) for name, typed in answer.get_json().items()}


def fetched(task: dict) -> dict:
    return {name: (typed["type"], typed["value"]) for name, typed in task["variables"].items()}


def case_variables(client, case) -> dict:
    return shown(client.get(f"{PI}/{case['id']}/variables"))


def history(client, case) -> dict:
    rows = client.get("/engine-rest/history/variable-instance", query_string={"processInstanceId": case["id"]})
    assert rows.status_code == 200, rows.get_json()
    return {row["name"]: (row["type"], row["value"]) for row in rows.get_json()}


def fetch(worker) -> dict:
    answer = worker.post("/engine-rest/external-task/fetchAndLock", json={
        "workerId": "fee-1", "maxTasks": 1, "topics": [{"topicName": "fee.collect", "lockDuration": 60_000}]})
    assert answer.status_code == 200, answer.get_json()
    [task] = answer.get_json()
    return task


def complete_assessment(people, case, variables=None) -> None:
    [task] = people["window"].tasks(processInstanceId=case["id"], taskDefinitionKey="Task_assess")
    done = people["window"].complete(task["id"], variables)
    assert done.status_code == 204, done.get_json()


def complete_collection(people, variables, task=None) -> None:
    task = task or fetch(people["worker"])
    done = people["worker"].post(f"/engine-rest/external-task/{task['id']}/complete",
                                 json={"workerId": "fee-1", "variables": variables})
    assert done.status_code == 204, done.get_json()


def sent(table: dict) -> dict:
    return {name: wire for name, (wire, _) in table.items()}


def expected(table: dict) -> dict:
    return {name: read for name, (_, read) in table.items()}


def put(client, case, name, body):
    answer = client.put(f"{PI}/{case['id']}/variables/{name}", json=body)
    assert answer.status_code == 204, answer.get_json()


# --- written through the variables API ------------------------------------------------------

def test_a_long_short_or_json_scalar_put_on_a_case_reads_back_with_its_type_everywhere(client, people, restoring):
    case = client.start("fee_assessment", {"applicant": {"value": "苏州某某科技有限公司"}})
    for name, body in sent(DECLARED).items():
        put(client, case, name, body)
    answer = client.post(f"{PI}/{case['id']}/variables", json={"modifications": sent(OWN)})
    assert answer.status_code == 204, answer.get_json()
    want = {"applicant": ("String", "苏州某某科技有限公司"), **expected(DECLARED), **expected(OWN)}

    assert case_variables(client, case) == want
    for name, typed in expected(DECLARED).items():
        one = client.get(f"{PI}/{case['id']}/variables/{name}").get_json()
        assert (one["type"], one["value"]) == typed, name
    [assess] = people["window"].tasks(processInstanceId=case["id"])
    assert shown(people["window"].get(f"{TASK}/{assess['id']}/variables")) == want
    assert shown(people["window"].get(f"{TASK}/{assess['id']}/form-variables")) == want
    one = people["window"].get(f"{TASK}/{assess['id']}/variables/fee").get_json()
    assert (one["type"], one["value"]) == ("Long", 0)
    assert history(client, case) == want


def test_a_type_put_through_a_task_sticks_and_a_long_still_compares_as_a_number(client, people, restoring):
    case = client.start("fee_assessment", {})
    [assess] = people["window"].tasks(processInstanceId=case["id"])
    answer = people["window"].put(f"{TASK}/{assess['id']}/variables/fee", json={"value": 7, "type": "Long"})
    assert answer.status_code == 204, answer.get_json()
    complete_assessment(people, case)
    collect = fetch(people["worker"])
    assert collect["variables"]["fee"] == {"value": 7, "type": "Long", "valueInfo": {}}
    complete_collection(people, {}, collect)
    [receipt] = people["window"].tasks(processInstanceId=case["id"])
    assert receipt["taskDefinitionKey"] == "Task_receipt"                 # ${fee > 0} on a Long
    assert case_variables(client, case)["fee"] == ("Long", 7) == history(client, case)["fee"]


# --- written by completing tasks and starting cases -------------------------------------------

def test_typed_values_a_department_completes_its_task_with_keep_their_type(client, people, restoring):
    case = client.start("fee_assessment", {})
    complete_assessment(people, case, sent(DECLARED))
    assert fetched(fetch(people["worker"])) == expected(DECLARED)      # from the history's rows
    assert case_variables(client, case) == expected(DECLARED)
    assert history(client, case) == expected(DECLARED)


def test_a_workers_typed_result_keeps_its_type_and_the_gateway_reads_the_number(client, people, restoring):
    case = client.start("fee_assessment", {})
    complete_assessment(people, case)
    complete_collection(people, {"fee": {"value": 0, "type": "Long"}, "receiptNo": {"value": "5", "type": "Json"},
                                 "level": {"value": 1, "type": "Short"}})
    [waive] = people["window"].tasks(processInstanceId=case["id"])
    assert waive["taskDefinitionKey"] == "Task_waive"                      # ${fee > 0} is false for a Long 0
    want = {"fee": ("Long", 0), "receiptNo": ("Json", "5"), "level": ("Short", 1)}
    assert case_variables(client, case) == want
    assert shown(people["window"].get(f"{TASK}/{waive['id']}/variables")) == want
    assert history(client, case) == want


def test_a_case_started_with_typed_variables_keeps_their_types(client, people, restoring):
    started = client.post("/engine-rest/process-definition/key/fee_assessment/start",
                          json={"variables": sent(DECLARED), "withVariablesInReturn": True})
    assert started.status_code == 200, started.get_json()
    case = started.get_json()
    assert {name: (v["type"], v["value"]) for name, v in case["variables"].items()} == expected(DECLARED)
    assert case_variables(client, case) == expected(DECLARED)
    assert history(client, case) == expected(DECLARED)


def test_a_message_s_typed_variables_keep_their_types(client, people):
    assert client.deploy(FIXTURES / "message_bank.bpmn", name="bank").status_code == 200
    case = client.start("bank_account", {}, "SZ-2025-0400")
    delivered = people["worker"].post("/engine-rest/message", json={
        "messageName": "BankAccountOpened", "businessKey": "SZ-2025-0400",
        "processVariables": {"accountFee": {"value": 0, "type": "Long"}}})
    assert delivered.status_code == 204, delivered.get_json()
    assert case_variables(client, case) == {"accountFee": ("Long", 0)} == history(client, case)


def test_a_workers_failure_with_typed_variables_keeps_their_types(client, people):
    case = client.start("fee_assessment", {})
    complete_assessment(people, case)
    task = fetch(people["worker"])
    failed = people["worker"].post(f"/engine-rest/external-task/{task['id']}/failure", json={
        "workerId": "fee-1", "errorMessage": "缴款系统维护", "retries": 2, "retryTimeout": 0,
        "variables": {"fee": {"value": 0, "type": "Long"}}})
    assert failed.status_code == 204, failed.get_json()
    assert case_variables(client, case) == {"fee": ("Long", 0)} == history(client, case)


def test_a_signal_s_typed_variables_keep_their_types_in_a_waiting_case_and_a_started_one(client, people):
    deploy_signals(client, waiting=waiting_for, starting=started_by_signal)
    waiting = client.start("waiting", {})
    sent = client.post("/engine-rest/signal", json={"name": "PolicyChanged",
                                                    "variables": {"fee": {"value": 0, "type": "Long"}}})
    assert sent.status_code == 204, sent.get_json()
    [started] = [c for c in client.get(PI).get_json() if c["definitionKey"] == "starting"]
    for case in (waiting, started):
        assert case_variables(client, case) == {"fee": ("Long", 0)} == history(client, case)


def test_declared_types_survive_a_restart(client, people, settings):
    case = client.start("fee_assessment", {"fee": {"value": 0, "type": "Long"}})
    put(client, case, "score", {"value": "5", "type": "Json"})
    with restarted_server(settings) as again:
        assert case_variables(again, case) == {"fee": ("Long", 0), "score": ("Json", "5")}
        [assess] = again.tasks(processInstanceId=case["id"])
        assert again.complete(assess["id"]).status_code == 204
        assert case_variables(again, case) == {"fee": ("Long", 0), "score": ("Json", "5")}


# --- a later write decides ----------------------------------------------------------------

def test_a_later_write_without_a_type_takes_the_values_own_type(client, people, restoring):
    case = client.start("fee_assessment", {"fee": {"value": 0, "type": "Long"},
                                           "level": {"value": 3, "type": "Short"},
                                           "score": {"value": "5", "type": "Json"}})
    put(client, case, "fee", {"value": 0})                               # the same value, no type: Camunda infers
    put(client, case, "level", {"value": 4})
    put(client, case, "score", {"value": 5, "type": "Integer"})          # another type, the same value
    assert case_variables(client, case) == {"fee": ("Integer", 0), "level": ("Integer", 4), "score": ("Integer", 5)}
    assert history(client, case) == case_variables(client, case)

    put(client, case, "fee", {"value": 0, "type": "Short"})              # typed again
    assert case_variables(client, case)["fee"] == ("Short", 0) == history(client, case)["fee"]
    assert client.delete(f"{PI}/{case['id']}/variables/fee").status_code == 204
    put(client, case, "fee", {"value": 0})                               # deleted, then set again
    assert case_variables(client, case)["fee"] == ("Integer", 0) == history(client, case)["fee"]


def test_a_double_set_over_an_integer_of_the_same_value_is_a_double(client, people, restoring):
    case = client.start("fee_assessment", {"area": {"value": 5}})
    put(client, case, "area", {"value": 5, "type": "Double"})
    assert case_variables(client, case)["area"] == ("Double", 5.0) == history(client, case)["area"]


def test_a_value_the_model_sets_has_its_own_type(client, people, restoring):
    case = client.start("fee_assessment", {"fee": {"value": 7, "type": "Long"}})
    complete_assessment(people, case, {"fee": {"value": 7, "type": "Long"}})
    complete_collection(people, {})
    [receipt] = people["window"].tasks(processInstanceId=case["id"])
    assert people["window"].complete(receipt["id"]).status_code == 204     # the rule step sets fee + 100
    assert case_variables(client, case)["fee"] == ("Integer", 107) == history(client, case)["fee"]


def test_a_value_that_does_not_fit_its_declared_type_is_refused(client, people):
    case = client.start("fee_assessment", {})
    for body in ({"value": 40000, "type": "Short"}, {"value": 2**63, "type": "Long"}, {"value": "5x", "type": "Json"}):
        answer = client.put(f"{PI}/{case['id']}/variables/fee", json=body)
        assert answer.status_code == 400 and "'fee'" in answer.get_json()["message"], answer.get_json()
    assert case_variables(client, case) == {}
