"""Transient variables (`"valueInfo": {"transient": true}`, Camunda 7): the command that
receives one sees it (an output mapping, a gateway's condition, a new task's input
mapping), and nothing keeps it: not the case's variables, not their history, not the
audit chain, not the stored state (engine/transient_variables.py)."""
from __future__ import annotations

import pytest

from engine.models import Base
from tests.conftest import FIXTURES

ET = "/engine-rest/external-task"
PI = "/engine-rest/process-instance"


def transient(value, vtype="String"):
    return {"value": value, "type": vtype, "valueInfo": {"transient": True}}


def stored_anywhere(engine, text: str) -> list[str]:
    """The tables with a row that holds `text` (the state, its task rows, the variables
    and their history, the audit chains, ...)."""
    found = []
    with engine.uow(write=False) as uow:
        for table in Base.metadata.sorted_tables:
            if any(text in str(tuple(row)) for row in uow.session.execute(table.select())):
                found.append(table.name)
    return found


@pytest.fixture
def worker(client):
    for fixture in ("transient_routing.bpmn", "external_registration.bpmn", "message_bank.bpmn"):
        assert client.deploy(FIXTURES / fixture, name=fixture).status_code == 200
    return client.create_user("ident_system", ["external-workers"])


def fetch_one(worker, topic):
    response = worker.post(f"{ET}/fetchAndLock", json={"workerId": "w1", "maxTasks": 1, "topics": [
        {"topicName": topic, "lockDuration": 60_000}]})
    assert response.status_code == 200, response.get_json()
    [task] = response.get_json()
    return task


def complete(worker, task, **body):
    done = worker.post(f"{ET}/{task['id']}/complete", json={"workerId": "w1", **body})
    assert done.status_code == 204, done.get_json()


def history_names(client, instance_id):
    rows = client.get("/engine-rest/history/variable-instance", query_string={"processInstanceId": instance_id})
    return {row["name"] for row in rows.get_json()}


def test_a_transient_start_variable_feeds_the_first_tasks_input_mapping_and_is_not_kept(client, worker, engine):
    started = client.post("/engine-rest/process-definition/key/transient_routing/start", json={
        "variables": {"applicant": {"value": "张三", "type": "String"},
                      "intakeToken": transient("GOV-otp-5510377")}})
    assert started.status_code == 200, started.get_json()
    case = started.get_json()
    task = fetch_one(worker, "credit.score")
    assert task["variables"]["channel"]["value"] == "GOV"             # the input mapping saw it
    assert "intakeToken" not in task["variables"]
    assert set(client.get(f"{PI}/{case['id']}/variables").get_json()) == {"applicant"}
    assert history_names(client, case["id"]) == {"applicant"}
    assert stored_anywhere(engine, "otp-5510377") == []


def test_a_workers_transient_result_is_seen_by_the_output_mapping_and_the_gateway_then_dropped(
        client, worker, engine):
    case = client.start("transient_routing", {"intakeToken": transient("WEB-1")})
    complete(worker, fetch_one(worker, "credit.score"), variables={"score": transient(91, "Integer")})
    verify = fetch_one(worker, "identity.verify")
    assert verify["variables"]["scoreBand"]["value"] == "high"       # the output mapping saw the score
    complete(worker, verify, variables={"faceMatch": transient(True, "Boolean"),
                                        "faceImage": transient("base64-face-77aa"),
                                        "verifiedBy": {"value": "公安人口库", "type": "String"}},
             localVariables={"rawResponse": transient("raw-88bb")})
    [issue] = client.tasks(processInstanceId=case["id"])
    assert issue["taskDefinitionKey"] == "Task_issue"                # the gateway saw faceMatch == True
    assert set(client.get(f"{PI}/{case['id']}/variables").get_json()) == {"scoreBand", "verifiedBy"}
    assert history_names(client, case["id"]) == {"scoreBand", "verifiedBy"}
    for secret in ("base64-face-77aa", "raw-88bb"):
        assert stored_anywhere(engine, secret) == [], secret
    dossier = client.get(f"/api/v1/process-instance/{case['id']}/dossier")
    assert dossier.status_code == 200 and "faceImage" not in dossier.get_data(as_text=True)

    # the next command does not see it: a condition on faceMatch would fail now
    done = client.post(f"/engine-rest/task/{issue['id']}/complete", json={
        "variables": {"sealPin": transient("0000")}, "withVariablesInReturn": True})
    assert done.status_code == 200, done.get_json()
    assert set(done.get_json()) == {"scoreBand", "verifiedBy"}
    assert client.get(f"{PI}/{case['id']}").status_code == 404      # the gateway saw sealPin: the case ended
    ended = client.get("/engine-rest/history/activity-instance", query_string={
        "processInstanceId": case["id"], "activityId": "End_issued"}).get_json()
    assert len(ended) == 1
    assert history_names(client, case["id"]) == {"scoreBand", "verifiedBy"}


def test_a_failure_and_a_bpmn_error_keep_no_transient_variable(client, worker, engine):
    case = client.start("company_setup", {"applicantName": {"value": "某某公司", "type": "String"}})
    task = fetch_one(worker, "registration")
    failed = worker.post(f"{ET}/{task['id']}/failure", json={
        "workerId": "w1", "retries": 1, "retryTimeout": 0, "errorMessage": "timeout",
        "variables": {"attempt": transient("trace-4711")}, "localVariables": {"wire": transient("wire-4712")}})
    assert failed.status_code == 204, failed.get_json()
    task = fetch_one(worker, "registration")
    assert "attempt" not in task["variables"] and "wire" not in task["variables"]
    thrown = worker.post(f"{ET}/{task['id']}/bpmnError", json={
        "workerId": "w1", "errorCode": "REGISTRATION_REJECTED",
        "variables": {"rejectReason": {"value": "名称重复", "type": "String"},
                      "officerNote": transient("note-4713")}})
    assert thrown.status_code == 204, thrown.get_json()
    [correction] = client.tasks(processInstanceId=case["id"])
    assert correction["taskDefinitionKey"] == "Task_correct"          # the boundary path
    assert set(client.get(f"{PI}/{case['id']}/variables").get_json()) == {"applicantName", "rejectReason"}
    for secret in ("trace-4711", "wire-4712", "note-4713"):
        assert stored_anywhere(engine, secret) == [], secret


def test_a_message_keeps_no_transient_variable_whether_it_starts_a_case_or_reaches_one(client, worker, engine):
    started = client.post("/engine-rest/message", json={
        "messageName": "OnlineApplication", "resultEnabled": True,
        "processVariables": {"channel": {"value": "web", "type": "String"}, "session": transient("sess-9001")}})
    assert started.status_code == 200, started.get_json()
    [result] = started.get_json()
    online = result["processInstance"]["id"] if "processInstance" in result else result["execution"]["processInstanceId"]
    assert set(client.get(f"{PI}/{online}/variables").get_json()) == {"channel"}

    bank = client.start("bank_account")
    delivered = client.post("/engine-rest/message", json={
        "messageName": "BankAccountOpened", "processInstanceId": bank["id"],
        "processVariables": {"accountNo": {"value": "6222-01", "type": "String"},
                             "bankOtp": transient("otp-9002")}})
    assert delivered.status_code == 204, delivered.get_json()
    assert set(client.get(f"{PI}/{bank['id']}/variables").get_json()) == {"accountNo"}
    for secret in ("sess-9001", "otp-9002"):
        assert stored_anywhere(engine, secret) == [], secret


def test_a_transient_variable_may_not_take_the_name_of_a_process_variable(client, worker):
    case = client.start("transient_routing", {"intakeToken": transient("WEB-1"),
                                              "applicant": {"value": "张三", "type": "String"}})
    task = fetch_one(worker, "credit.score")
    refused = worker.post(f"{ET}/{task['id']}/complete", json={
        "workerId": "w1", "variables": {"score": {"value": 50, "type": "Integer"}, "applicant": transient("李四")}})
    assert refused.status_code == 400
    assert "cannot set transient variable 'applicant'" in refused.get_json()["message"]
    assert client.get(f"{PI}/{case['id']}/variables/applicant").get_json()["value"] == "张三"
    assert worker.get(f"{ET}/{task['id']}").status_code == 200       # nothing changed: still open
    bad = worker.post(f"{ET}/{task['id']}/complete", json={
        "workerId": "w1", "variables": {"score": {"value": 50, "type": "Integer", "valueInfo": {"transient": "yes"}}}})
    assert bad.status_code == 400 and "valueInfo.transient must be true or false" in bad.get_json()["message"]


def test_a_signal_hands_its_transient_variables_to_the_gateway_after_the_catch_and_keeps_none(client, engine):
    from tests.api.test_signals import deploy, started_by_signal, waiting_for
    deploy(client, limited=lambda key: waiting_for(key, condition="limit > 10"), announced=started_by_signal)
    case = client.start("limited")["id"]
    sent = client.post("/engine-rest/signal", json={"name": "PolicyChanged", "variables": {
        "limit": transient(50, "Integer"), "circular": {"value": "发改委 2025-7", "type": "String"}}})
    assert sent.status_code == 204, sent.get_json()
    [waiting] = client.tasks(processInstanceId=case)
    assert waiting["taskDefinitionKey"] == "T"                        # the gateway saw limit > 10
    assert set(client.get(f"{PI}/{case}/variables").get_json()) == {"circular"}
    [announced] = client.get(PI, query_string={"processDefinitionKey": "announced"}).get_json()
    assert set(client.get(f"{PI}/{announced['id']}/variables").get_json()) == {"circular"}
    assert history_names(client, case) == {"circular"}


def test_a_transient_variable_put_on_a_running_case_is_not_kept(client, worker, engine):
    case = client.start("bank_account", {"accountNo": {"value": "6222-01", "type": "String"}})["id"]
    assert client.put(f"{PI}/{case}/variables/note", json=transient("put-9003")).status_code == 204
    modified = client.post(f"{PI}/{case}/variables", json={"modifications": {
        "branch": {"value": "园区支行", "type": "String"}, "ticket": transient("post-9004")}})
    assert modified.status_code == 204, modified.get_json()
    assert set(client.get(f"{PI}/{case}/variables").get_json()) == {"accountNo", "branch"}
    clash = client.put(f"{PI}/{case}/variables/accountNo", json=transient("6222-02"))
    assert clash.status_code == 400 and "cannot set transient variable 'accountNo'" in clash.get_json()["message"]
    assert client.get(f"{PI}/{case}/variables/accountNo").get_json()["value"] == "6222-01"
    for secret in ("put-9003", "post-9004"):
        assert stored_anywhere(engine, secret) == [], secret


def test_a_transient_named_like_a_tasks_input_parameter_is_kept_neither_by_the_finished_task_nor_after_it(
        client, worker, engine):
    """An open task keeps its input parameter's own value; once it is done, nothing of the
    transient stays in it (its successors would inherit it: a waiting timer here).  A
    worker's failure may not replace an open task's input with a transient (400)."""
    from tests.security.models import HEAD
    model = HEAD.format(key="noted_input") + """
  <bpmn:process id="noted_input" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="T" />
    <bpmn:userTask id="T" camunda:candidateGroups="fgw">
      <bpmn:extensionElements><camunda:inputOutput>
        <camunda:inputParameter name="note">${"本步说明"}</camunda:inputParameter>
      </camunda:inputOutput></bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="F2" sourceRef="T" targetRef="Wait" />
    <bpmn:intermediateCatchEvent id="Wait">
      <bpmn:timerEventDefinition><bpmn:timeDuration>P5D</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="F3" sourceRef="Wait" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>
"""
    assert client.deploy(extra={"noted_input.bpmn": model}).status_code == 200
    case = client.start("noted_input")["id"]
    [task] = client.tasks(processInstanceId=case)
    r = client.post(f"/engine-rest/task/{task['id']}/complete", json={"variables": {"note": transient("secret-9911")}})
    assert r.status_code == 204, r.get_json()
    assert stored_anywhere(engine, "secret-9911") == []
    assert "note" not in client.get(f"{PI}/{case}/variables").get_json()

    registration = client.start("company_setup", {"applicantName": {"value": "某某公司", "type": "String"}})
    task = fetch_one(worker, "registration")                 # its input parameter: registry = SAMR
    for key in ("localVariables", "variables"):
        r = worker.post(f"{ET}/{task['id']}/failure", json={
            "workerId": "w1", "retries": 1, "errorMessage": "x", key: {"registry": transient("w-7731")}})
        assert r.status_code == 400 and "input parameter" in r.get_json()["message"], r.get_json()
    assert stored_anywhere(engine, "w-7731") == []
    assert worker.get(f"{ET}/{task['id']}").get_json()["retries"] is None          # the failure wrote nothing
