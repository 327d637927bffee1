"""Departments that answer later: the bank opens the account and calls back through
POST /message, the licence library announces the electronic licence, an applicant
withdraws, an online application starts a case (Camunda 7's message correlation)."""
from __future__ import annotations

import pytest

from tests.conftest import FIXTURES, typed

MESSAGE = "/engine-rest/message"


@pytest.fixture
def bank(client):
    deployed = client.deploy(FIXTURES / "message_bank.bpmn", name="bank")
    assert deployed.status_code == 200, deployed.get_json()
    return client.create_user("bank_system", ["external-workers"])


def open_case(client, business_key, **variables):
    return client.start("bank_account", typed(**variables), business_key)


def waiting_for(client, case) -> list[str]:
    tree = client.get(f"/engine-rest/process-instance/{case['id']}/activity-instances").get_json()
    return sorted(child["activityId"] for child in tree["childActivityInstances"])


def variables_of(client, case) -> dict:
    return {k: v["value"] for k, v in client.get(f"/engine-rest/process-instance/{case['id']}/variables")
            .get_json().items()}


def test_the_bank_callback_is_correlated_by_business_key_and_its_variables_reach_the_case(client, bank):
    case = open_case(client, "SZ-2025-0200")
    other = open_case(client, "SZ-2025-0201")
    assert waiting_for(client, case) == ["Catch_opened"]
    answer = bank.post(MESSAGE, json={"messageName": "BankAccountOpened", "businessKey": "SZ-2025-0200",
                                      "processVariables": {"accountNo": {"value": "6222020000001", "type": "String"}},
                                      "resultEnabled": True, "variablesInResultEnabled": True})
    assert answer.status_code == 200, answer.get_json()
    [result] = answer.get_json()
    assert result["resultType"] == "Execution" and result["processInstance"] is None
    assert result["execution"]["processInstanceId"] == case["id"] and result["execution"]["ended"] is False
    assert result["variables"]["accountNo"] == {"value": "6222020000001", "type": "String", "valueInfo": {}}
    assert waiting_for(client, case) == ["Receive_licence"]
    assert variables_of(client, case)["accountNo"] == "6222020000001"
    assert waiting_for(client, other) == ["Catch_opened"]              # the other case did not move


def test_correlation_keys_pick_the_case_by_its_process_variables(client, bank):
    first = open_case(client, None, applicationNo="BA-1")
    second = open_case(client, None, applicationNo="BA-2")
    done = bank.post(MESSAGE, json={"messageName": "BankAccountOpened",
                                    "correlationKeys": {"applicationNo": {"value": "BA-2", "type": "String"}}})
    assert done.status_code == 204, done.get_json()
    assert waiting_for(client, second) == ["Receive_licence"]
    assert waiting_for(client, first) == ["Catch_opened"]


def test_a_receive_task_and_a_boundary_message_end_the_case_when_the_applicant_withdraws(client, bank):
    case = open_case(client, "SZ-2025-0300")
    assert bank.post(MESSAGE, json={"messageName": "BankAccountOpened", "businessKey": "SZ-2025-0300"}).status_code == 204
    received = bank.post(MESSAGE, json={"messageName": "LicenceIssued", "processInstanceId": case["id"],
                                        "processVariables": {"licenceNo": {"value": "L-77"}}})
    assert received.status_code == 204, received.get_json()
    [issue] = client.tasks(processInstanceId=case["id"])
    assert issue["taskDefinitionKey"] == "Task_issue"
    assert variables_of(client, case)["licenceNo"] == "L-77"

    withdrawn = bank.post(MESSAGE, json={"messageName": "ApplicationWithdrawn", "businessKey": "SZ-2025-0300"})
    assert withdrawn.status_code == 204, withdrawn.get_json()
    assert client.tasks(processInstanceId=case["id"]) == []
    history = client.get(f"/engine-rest/history/process-instance/{case['id']}").get_json()
    assert history["state"] == "COMPLETED"
    ends = client.get("/engine-rest/history/activity-instance", query_string={
        "processInstanceId": case["id"], "activityId": "End_withdrawn"}).get_json()
    assert len(ends) == 1


def test_a_message_start_event_starts_a_new_case_with_the_business_key_and_variables(client, bank):
    started = bank.post(MESSAGE, json={"messageName": "OnlineApplication", "businessKey": "WS-2025-0001",
                                       "processVariables": {"applicantName": {"value": "张三"}},
                                       "resultEnabled": True})
    assert started.status_code == 200, started.get_json()
    [result] = started.get_json()
    assert result["resultType"] == "ProcessDefinition" and result["execution"] is None
    instance = result["processInstance"]
    assert instance["businessKey"] == "WS-2025-0001" and instance["definitionId"].startswith("online_application:")
    [accept] = client.tasks(processInstanceId=instance["id"])
    assert accept["taskDefinitionKey"] == "Task_accept"
    assert variables_of(client, instance)["applicantName"] == "张三"
    history = client.get("/engine-rest/history/activity-instance", query_string={
        "processInstanceId": instance["id"], "activityId": "Start_online"}).get_json()
    assert len(history) == 1 and history[0]["endTime"] is not None


def test_a_message_nobody_waits_for_is_a_400_and_changes_nothing(client, bank):
    case = open_case(client, "SZ-2025-0400")
    refused = bank.post(MESSAGE, json={"messageName": "LicenceIssued", "businessKey": "SZ-2025-0400"})
    assert refused.status_code == 400
    assert refused.get_json() == {"type": "RestException", "code": 0, "message":
                                  "org.camunda.bpm.engine.MismatchingMessageCorrelationException: Cannot correlate "
                                  "message 'LicenceIssued': No process definition or execution matches the parameters"}
    wrong_key = bank.post(MESSAGE, json={"messageName": "BankAccountOpened", "businessKey": "SZ-2025-9999"})
    assert wrong_key.status_code == 400
    missing = bank.post(MESSAGE, json={"businessKey": "SZ-2025-0400"})
    assert missing.status_code == 400 and missing.get_json()["message"] == "No message name supplied"
    assert waiting_for(client, case) == ["Catch_opened"]


def test_one_message_for_several_waiting_cases_needs_all(client, bank):
    cases = [open_case(client, "SAME-KEY"), open_case(client, "SAME-KEY")]
    ambiguous = bank.post(MESSAGE, json={"messageName": "BankAccountOpened", "businessKey": "SAME-KEY"})
    assert ambiguous.status_code == 400
    assert "to a single execution. 2 executions match" in ambiguous.get_json()["message"]
    assert [waiting_for(client, c) for c in cases] == [["Catch_opened"], ["Catch_opened"]]
    everyone = bank.post(MESSAGE, json={"messageName": "BankAccountOpened", "businessKey": "SAME-KEY", "all": True,
                                        "resultEnabled": True})
    assert everyone.status_code == 200 and len(everyone.get_json()) == 2
    assert [waiting_for(client, c) for c in cases] == [["Receive_licence"], ["Receive_licence"]]


def test_the_same_callback_delivered_twice_is_applied_once(client, bank):
    case = open_case(client, "SZ-2025-0500")
    body = {"messageName": "BankAccountOpened", "businessKey": "SZ-2025-0500", "messageId": "bank-txn-0001",
            "processVariables": {"accountNo": {"value": "6222-1"}}, "resultEnabled": True}
    first = bank.post(MESSAGE, json=body)
    assert first.status_code == 200, first.get_json()
    audit_before = client.get("/engine-rest/history/activity-instance",
                              query_string={"processInstanceId": case["id"]}).get_json()
    again = bank.post(MESSAGE, json={**body, "processVariables": {"accountNo": {"value": "changed"}}})
    assert again.status_code == 200 and again.get_json() == first.get_json()
    assert waiting_for(client, case) == ["Receive_licence"]            # not moved a second time
    assert variables_of(client, case)["accountNo"] == "6222-1"
    assert client.get("/engine-rest/history/activity-instance",
                      query_string={"processInstanceId": case["id"]}).get_json() == audit_before

    by_header = {"messageName": "LicenceIssued", "businessKey": "SZ-2025-0500"}
    headers = {"Idempotency-Key": "licence-0001"}
    assert bank.post(MESSAGE, json=by_header, headers=headers).status_code == 204
    assert bank.post(MESSAGE, json=by_header, headers=headers).status_code == 204   # the receive task is gone
    [issue] = client.tasks(processInstanceId=case["id"])
    assert issue["taskDefinitionKey"] == "Task_issue"
    reused = bank.post(MESSAGE, json={"messageName": "ApplicationWithdrawn", "messageId": "licence-0001"})
    assert reused.status_code == 409 and "already used for message 'LicenceIssued'" in reused.get_json()["message"]
    assert client.tasks(processInstanceId=case["id"])                  # the withdrawal was not applied


def test_a_failed_delivery_is_not_remembered_so_a_retry_can_succeed(client, bank):
    early = bank.post(MESSAGE, json={"messageName": "LicenceIssued", "businessKey": "SZ-2025-0600",
                                     "messageId": "licence-0600"})
    assert early.status_code == 400
    case = open_case(client, "SZ-2025-0600")
    assert bank.post(MESSAGE, json={"messageName": "BankAccountOpened", "businessKey": "SZ-2025-0600"}).status_code == 204
    retried = bank.post(MESSAGE, json={"messageName": "LicenceIssued", "businessKey": "SZ-2025-0600",
                                       "messageId": "licence-0600"})
    assert retried.status_code == 204, retried.get_json()
    assert waiting_for(client, case) == ["Task_issue"]


def test_a_department_officer_may_not_correlate_messages(client, bank):
    open_case(client, "SZ-2025-0700")
    officer = client.create_user("window_clerk", ["window"])
    refused = officer.post(MESSAGE, json={"messageName": "BankAccountOpened", "businessKey": "SZ-2025-0700"})
    assert refused.status_code == 403 and refused.get_json()["type"] == "AuthorizationException"


def test_each_shape_of_a_correlation_finds_its_catch_and_reuses_its_statement(client, bank):
    """By name alone, by business key, by process instance, by both: the lookup's
    statement is built once per shape (engine/messages.py) and bound to the request."""
    from engine import messages
    first, second = open_case(client, "SZ-2025-0800"), open_case(client, "SZ-2025-0801")
    messages._WAITING.clear()
    for case in (first, second):
        body = {"messageName": "BankAccountOpened", "processInstanceId": case["id"]}
        assert bank.post(MESSAGE, json=body).status_code == 204
        assert waiting_for(client, case) == ["Receive_licence"]
    assert len(messages._WAITING) == 1                 # one shape, two instance ids
    both = {"messageName": "LicenceIssued", "businessKey": "SZ-2025-0801", "processInstanceId": first["id"]}
    assert bank.post(MESSAGE, json=both).status_code == 400                  # nothing waits with both
    assert waiting_for(client, first) == waiting_for(client, second) == ["Receive_licence"]
    both["processInstanceId"] = second["id"]
    assert bank.post(MESSAGE, json=both).status_code == 204
    assert waiting_for(client, second) == ["Task_issue"]
    assert bank.post(MESSAGE, json={"messageName": "LicenceIssued"}).status_code == 204     # the one left waiting
    assert waiting_for(client, first) == ["Task_issue"]
    assert len(messages._WAITING) == 3


def test_a_message_to_several_cases_runs_each_cases_legal_clock_in_that_case(client):
    """Each case the message reaches starts its own clock where its catch fires: the
    clock hooks act for the command of the case being run, not for the last case opened
    (engine/runtime.py Command.act)."""
    from tests.security.models import HEAD
    model = HEAD.format(key="clock_on_message") + """
  <bpmn:process id="clock_on_message" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Catch" />
    <bpmn:intermediateCatchEvent id="Catch">
      <bpmn:extensionElements><camunda:properties>
        <camunda:property name="legalClock.start" value="after" />
        <camunda:property name="legalClock.limit" value="5wd" />
      </camunda:properties></bpmn:extensionElements>
      <bpmn:messageEventDefinition messageRef="M" />
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="F2" sourceRef="Catch" targetRef="T" />
    <bpmn:userTask id="T" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="F3" sourceRef="T" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
  <bpmn:message id="M" name="MaterialsArrived" />
</bpmn:definitions>
"""
    assert client.deploy(extra={"clock_on_message.bpmn": model}).status_code == 200
    cases = [client.start("clock_on_message", business_key=f"MA-{n}")["id"] for n in range(3)]
    r = client.post(MESSAGE, json={"messageName": "MaterialsArrived", "all": True})
    assert r.status_code == 204, r.get_json()
    for case in cases:
        clocks = client.get(f"/api/v1/process-instance/{case}/legal-clocks").get_json()
        assert [c["stage"] for c in clocks] == ["after"], (case, clocks)


def _notifying(key, implementation=""):
    """start → a message throw event (告知申请人) → T (fgw) → a message end event."""
    from tests.security.models import HEAD
    return HEAD.format(key=key) + f"""
  <bpmn:process id="{key}" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Notify" />
    <bpmn:intermediateThrowEvent id="Notify" name="告知申请人">
      <bpmn:messageEventDefinition id="MD1" messageRef="M" {implementation} />
    </bpmn:intermediateThrowEvent>
    <bpmn:sequenceFlow id="F2" sourceRef="Notify" targetRef="T" />
    <bpmn:userTask id="T" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="F3" sourceRef="T" targetRef="Done" />
    <bpmn:endEvent id="Done"><bpmn:messageEventDefinition id="MD2" messageRef="M" /></bpmn:endEvent>
  </bpmn:process>
  <bpmn:message id="M" name="ApplicantNotified" />
</bpmn:definitions>
"""


def test_message_throw_events_without_an_implementation_pass_as_in_camunda_7(client):
    """SpiffWorkflow's camunda flavour evaluated the missing camunda:expression: a 500 at
    the start of every case of a model that deployed."""
    assert client.deploy(extra={"notifying.bpmn": _notifying("notifying")}).status_code == 200
    case = client.start("notifying")["id"]
    [task] = client.tasks(processInstanceId=case)
    assert client.complete(task["id"]).status_code == 204
    history = client.get("/engine-rest/history/activity-instance", query_string={"processInstanceId": case})
    assert sorted((a["activityId"], a["activityType"]) for a in history.get_json()) == [
        ("Done", "messageEndEvent"), ("Notify", "intermediateMessageThrowEvent"), ("S", "startEvent"),
        ("T", "userTask")]
    assert client.get(f"/engine-rest/history/process-instance/{case}").get_json()["state"] == "COMPLETED"


@pytest.mark.parametrize("implementation", ['camunda:type="external" camunda:topic="notify"',
                                            'camunda:class="org.example.Notify"', 'camunda:expression="${x}"'])
def test_a_message_throw_event_with_an_implementation_is_refused_at_deploy_with_advice(client, implementation):
    r = client.deploy(extra={"notifying.bpmn": _notifying("notifying", implementation)})
    assert r.status_code == 400, r.get_json()
    [problem] = r.get_json()["details"]["notifying.bpmn"]["errors"]
    assert problem["mainElementId"] == "Notify" and "draw a send task" in problem["message"], problem


def _awaiting(key):
    """start → an event-based gateway: the applicant's materials (a message) or 补正期满 (a timer)."""
    from tests.security.models import HEAD
    return HEAD.format(key=key) + f"""
  <bpmn:process id="{key}" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="G" />
    <bpmn:eventBasedGateway id="G" />
    <bpmn:sequenceFlow id="F2" sourceRef="G" targetRef="Received" />
    <bpmn:intermediateCatchEvent id="Received"><bpmn:messageEventDefinition id="MD" messageRef="M" /></bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="F3" sourceRef="Received" targetRef="T" />
    <bpmn:userTask id="T" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="F4" sourceRef="T" targetRef="E" />
    <bpmn:sequenceFlow id="F5" sourceRef="G" targetRef="Lapsed" />
    <bpmn:intermediateCatchEvent id="Lapsed">
      <bpmn:timerEventDefinition id="TD"><bpmn:timeDuration xsi:type="bpmn:tFormalExpression">P5D</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="F6" sourceRef="Lapsed" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
  <bpmn:message id="M" name="MaterialsArrived" />
</bpmn:definitions>
"""


@pytest.mark.parametrize("restored", [False, True], ids=["cached", "restored"])
def test_a_message_taken_by_an_event_based_gateway_moves_the_case_on(client, engine, monkeypatch, restored):
    """The gateway keeps the message definition it saw in the case's state, and SpiffWorkflow's
    camunda serializer had no converter for it: a 500 on POST /message, every time."""
    if restored:
        monkeypatch.setattr(engine.workflows, "size", 0)           # every command restores the case
    assert client.deploy(extra={"awaiting.bpmn": _awaiting("awaiting")}).status_code == 200
    case = client.start("awaiting", business_key="SZ-2025-0800")["id"]
    r = client.post(MESSAGE, json={"messageName": "MaterialsArrived", "businessKey": "SZ-2025-0800",
                                   "processVariables": {"pages": {"value": 3, "type": "Integer"}}})
    assert r.status_code == 204, r.get_data(as_text=True)[:300]
    [task] = client.tasks(processInstanceId=case)
    assert task["taskDefinitionKey"] == "T"
    assert client.get(f"/engine-rest/process-instance/{case}/variables").get_json()["pages"]["value"] == 3
    assert client.complete(task["id"]).status_code == 204
    assert client.get(f"/engine-rest/history/process-instance/{case}").get_json()["state"] == "COMPLETED"


def test_message_variables_named_typename_and_value_taken_by_an_event_based_gateway_stay_two(client, engine,
                                                                                           monkeypatch):
    """The gateway keeps the message it caught (its payload too) in the case's state:
    SpiffWorkflow restored that payload as a whole, as a typed value, so such variables
    failed every later command on the case once it left the workflow cache."""
    monkeypatch.setattr(engine.workflows, "size", 0)           # every command restores the case
    assert client.deploy(extra={"awaiting.bpmn": _awaiting("awaiting")}).status_code == 200
    case = client.start("awaiting", business_key="SZ-2025-0801")["id"]
    r = client.post(MESSAGE, json={"messageName": "MaterialsArrived", "businessKey": "SZ-2025-0801",
                                   "processVariables": {"typename": {"value": "datetime"}, "value": {"value": "nope"}}})
    assert r.status_code == 204, r.get_data(as_text=True)[:300]
    r = client.get(f"/engine-rest/process-instance/{case}/variables")
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    assert {k: v["value"] for k, v in r.get_json().items()} == {"typename": "datetime", "value": "nope"}
    [task] = client.tasks(processInstanceId=case)
    assert client.complete(task["id"]).status_code == 204
    assert client.get(f"/engine-rest/history/process-instance/{case}").get_json()["state"] == "COMPLETED"


def test_starting_a_process_that_starts_on_a_message_says_how_it_starts(client, bank):
    """It stood at its message start event for good before (a message reaches the start
    event of a new case only); now a 400 that names the message, and no case."""
    r = client.post("/engine-rest/process-definition/key/online_application/start", json={})
    assert r.status_code == 400, r.get_json()
    assert "starts on the message 'OnlineApplication' (POST /engine-rest/message)" in r.get_json()["message"]
    assert client.get("/engine-rest/process-instance/count").get_json()["count"] == 0
    r = bank.post(MESSAGE, json={"messageName": "OnlineApplication", "resultEnabled": True})
    assert r.status_code == 200 and r.get_json()[0]["resultType"] == "ProcessDefinition", r.get_json()


def two_starts(second: str) -> str:
    """online_or_desk: started by the message OnlineApplication, or by `second`."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
                  xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Defs_two" targetNamespace="x">
  <bpmn:message id="Msg_apply" name="OnlineApplication" />
  <bpmn:process id="online_or_desk" isExecutable="true">
    <bpmn:startEvent id="Start_online"><bpmn:messageEventDefinition id="MD" messageRef="Msg_apply" /></bpmn:startEvent>
    {second}
    <bpmn:userTask id="Task_accept" camunda:candidateGroups="window" />
    <bpmn:endEvent id="End_done" />
    <bpmn:sequenceFlow id="F1" sourceRef="Start_online" targetRef="Task_accept" />
    <bpmn:sequenceFlow id="F2" sourceRef="Start_second" targetRef="Task_accept" />
    <bpmn:sequenceFlow id="F3" sourceRef="Task_accept" targetRef="End_done" />
  </bpmn:process>
</bpmn:definitions>"""


def test_a_process_with_a_message_and_a_none_start_event_starts_by_request(client):
    """Two start events sit behind one split in SpiffWorkflow: the start was a 500."""
    assert client.deploy(extra={"two.bpmn": two_starts('<bpmn:startEvent id="Start_second" />')}).status_code == 200
    r = client.post("/engine-rest/process-definition/key/online_or_desk/start", json={})
    assert r.status_code == 200, r.get_json()
    assert [t["taskDefinitionKey"] for t in client.tasks(processInstanceId=r.get_json()["id"])] == ["Task_accept"]


def test_a_process_with_a_message_and_a_timer_start_event_says_how_it_starts(client):
    timer = ('<bpmn:startEvent id="Start_second"><bpmn:timerEventDefinition id="T">'
             '<bpmn:timeDate>2099-01-01T09:00:00+08:00</bpmn:timeDate></bpmn:timerEventDefinition></bpmn:startEvent>')
    assert client.deploy(extra={"two.bpmn": two_starts(timer)}).status_code == 200
    r = client.post("/engine-rest/process-definition/key/online_or_desk/start", json={})
    assert r.status_code == 400, r.get_json()
    assert r.get_json()["message"] == ("process 'online_or_desk' has no none start event: it starts on the message "
                                       "'OnlineApplication' (POST /engine-rest/message) or its timer (Start_second)")
    assert client.get("/engine-rest/process-instance/count").get_json()["count"] == 0


def test_an_expression_in_a_message_name_is_refused_at_deploy(client):
    """Camunda 7 evaluates it; here it was taken literally, so no POST /message could name it."""
    model = _notifying("named").replace('name="ApplicantNotified"', 'name="Notified-${businessKey}"')
    r = client.deploy(extra={"named.bpmn": model})
    assert r.status_code == 400, r.get_json()
    [problem] = r.get_json()["details"]["named.bpmn"]["errors"]
    assert problem["mainElementId"] == "M" and "an expression in a message name" in problem["message"], problem
