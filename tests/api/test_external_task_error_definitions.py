"""camunda:errorEventDefinition on an external service task, as Camunda 7.16+ runs it: the
credit bureau's worker only reports the score; the diagram decides that a score under the
minimum, or a blacklisted company, is a BPMN error (企业信用核查: 失信名单, 信用不足).  The
expressions are evaluated, in the order drawn, when the worker completes the task or reports
a failure, over the task's variables and those the worker sends; the first that is true
throws its error."""
from __future__ import annotations

import pytest

from tests.conftest import FIXTURES, typed

ET = "/engine-rest/external-task"


@pytest.fixture
def bureau(client):
    deployed = client.deploy(FIXTURES / "credit_check_errors.bpmn", name="credit-check")
    assert deployed.status_code == 200, deployed.get_json()
    return client.create_user("credit_bureau", ["external-workers"])


def locked_task(client, bureau, business_key="SZ-2025-0300"):
    case = client.start("credit_check", typed(applicantName="苏州某某科技有限公司"), business_key)
    fetched = bureau.post(f"{ET}/fetchAndLock", json={"workerId": "bureau-1", "maxTasks": 1, "topics": [
        {"topicName": "credit.check", "lockDuration": 60_000}]})
    [task] = fetched.get_json()
    return case, task


def open_steps(client, case) -> list:
    return [t["taskDefinitionKey"] for t in client.tasks(processInstanceId=case["id"])]


@pytest.mark.parametrize("cache", ["cached", "restored"])
def test_a_score_under_the_minimum_on_completion_throws_credit_low_and_the_case_takes_the_boundary(
        client, bureau, engine, monkeypatch, cache):
    """The probe: completing with a score under the minimum was a 204 and the case went on to
    the licence, the camunda:errorEventDefinition ignored."""
    if cache == "restored":                     # the case restored from its stored state, its spec parsed anew
        monkeypatch.setattr(engine.workflows, "size", 0)
    case, task = locked_task(client, bureau)
    done = bureau.post(f"{ET}/{task['id']}/complete", json={
        "workerId": "bureau-1", "variables": typed(creditScore=45, blacklisted=False)})
    assert done.status_code == 204, done.get_json()

    assert bureau.get(f"{ET}/{task['id']}").status_code == 404
    assert open_steps(client, case) == ["Task_refusal"]
    # the worker's variables stay (as Camunda sets them before it evaluates); the task's input does not
    assert client.variable_values(case["id"]) == {"applicantName": "苏州某某科技有限公司", "creditScore": 45,
                                            "blacklisted": False, "refusalCode": "CREDIT_LOW",
                                            "refusalMessage": None}
    [credit] = client.get("/engine-rest/history/activity-instance", query_string={
        "processInstanceId": case["id"], "activityId": "Task_credit"}).get_json()
    assert credit["canceled"] is True
    trail = client.get(f"/api/v1/process-instance/{case['id']}/dossier").get_json()["auditTrail"]["events"]
    [thrown] = [e for e in trail if e["kind"] == "ExternalTaskBpmnError"]
    assert thrown["data"]["errorCode"] == "CREDIT_LOW" and thrown["data"]["thrownBy"] == "Thrown_low_score"
    assert thrown["data"]["caughtBy"] == "Boundary_low_score"


def test_a_sufficient_score_completes_the_task_on_its_normal_path(client, bureau):
    case, task = locked_task(client, bureau)
    done = bureau.post(f"{ET}/{task['id']}/complete", json={
        "workerId": "bureau-1", "variables": typed(creditScore=80, blacklisted=False)})
    assert done.status_code == 204, done.get_json()
    assert open_steps(client, case) == ["Task_licence"]
    assert client.variable_values(case["id"]) == {"applicantName": "苏州某某科技有限公司", "creditScore": 80,
                                            "blacklisted": False}


def test_the_first_true_expression_in_the_order_drawn_throws_its_error(client, bureau):
    case, task = locked_task(client, bureau)
    done = bureau.post(f"{ET}/{task['id']}/complete", json={
        "workerId": "bureau-1", "variables": typed(creditScore=45, blacklisted=True)})
    assert done.status_code == 204, done.get_json()
    assert open_steps(client, case) == ["Task_blacklist"]
    assert client.variable_values(case["id"])["refusalCode"] == "BLACKLISTED"


def test_only_true_throws_a_value_that_is_merely_truthy_does_not(client, bureau):
    """Camunda throws when the value is Boolean.TRUE; `1` or `"yes"` is no match."""
    case, task = locked_task(client, bureau)
    done = bureau.post(f"{ET}/{task['id']}/complete", json={
        "workerId": "bureau-1", "variables": typed(creditScore=80, blacklisted="yes")})
    assert done.status_code == 204, done.get_json()
    assert open_steps(client, case) == ["Task_licence"]


def test_an_expression_that_fails_on_completion_is_a_400_naming_the_element_and_nothing_changes(client, bureau):
    case, task = locked_task(client, bureau)
    refused = bureau.post(f"{ET}/{task['id']}/complete", json={
        "workerId": "bureau-1", "variables": typed(creditScore=80)})           # no `blacklisted`
    assert refused.status_code == 400, refused.get_json()
    body = refused.get_json()
    assert body["type"] == "ProcessEngineException"
    assert "Task_credit" in body["message"] and "Thrown_blacklisted" in body["message"], body
    assert "${blacklisted}" in body["message"] and "nothing was changed" in body["message"], body

    still = bureau.get(f"{ET}/{task['id']}").get_json()
    assert still["workerId"] == "bureau-1"
    assert open_steps(client, case) == []
    assert client.variable_values(case["id"]) == {"applicantName": "苏州某某科技有限公司"}
    done = bureau.post(f"{ET}/{task['id']}/complete", json={
        "workerId": "bureau-1", "variables": typed(creditScore=80, blacklisted=False)})
    assert done.status_code == 204, done.get_json()
    assert open_steps(client, case) == ["Task_licence"]


def test_a_failure_whose_variables_match_throws_the_error_with_the_failures_message(client, bureau):
    case, task = locked_task(client, bureau)
    failed = bureau.post(f"{ET}/{task['id']}/failure", json={
        "workerId": "bureau-1", "errorMessage": "列入严重失信主体名单", "retries": 3, "retryTimeout": 60_000,
        "variables": typed(blacklisted=True)})
    assert failed.status_code == 204, failed.get_json()
    assert bureau.get(f"{ET}/{task['id']}").status_code == 404
    assert open_steps(client, case) == ["Task_blacklist"]
    variables = client.variable_values(case["id"])
    assert variables["refusalCode"] == "BLACKLISTED" and variables["refusalMessage"] == "列入严重失信主体名单"
    assert variables["blacklisted"] is True
    assert client.get("/engine-rest/incident/count").get_json() == {"count": 0}


def test_a_failure_whose_expressions_fail_is_an_ordinary_failure_as_in_camunda(client, bureau):
    """Camunda evaluates them on a failure too, but goes on with the failure when one fails:
    a worker that cannot reach the bureau sends no score, and its failure must still count."""
    case, task = locked_task(client, bureau)
    failed = bureau.post(f"{ET}/{task['id']}/failure", json={
        "workerId": "bureau-1", "errorMessage": "征信系统无法连接", "retries": 0})
    assert failed.status_code == 204, failed.get_json()
    row = bureau.get(f"{ET}/{task['id']}").get_json()
    assert row["retries"] == 0 and row["errorMessage"] == "征信系统无法连接"
    assert client.get("/engine-rest/incident/count").get_json() == {"count": 1}
    assert open_steps(client, case) == []


def test_a_completion_after_a_failure_throws_with_the_failures_message_as_camunda_does(client, bureau):
    """Camunda throws with the external task's error message, which a failure before set."""
    case, task = locked_task(client, bureau)
    assert bureau.post(f"{ET}/{task['id']}/failure", json={
        "workerId": "bureau-1", "errorMessage": "征信系统超时", "retries": 1}).status_code == 204
    bureau.post(f"{ET}/fetchAndLock", json={"workerId": "bureau-1", "maxTasks": 1, "topics": [
        {"topicName": "credit.check", "lockDuration": 60_000}]})
    done = bureau.post(f"{ET}/{task['id']}/complete", json={
        "workerId": "bureau-1", "variables": typed(creditScore=30, blacklisted=False)})
    assert done.status_code == 204, done.get_json()
    variables = client.variable_values(case["id"])
    assert variables["refusalCode"] == "CREDIT_LOW" and variables["refusalMessage"] == "征信系统超时"


def test_a_thrown_error_no_boundary_catches_is_a_400_and_nothing_changes(client, bureau):
    """As a worker's own bpmnError with a code nobody catches: refused, the task stays the worker's."""
    case, task = locked_task(client, bureau)
    refused = bureau.post(f"{ET}/{task['id']}/complete", json={
        "workerId": "bureau-1", "variables": typed(creditScore=80, blacklisted=False, fraudSuspected=True)})
    assert refused.status_code == 400, refused.get_json()
    message = refused.get_json()["message"]
    assert "FRAUD" in message and "Thrown_fraud" in message and "nothing was changed" in message, message
    assert bureau.get(f"{ET}/{task['id']}").get_json()["workerId"] == "bureau-1"
    assert client.variable_values(case["id"]) == {"applicantName": "苏州某某科技有限公司"}


def test_local_variables_of_the_completion_are_seen_by_the_expressions_and_then_gone(client, bureau):
    case, task = locked_task(client, bureau)
    done = bureau.post(f"{ET}/{task['id']}/complete", json={
        "workerId": "bureau-1", "variables": typed(blacklisted=False), "localVariables": typed(creditScore=10)})
    assert done.status_code == 204, done.get_json()
    assert open_steps(client, case) == ["Task_refusal"]
    assert "creditScore" not in client.variable_values(case["id"])


ONE_TASK = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="D" targetNamespace="t">
  <bpmn:error id="Error_low" name="Low" {code} />
  <bpmn:message id="Message_1" name="paid" />
  <bpmn:process id="thrown" isExecutable="true">
    <bpmn:startEvent id="S"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:{tag} id="T" {implementation}>
      <bpmn:extensionElements>
        <camunda:errorEventDefinition id="Thrown_1" {definition} />
      </bpmn:extensionElements>
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
    </bpmn:{tag}>
    <bpmn:endEvent id="E"><bpmn:incoming>F2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="T" />
    <bpmn:sequenceFlow id="F2" sourceRef="T" targetRef="E" />
  </bpmn:process>
</bpmn:definitions>
"""
EXTERNAL = 'camunda:type="external" camunda:topic="credit.check"'


def one_task(definition, code='errorCode="LOW"', tag="serviceTask", implementation=EXTERNAL) -> str:
    return ONE_TASK.format(definition=definition, code=code, tag=tag, implementation=implementation)


@pytest.mark.parametrize("definition, code, said", [
    ('errorRef="Error_low" expression="${score &lt;}"', 'errorCode="LOW"', "expression '${score <}'"),
    ('errorRef="Error_low" expression="${score lt 10}"', 'errorCode="LOW"', "`<` for `lt`"),
    ('errorRef="Error_low"', 'errorCode="LOW"', "has no expression"),
    ('errorRef="Error_low" expression=" "', 'errorCode="LOW"', "has no expression"),
    ('expression="${score &lt; 10}"', 'errorCode="LOW"', "names no error"),
    ('errorRef="Message_1" expression="${score &lt; 10}"', 'errorCode="LOW"', "'Message_1' is no bpmn:error"),
    ('errorRef="Error_low" expression="${score &lt; 10}"', "", "'Error_low' has no errorCode"),
])
def test_an_error_definition_the_engine_could_not_throw_is_refused_at_deploy(client, definition, code, said):
    r = client.deploy(extra={"thrown.bpmn": one_task(definition, code)})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["thrown.bpmn"]["errors"]
    assert problem["mainElementId"] == "T" and problem["line"] == 9, problem
    assert "camunda:errorEventDefinition 'Thrown_1'" in problem["message"] and said in problem["message"], problem
    assert client.get("/engine-rest/deployment/count").get_json()["count"] == 0


def test_an_error_definition_on_anything_but_an_external_task_is_refused_not_ignored(client):
    r = client.deploy(extra={"thrown.bpmn": one_task('errorRef="Error_low" expression="${late}"', tag="userTask",
                                                     implementation='camunda:candidateGroups="window"')})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["thrown.bpmn"]["errors"]
    assert problem["mainElementId"] == "T" and "only on an external service task" in problem["message"], problem


def test_a_well_formed_error_definition_deploys_on_a_service_and_a_send_task(client):
    for tag in ("serviceTask", "sendTask"):
        r = client.deploy(extra={"thrown.bpmn": one_task('errorRef="Error_low" expression="${score &lt; 10}"',
                                                         tag=tag)})
        assert r.status_code == 200, r.get_data(as_text=True)[:300]
