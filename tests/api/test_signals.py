"""A policy change announced to every case at once: POST /signal broadcasts a signal to
every case waiting for it (an intermediate catch event, a boundary event, an event-based
gateway's branch) and starts the processes whose start event waits for it (Camunda 7)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from engine import subscriptions
from tests.conftest import typed
from tests.security.models import HEAD

SIGNAL = "/engine-rest/signal"


def _signals(*names):
    return "".join(f'  <bpmn:signal id="Sig_{n}" name="{n}" />\n' for n in names) + "</bpmn:definitions>\n"


def waiting_for(key, signal="PolicyChanged", condition=None):
    """start → wait for `signal` (政策调整) → (an exclusive gateway on `condition`) → T (fgw) → end."""
    after = "T"
    gateway = ""
    if condition:
        after = "G"
        gateway = f"""
    <bpmn:exclusiveGateway id="G" />
    <bpmn:sequenceFlow id="F_yes" sourceRef="G" targetRef="T">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{condition}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="F_no" sourceRef="G" targetRef="E">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">not ({condition})</bpmn:conditionExpression>
    </bpmn:sequenceFlow>"""
    return HEAD.format(key=key) + f"""
  <bpmn:process id="{key}" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Catch" />
    <bpmn:intermediateCatchEvent id="Catch" name="政策调整">
      <bpmn:signalEventDefinition id="SD" signalRef="Sig_{signal}" />
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="F2" sourceRef="Catch" targetRef="{after}" />{gateway}
    <bpmn:userTask id="T" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="F3" sourceRef="T" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
""" + _signals(signal)


def boundary(key):
    """start → review (fgw), interrupted by the signal PolicyChanged → re-review (fgw)."""
    return HEAD.format(key=key) + f"""
  <bpmn:process id="{key}" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Review" />
    <bpmn:userTask id="Review" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="F2" sourceRef="Review" targetRef="E" />
    <bpmn:boundaryEvent id="Changed" attachedToRef="Review">
      <bpmn:signalEventDefinition id="SD" signalRef="Sig_PolicyChanged" />
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="F3" sourceRef="Changed" targetRef="Rereview" />
    <bpmn:userTask id="Rereview" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="F4" sourceRef="Rereview" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
""" + _signals("PolicyChanged")


def started_by_signal(key, task="T"):
    """a signal start event (PolicyChanged) → `task` (fgw) → end."""
    return HEAD.format(key=key) + f"""
  <bpmn:process id="{key}" isExecutable="true">
    <bpmn:startEvent id="S"><bpmn:signalEventDefinition id="SD" signalRef="Sig_PolicyChanged" /></bpmn:startEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="{task}" />
    <bpmn:userTask id="{task}" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="F2" sourceRef="{task}" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
""" + _signals("PolicyChanged")


def announcing(key, mappings=""):
    """start → the policy review (fgw) → throws PolicyChanged with `mappings` (camunda:in) → end."""
    extension = f"<bpmn:extensionElements>{mappings}</bpmn:extensionElements>" if mappings else ""
    return HEAD.format(key=key) + f"""
  <bpmn:process id="{key}" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Review" />
    <bpmn:userTask id="Review" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="F2" sourceRef="Review" targetRef="Throw" />
    <bpmn:intermediateThrowEvent id="Throw">
      <bpmn:signalEventDefinition id="SD" signalRef="Sig_PolicyChanged">{extension}</bpmn:signalEventDefinition>
    </bpmn:intermediateThrowEvent>
    <bpmn:sequenceFlow id="F3" sourceRef="Throw" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
""" + _signals("PolicyChanged")


def gateway(key):
    """start → an event-based gateway: the signal PolicyChanged, or 补正期满 (a timer, 5 days)."""
    return HEAD.format(key=key) + f"""
  <bpmn:process id="{key}" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="G" />
    <bpmn:eventBasedGateway id="G" />
    <bpmn:sequenceFlow id="F2" sourceRef="G" targetRef="Changed" />
    <bpmn:intermediateCatchEvent id="Changed">
      <bpmn:signalEventDefinition id="SD" signalRef="Sig_PolicyChanged" />
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="F3" sourceRef="Changed" targetRef="T" />
    <bpmn:userTask id="T" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="F4" sourceRef="T" targetRef="E" />
    <bpmn:sequenceFlow id="F5" sourceRef="G" targetRef="Lapsed" />
    <bpmn:intermediateCatchEvent id="Lapsed">
      <bpmn:timerEventDefinition id="TD"><bpmn:timeDuration xsi:type="bpmn:tFormalExpression">P5D</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="F6" sourceRef="Lapsed" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
""" + _signals("PolicyChanged")


def withdrawn(key, thrower="end"):
    """start → the review (fgw) beside the applicant's withdrawal (撤回, fgw here); the
    withdrawal throws the signal Withdrawn from a signal end event (`thrower` "end") or an
    intermediate throw event, and the review's boundary event catches it → end."""
    throw = ('<bpmn:endEvent id="Throw"><bpmn:signalEventDefinition id="SD2" signalRef="Sig_Withdrawn" />'
             '</bpmn:endEvent>' if thrower == "end" else
             '<bpmn:intermediateThrowEvent id="Throw"><bpmn:signalEventDefinition id="SD2" signalRef="Sig_Withdrawn" />'
             '</bpmn:intermediateThrowEvent><bpmn:sequenceFlow id="F7" sourceRef="Throw" targetRef="E3" />'
             '<bpmn:endEvent id="E3" />')
    return HEAD.format(key=key) + f"""
  <bpmn:process id="{key}" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Split" />
    <bpmn:parallelGateway id="Split" />
    <bpmn:sequenceFlow id="F2" sourceRef="Split" targetRef="Review" />
    <bpmn:userTask id="Review" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="F3" sourceRef="Review" targetRef="E" />
    <bpmn:endEvent id="E" />
    <bpmn:boundaryEvent id="Stopped" attachedToRef="Review">
      <bpmn:signalEventDefinition id="SD1" signalRef="Sig_Withdrawn" />
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="F4" sourceRef="Stopped" targetRef="E2" />
    <bpmn:endEvent id="E2" />
    <bpmn:sequenceFlow id="F5" sourceRef="Split" targetRef="Withdraw" />
    <bpmn:userTask id="Withdraw" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="F6" sourceRef="Withdraw" targetRef="Throw" />
    {throw}
  </bpmn:process>
""" + _signals("Withdrawn")


@pytest.fixture
def system(client):
    """A department system that may send signals (as it may correlate messages)."""
    return client.create_user("policy_system", ["external-workers"])


def deploy(client, **models):
    r = client.deploy(extra={f"{key}.bpmn": build(key) for key, build in models.items()})
    assert r.status_code == 200, r.get_json()


def at(client, case) -> list[str]:
    tree = client.get(f"/engine-rest/process-instance/{case}/activity-instances").get_json()
    return sorted(child["activityId"] for child in tree["childActivityInstances"])


def variables_of(client, case) -> dict:
    return {k: v["value"] for k, v in client.get(f"/engine-rest/process-instance/{case}/variables").get_json().items()}


def audit_kinds(client, case) -> list[str]:
    dossier = client.get(f"/api/v1/process-instance/{case}/dossier").get_json()
    assert dossier["auditTrail"]["verification"]["valid"] is True, dossier["auditTrail"]["verification"]
    return [e["kind"] for e in dossier["auditTrail"]["events"]]


def subscribed(engine) -> list[tuple]:
    """The projection: (case, activity, kind, name) of every waiting message or signal catch."""
    t = subscriptions.TABLE.c
    with engine.uow(write=False) as uow:
        return sorted(tuple(r) for r in uow.session.execute(
            select(t.instance_id, t.activity_id, t.event_type, t.message_name)))


def test_a_signal_reaches_every_case_waiting_for_it_with_its_variables_and_not_a_case_waiting_for_another(
        client, system):
    deploy(client, policy=waiting_for, other=lambda key: waiting_for(key, "FeesChanged"))
    first, second = client.start("policy")["id"], client.start("policy")["id"]
    other = client.start("other")["id"]
    r = system.post(SIGNAL, json={"name": "PolicyChanged",
                                  "variables": typed(policyNo="国发〔2025〕7号", pages=3)})
    assert r.status_code == 204, r.get_json()
    for case in (first, second):
        assert at(client, case) == ["T"]
        assert variables_of(client, case) == {"policyNo": "国发〔2025〕7号", "pages": 3}
        assert audit_kinds(client, case) == ["ProcessInstanceStarted", "SignalReceived"]
    assert at(client, other) == ["Catch"]
    assert variables_of(client, other) == {}
    assert audit_kinds(client, other) == ["ProcessInstanceStarted"]
    dossier = client.get(f"/api/v1/process-instance/{first}/dossier").get_json()
    [event] = [e for e in dossier["auditTrail"]["events"] if e["kind"] == "SignalReceived"]
    assert event["actor"] == "policy_system" and event["activityId"] == "Catch", event
    assert event["data"]["signalName"] == "PolicyChanged" and event["data"]["variables"]["pages"] == 3, event


def test_a_boundary_signal_interrupts_the_task_it_is_attached_to(client, system):
    deploy(client, rereview=boundary)
    case = client.start("rereview")["id"]
    [review] = client.tasks(processInstanceId=case)
    assert system.post(SIGNAL, json={"name": "PolicyChanged"}).status_code == 204
    [task] = client.tasks(processInstanceId=case)
    assert task["taskDefinitionKey"] == "Rereview"
    assert client.complete(review["id"]).status_code == 409          # the interrupted review is over
    history = client.get("/engine-rest/history/activity-instance", query_string={
        "processInstanceId": case, "activityId": "Review"}).get_json()
    assert [h["canceled"] for h in history] == [True]
    assert history[0]["assignee"] is None, history        # nobody held it: not the signal's sender


def test_a_cancelled_task_keeps_its_own_assignee_in_the_history(client, system):
    """Camunda 7: a cancelled task's activity keeps the task's assignee; who cancelled it
    (a signal's sender here, a timer for a tacit approval) did not hold it."""
    deploy(client, rereview=boundary)
    client.create_user("fgw1", ["fgw"])
    case = client.start("rereview")["id"]
    [review] = client.tasks(processInstanceId=case)
    officer = client.as_user("fgw1")
    assert officer.post(f"/engine-rest/task/{review['id']}/claim", json={"userId": "fgw1"}).status_code == 204
    assert system.post(SIGNAL, json={"name": "PolicyChanged"}).status_code == 204
    [rereview] = client.tasks(processInstanceId=case)
    assert officer.complete(rereview["id"]).status_code == 204          # unclaimed: the officer who did it
    history = {h["activityId"]: h for h in client.get("/engine-rest/history/activity-instance", query_string={
        "processInstanceId": case, "activityType": "userTask"}).get_json()}
    assert (history["Review"]["canceled"], history["Review"]["assignee"]) == (True, "fgw1"), history
    assert (history["Rereview"]["canceled"], history["Rereview"]["assignee"]) == (False, "fgw1"), history


@pytest.mark.parametrize("thrower", ["end", "intermediate"])
def test_a_signal_thrown_in_a_case_interrupts_a_task_of_a_parallel_branch_of_that_case_only(client, system, thrower):
    """A signal end event throws as an intermediate throw event does (SpiffWorkflow 3.2's
    parser read it as a none end event); the signal stays in its case."""
    deploy(client, withdrawable=lambda key: withdrawn(key, thrower),
           waiting=lambda key: waiting_for(key, signal="Withdrawn"))
    other = client.start("waiting")["id"]
    case = client.start("withdrawable")["id"]
    tasks = {t["taskDefinitionKey"]: t["id"] for t in client.tasks(processInstanceId=case)}
    assert sorted(tasks) == ["Review", "Withdraw"]
    assert client.complete(tasks["Withdraw"]).status_code == 204
    assert client.tasks(processInstanceId=case) == []
    ended = client.get(f"/engine-rest/history/process-instance/{case}").get_json()
    assert ended["state"] == "COMPLETED"
    history = client.get("/engine-rest/history/activity-instance", query_string={"processInstanceId": case}).get_json()
    ran = {h["activityId"]: h["canceled"] for h in history}
    assert ran["Review"] is True and "Stopped" in ran and "E2" in ran and "E" not in ran
    assert at(client, other) == ["Catch"]                          # the other case still waits for Withdrawn
    assert client.complete(tasks["Review"]).status_code == 409


def test_a_signal_start_event_starts_a_case_of_the_latest_version_with_the_variables(client, system):
    deploy(client, announced=started_by_signal)
    deploy(client, announced=lambda key: started_by_signal(key, task="T2"))
    r = system.post(SIGNAL, json={"name": "PolicyChanged", "variables": typed(policyNo="P-1")})
    assert r.status_code == 204, r.get_json()
    [case] = client.get("/engine-rest/process-instance", query_string={"processDefinitionKey": "announced"}).get_json()
    assert case["definitionId"].startswith("announced:2:")
    [task] = client.tasks(processInstanceId=case["id"])
    assert task["taskDefinitionKey"] == "T2"
    assert variables_of(client, case["id"]) == {"policyNo": "P-1"}
    assert audit_kinds(client, case["id"]) == ["ProcessInstanceStarted", "SignalReceived"]
    r = client.post("/engine-rest/process-definition/key/announced/start", json={})
    assert r.status_code == 400 and "starts on the signal 'PolicyChanged' (POST /engine-rest/signal)" in \
        r.get_json()["message"], r.get_json()


PASSED = ('<camunda:in source="policyNo" target="policy" />'
          '<camunda:in sourceExpression="${department + &quot;-&quot; + policyNo}" target="title" />'
          '<camunda:in businessKey="#{execution.processBusinessKey}" />')


def test_a_signal_thrown_in_a_case_starts_a_case_of_each_process_waiting_at_its_start_event_with_the_mapped_variables(
        client):
    """Camunda 7: a thrown signal starts the processes it starts, with what its camunda:in
    mappings pass and the thrower's business key; the thrower goes on and ends."""
    deploy(client, announcing=lambda key: announcing(key, PASSED), announced=started_by_signal)
    thrower = client.start("announcing", typed(policyNo="P-7", department="fgw", secret="x"),
                           business_key="ZC-2025-7")["id"]
    [review] = client.tasks(processInstanceId=thrower)
    assert client.complete(review["id"]).status_code == 204
    assert client.get(f"/engine-rest/history/process-instance/{thrower}").get_json()["state"] == "COMPLETED"
    [case] = client.get("/engine-rest/process-instance", query_string={"processDefinitionKey": "announced"}).get_json()
    assert case["businessKey"] == "ZC-2025-7"
    assert variables_of(client, case["id"]) == {"policy": "P-7", "title": "fgw-P-7"}
    assert [t["taskDefinitionKey"] for t in client.tasks(processInstanceId=case["id"])] == ["T"]
    assert audit_kinds(client, case["id"]) == ["ProcessInstanceStarted", "SignalReceived"]
    assert "SignalThrown" in audit_kinds(client, thrower)


def test_a_thrown_signal_without_mappings_starts_a_case_with_no_variables_and_no_business_key(client):
    deploy(client, announcing=announcing, announced=started_by_signal)
    thrower = client.start("announcing", typed(policyNo="P-8"), business_key="ZC-2025-8")["id"]
    [review] = client.tasks(processInstanceId=thrower)
    assert client.complete(review["id"]).status_code == 204
    [case] = client.get("/engine-rest/process-instance", query_string={"processDefinitionKey": "announced"}).get_json()
    assert case["businessKey"] is None and variables_of(client, case["id"]) == {}


def test_a_thrown_signal_s_mapping_that_passes_nothing_is_refused_at_deploy(client):
    r = client.deploy(extra={"announcing.bpmn": announcing("announcing", '<camunda:in target="policy" />')})
    assert r.status_code == 400 and "camunda:in" in r.get_json()["message"], r.get_json()


def test_an_expression_in_a_signal_name_is_refused_at_deploy(client):
    """Camunda 7 evaluates it; here it would be taken literally, so no POST /signal could name it."""
    model = waiting_for("named").replace('name="PolicyChanged"', 'name="PolicyChanged-${businessKey}"')
    r = client.deploy(extra={"named.bpmn": model})
    assert r.status_code == 400, r.get_json()
    [problem] = r.get_json()["details"]["named.bpmn"]["errors"]
    assert problem["mainElementId"] == "Sig_PolicyChanged" and "an expression in a signal name" in \
        problem["message"], problem


@pytest.mark.parametrize("restored", [False, True], ids=["cached", "restored"])
def test_an_event_based_gateway_takes_the_signal_branch(client, engine, monkeypatch, system, restored):
    if restored:
        monkeypatch.setattr(engine.workflows, "size", 0)           # every command restores the case
    deploy(client, awaiting=gateway)
    case = client.start("awaiting")["id"]
    assert system.post(SIGNAL, json={"name": "PolicyChanged", "variables": typed(pages=2)}).status_code == 204
    [task] = client.tasks(processInstanceId=case)
    assert task["taskDefinitionKey"] == "T"
    assert variables_of(client, case) == {"pages": 2}
    assert client.complete(task["id"]).status_code == 204
    assert client.get(f"/engine-rest/history/process-instance/{case}").get_json()["state"] == "COMPLETED"


@pytest.mark.parametrize("variables, named", [
    ({"pages": {"value": "three", "type": "Integer"}}, "pages"),
    ({"when": {"value": "not a date", "type": "Date"}}, "when"),
    ({"spelled": {"value": {"typename": "datetime", "value": "2025-01-01"}, "type": "Json"}}, "spelled"),
])
def test_a_bad_variable_is_a_400_naming_it_and_changes_no_case(client, engine, system, variables, named):
    deploy(client, policy=waiting_for, announced=started_by_signal)
    cases = [client.start("policy")["id"] for _ in range(2)]
    before = subscribed(engine)
    r = system.post(SIGNAL, json={"name": "PolicyChanged", "variables": variables})
    assert r.status_code == 400, r.get_json()
    assert named in r.get_json()["message"], r.get_json()
    assert [at(client, c) for c in cases] == [["Catch"], ["Catch"]]
    assert [audit_kinds(client, c) for c in cases] == [["ProcessInstanceStarted"]] * 2
    assert client.get("/engine-rest/process-instance/count").get_json()["count"] == 2     # nothing started
    assert subscribed(engine) == before


def test_a_case_that_fails_to_take_the_signal_leaves_every_case_as_it_was(client, engine, system):
    """One transaction for the whole broadcast (Camunda's signalEventReceived is one
    command): the case whose gateway cannot compare "x" with 10 refuses the signal, and
    the case that took it before, in the lock order, is rolled back with it."""
    deploy(client, limited=lambda key: waiting_for(key, condition="limit > 10"), announced=started_by_signal)
    bad = client.start("limited", typed(limit="x"))["id"]
    good = client.start("limited", typed(limit=50))["id"]
    while good > bad:                          # one that takes the signal before `bad` in the lock order
        good = client.start("limited", typed(limit=50))["id"]
    later = client.start("limited", typed(limit=60))["id"]
    before = subscribed(engine)
    r = system.post(SIGNAL, json={"name": "PolicyChanged"})
    assert r.status_code == 400, r.get_json()
    message = r.get_json()["message"]
    assert f"process instance {bad}" in message and "was not delivered to any case" in message, message
    cases = [c["id"] for c in client.get("/engine-rest/process-instance").get_json()]
    assert {good, bad, later} <= set(cases)                      # and nothing started
    assert [at(client, c) for c in cases] == [["Catch"]] * len(cases)
    assert [audit_kinds(client, c) for c in cases] == [["ProcessInstanceStarted"]] * len(cases)
    assert subscribed(engine) == before


def test_a_signal_nobody_waits_for_is_204_and_changes_nothing(client, engine, system):
    deploy(client, other=lambda key: waiting_for(key, "FeesChanged"), policy=waiting_for)
    case = client.start("other")["id"]
    r = system.post(SIGNAL, json={"name": "PolicyChanged"})
    assert r.status_code == 204, r.get_json()
    assert at(client, case) == ["Catch"]
    assert audit_kinds(client, case) == ["ProcessInstanceStarted"]


@pytest.mark.parametrize("body, says", [
    ({}, "No signal name given"),
    ({"name": ""}, "No signal name given"),
    ({"name": None}, "No signal name given"),
    ({"name": "PolicyChangd"}, "no deployed process declares a signal named 'PolicyChangd'"),
    ({"name": "Sig_PolicyChanged"}, "no deployed process declares a signal named 'Sig_PolicyChanged'"),
])
def test_a_missing_or_unknown_signal_name_is_a_400_that_says_so(client, system, body, says):
    deploy(client, policy=waiting_for)
    case = client.start("policy")["id"]
    r = system.post(SIGNAL, json=body)
    assert r.status_code == 400, r.get_json()
    assert r.get_json()["type"] == "InvalidRequestException" and says in r.get_json()["message"], r.get_json()
    assert at(client, case) == ["Catch"]


def test_an_execution_id_delivers_to_that_catch_only_and_starts_nothing(client, system):
    deploy(client, policy=waiting_for, announced=started_by_signal, rereview=boundary)
    first, second = client.start("policy")["id"], client.start("policy")["id"]
    interrupted, kept = client.start("rereview")["id"], client.start("rereview")["id"]
    [review] = client.tasks(processInstanceId=interrupted)
    r = system.post(SIGNAL, json={"name": "PolicyChanged", "executionId": review["id"]})   # the activity's execution
    assert r.status_code == 204, r.get_json()
    assert (at(client, interrupted), at(client, kept)) == (["Rereview"], ["Review"])
    catch = client.get(f"/engine-rest/process-instance/{first}/activity-instances").get_json()
    [waiting] = catch["childActivityInstances"]
    r = system.post(SIGNAL, json={"name": "PolicyChanged", "executionId": waiting["id"]})
    assert r.status_code == 204, r.get_json()
    assert (at(client, first), at(client, second)) == (["T"], ["Catch"])
    assert system.post(SIGNAL, json={"name": "PolicyChanged", "executionId": second}).status_code == 204
    assert at(client, second) == ["T"]
    assert client.get("/engine-rest/process-instance/count").get_json()["count"] == 4     # nothing started

    r = system.post(SIGNAL, json={"name": "PolicyChanged", "executionId": second})
    assert r.status_code == 400 and "has not subscribed to a signal event with name 'PolicyChanged'" in \
        r.get_json()["message"], r.get_json()
    r = system.post(SIGNAL, json={"name": "PolicyChanged", "executionId": "no-such-execution"})
    assert r.status_code == 404 and "Cannot find execution with id 'no-such-execution'" in r.get_json()["message"]
    r = system.post(SIGNAL, json={"name": "PolicyChanged", "executionId": second, "tenantId": "sz"})
    assert r.status_code == 400 and "not possible to specify a tenant-id" in r.get_json()["message"]


def test_tenant_filters_choose_the_cases_of_a_tenant_or_of_none(client, system):
    deploy(client, policy=waiting_for)
    case = client.start("policy")["id"]
    assert system.post(SIGNAL, json={"name": "PolicyChanged", "tenantId": "sz"}).status_code == 204
    assert at(client, case) == ["Catch"]                           # the case has no tenant
    assert system.post(SIGNAL, json={"name": "PolicyChanged", "withoutTenantId": True}).status_code == 204
    assert at(client, case) == ["T"]


def test_the_subscriptions_follow_the_case_when_restored_ended_and_deleted(client, engine, monkeypatch, system):
    monkeypatch.setattr(engine.workflows, "size", 0)               # every command restores the case
    deploy(client, rereview=boundary, policy=waiting_for)
    ended, deleted = client.start("rereview")["id"], client.start("rereview")["id"]
    waiting = client.start("policy")["id"]
    signal = ("signal", "PolicyChanged")
    assert subscribed(engine) == sorted([(ended, "Changed", *signal), (deleted, "Changed", *signal),
                                         (waiting, "Catch", *signal)])
    [task] = client.tasks(processInstanceId=ended)
    assert client.complete(task["id"]).status_code == 204          # restored, completed: the case ends
    assert client.get(f"/engine-rest/history/process-instance/{ended}").get_json()["state"] == "COMPLETED"
    assert client.delete(f"/engine-rest/process-instance/{deleted}").status_code == 204
    assert subscribed(engine) == [(waiting, "Catch", *signal)]
    assert system.post(SIGNAL, json={"name": "PolicyChanged"}).status_code == 204
    assert at(client, waiting) == ["T"] and subscribed(engine) == []


def test_a_department_officer_may_not_send_a_signal_and_an_administrator_may(client, system):
    deploy(client, policy=waiting_for)
    case = client.start("policy")["id"]
    officer = client.create_user("window_clerk", ["window"])
    refused = officer.post(SIGNAL, json={"name": "PolicyChanged"})
    assert refused.status_code == 403 and refused.get_json()["type"] == "AuthorizationException"
    assert "may not throw signals" in refused.get_json()["message"]
    assert at(client, case) == ["Catch"]
    denied = client.get("/api/v1/audit/system-events", query_string={"outcome": "denied"}).get_json()
    assert any(e["actor"] == "window_clerk" for e in denied), denied
    assert client.post(SIGNAL, json={"name": "PolicyChanged"}).status_code == 204       # the administrator
    assert at(client, case) == ["T"]


def test_a_broadcast_and_a_message_to_several_cases_lock_them_in_the_order_of_their_ids(client, monkeypatch, system):
    """Two commands that lock the same cases in one order queue on PostgreSQL; in two
    orders they could deadlock.  Both open (lock) the cases by id, whatever order they
    were created or subscribed in."""
    from engine import runtime
    opened, open_instance = [], runtime.open_instance

    def recording(uow, instance_id, *args, **kwargs):
        opened.append(instance_id)
        return open_instance(uow, instance_id, *args, **kwargs)
    monkeypatch.setattr(runtime, "open_instance", recording)
    deploy(client, policy=waiting_for, awaiting=lambda key: waiting_for(key).replace(
        '<bpmn:signalEventDefinition id="SD" signalRef="Sig_PolicyChanged" />',
        '<bpmn:messageEventDefinition id="MD" messageRef="M" />') .replace(
        "</bpmn:definitions>", '  <bpmn:message id="M" name="MaterialsArrived" />\n</bpmn:definitions>'))
    signalled = [client.start("policy")["id"] for _ in range(6)]
    assert system.post(SIGNAL, json={"name": "PolicyChanged"}).status_code == 204
    assert opened == sorted(signalled)
    messaged = [client.start("awaiting")["id"] for _ in range(6)]
    opened.clear()
    assert system.post("/engine-rest/message", json={"messageName": "MaterialsArrived", "all": True}).status_code == 204
    assert opened == sorted(messaged)
