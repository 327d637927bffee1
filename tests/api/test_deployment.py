"""Deploying as Camunda Modeler does: validation with file/line/element, versions,
duplicate filtering, and a broken file deploying nothing."""
from __future__ import annotations

import time

import pytest

from tests.conftest import FIXTURES, ROOT, typed

QUICKSTART = ROOT / "examples" / "quickstart" / "parallel_review.bpmn"
FORMS = [ROOT / "forms" / "department_review.form", ROOT / "forms" / "application_intake.form"]

MINIMAL = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="D" targetNamespace="t">
  <bpmn:process id="{key}" name="{name}" isExecutable="true">
    <bpmn:startEvent id="S"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="T" name="审查" camunda:candidateGroups="fgw"><bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing></bpmn:userTask>
    <bpmn:exclusiveGateway id="G" default="F4"><bpmn:incoming>F2</bpmn:incoming><bpmn:outgoing>F3</bpmn:outgoing><bpmn:outgoing>F4</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="T" />
    <bpmn:sequenceFlow id="F2" sourceRef="T" targetRef="G" />
    <bpmn:sequenceFlow id="F3" sourceRef="G" targetRef="E"><bpmn:conditionExpression>{condition}</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="F4" sourceRef="G" targetRef="E" />
    <bpmn:endEvent id="E"><bpmn:incoming>F3</bpmn:incoming><bpmn:incoming>F4</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
"""


def minimal(key="simple", name="简单审批", condition="approved == True"):
    return MINIMAL.format(key=key, name=name, condition=condition)


def deployment_count(client):
    return client.get("/engine-rest/deployment/count").get_json()["count"]


def test_deploy_returns_the_deployed_definitions_in_camundas_shape(client):
    r = client.deploy(QUICKSTART, *FORMS, name="quickstart", deployment_source="Camunda Modeler")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["name"] == "quickstart" and body["source"] == "Camunda Modeler"
    [definition] = body["deployedProcessDefinitions"].values()
    assert definition["key"] == "quickstart_review" and definition["version"] == 1
    assert definition["id"].startswith("quickstart_review:1:")
    assert client.get(f"/engine-rest/deployment/{body['id']}").get_json()["id"] == body["id"]
    names = {r["name"] for r in client.get(f"/engine-rest/deployment/{body['id']}/resources").get_json()}
    assert names == {"parallel_review.bpmn", "department_review.form", "application_intake.form"}
    xml = client.get("/engine-rest/process-definition/key/quickstart_review/xml").get_json()
    assert xml["bpmn20Xml"].startswith("<?xml") and xml["id"] == definition["id"]


def test_a_changed_process_gets_version_2_and_running_cases_stay_on_version_1(client):
    client.deploy(extra={"simple.bpmn": minimal()})
    first = client.start("simple")
    client.deploy(extra={"simple.bpmn": minimal(name="简单审批 v2")})
    defs = client.get("/engine-rest/process-definition", query_string={"key": "simple"}).get_json()
    assert sorted(d["version"] for d in defs) == [1, 2]
    latest = client.get("/engine-rest/process-definition",
                        query_string={"key": "simple", "latestVersion": "true"}).get_json()
    assert [d["version"] for d in latest] == [2]
    second = client.start("simple")
    assert first["definitionId"].startswith("simple:1:") and second["definitionId"].startswith("simple:2:")
    [task] = client.tasks(processInstanceId=first["id"])
    assert client.complete(task["id"], typed(approved=True)).status_code == 204
    assert client.get(f"/engine-rest/history/process-instance/{first['id']}").get_json()["state"] == "COMPLETED"


def test_versions_are_counted_per_tenant_on_both_stores(client):
    """A tenant's deployments have versions of their own, beside the tenant-less ones
    (the lookup compares tenant ids NULL-safely; PostgreSQL refuses SQLite's `IS` with a value)."""
    for tenant, name in (("sz", "简单审批"), ("sz", "简单审批 v2"), (None, "简单审批")):
        extra = {"tenant_id": tenant} if tenant else {}
        deployed = client.deploy(extra={"simple.bpmn": minimal(name=name)}, name="lib", **extra)
        assert deployed.status_code == 200, deployed.get_json()
    again = client.deploy(extra={"simple.bpmn": minimal(name="简单审批 v2")}, name="lib", tenant_id="sz",
                          enable_duplicate_filtering=True)
    assert again.status_code == 200, again.get_json()
    defs = client.get("/engine-rest/process-definition", query_string={"key": "simple"}).get_json()
    assert sorted((d["tenantId"] or "", d["version"]) for d in defs) == [("", 1), ("sz", 1), ("sz", 2)]


def test_a_tenants_process_is_read_and_started_by_key_and_tenant_id(client):
    """Camunda 7's /process-definition/key/{key}/tenant-id/{tenantId}[/start|/xml|...]:
    /key/{key} alone is the version that belongs to no tenant."""
    only_tenant = client.deploy(extra={"simple.bpmn": minimal(name="苏州")}, name="lib", tenant_id="sz")
    assert only_tenant.status_code == 200, only_tenant.get_json()
    base = "/engine-rest/process-definition/key/simple"
    r = client.post(f"{base}/start", json={})
    assert r.status_code == 404 and "belongs to no tenant" in r.get_json()["message"], r.get_json()
    client.deploy(extra={"simple.bpmn": minimal(name="共用")}, name="lib")
    mine = client.get(f"{base}/tenant-id/sz").get_json()
    assert (mine["tenantId"], mine["name"]) == ("sz", "苏州"), mine
    assert client.get(base).get_json()["tenantId"] is None
    assert "苏州" in client.get(f"{base}/tenant-id/sz/xml").get_json()["bpmn20Xml"]
    assert client.get(f"{base}/tenant-id/sz/startForm").get_json()["key"] is None          # no start form
    assert client.get(f"{base}/tenant-id/sz/deployed-start-form").status_code == 404
    started = client.post(f"{base}/tenant-id/sz/start", json={"businessKey": "SZ-1"})
    assert started.status_code == 200, started.get_json()
    assert started.get_json()["definitionId"] == mine["id"] and started.get_json()["tenantId"] == "sz"
    shared = client.post(f"{base}/start", json={}).get_json()
    assert shared["definitionId"] != mine["id"] and shared["tenantId"] is None
    r = client.post(f"{base}/tenant-id/wx/start", json={})
    assert r.status_code == 404 and "tenant 'wx'" in r.get_json()["message"], r.get_json()
    assert client.get(f"{base}/tenant-id/wx").status_code == 404
    assert len(client.get("/engine-rest/process-instance", query_string={"processDefinitionKey": "simple"})
               .get_json()) == 2                                   # the refused start made nothing


def test_duplicate_filtering_skips_an_unchanged_deployment(client):
    first = client.deploy(extra={"simple.bpmn": minimal()}, name="lib", enable_duplicate_filtering=True).get_json()
    again = client.deploy(extra={"simple.bpmn": minimal()}, name="lib", enable_duplicate_filtering=True).get_json()
    assert again["id"] == first["id"]
    assert deployment_count(client) == 1
    assert [d["version"] for d in client.get("/engine-rest/process-definition").get_json()] == [1]
    changed = client.deploy(extra={"simple.bpmn": minimal(name="改")}, name="lib",
                            enable_duplicate_filtering=True).get_json()
    assert changed["id"] != first["id"]


def test_deploy_changed_only_redeploys_just_the_changed_file(client):
    files = {"a.bpmn": minimal("proc_a"), "b.bpmn": minimal("proc_b")}
    client.deploy(extra=files, name="lib", deploy_changed_only=True)
    r = client.deploy(extra={**files, "b.bpmn": minimal("proc_b", name="changed")}, name="lib",
                      deploy_changed_only=True).get_json()
    assert r["processDefinitionKeys"] == ["proc_b"]
    versions = {d["key"]: d["version"] for d in client.get("/engine-rest/process-definition",
                                                             query_string={"latestVersion": "true"}).get_json()}
    assert versions == {"proc_a": 1, "proc_b": 2}


def test_a_broken_file_deploys_nothing_and_says_file_line_and_element(client):
    broken = minimal("broken", condition="approved ==")
    r = client.deploy(extra={"good.bpmn": minimal("good"), "broken.bpmn": broken})
    assert r.status_code == 400
    body = r.get_json()
    assert body["type"] == "ParseException"
    [problem] = body["details"]["broken.bpmn"]["errors"]
    assert problem["mainElementId"] == "F3" and problem["line"] == 9
    assert "broken.bpmn" in body["message"]
    assert deployment_count(client) == 0
    assert client.get("/engine-rest/process-definition").get_json() == []


def test_xml_that_is_not_well_formed_is_refused_with_its_line(client):
    r = client.deploy(extra={"bad.bpmn": minimal().replace("</bpmn:process>", "")})
    assert r.status_code == 400
    [problem] = r.get_json()["details"]["bad.bpmn"]["errors"]
    assert "well-formed" in problem["message"] and problem["line"] > 0


def test_a_schema_violation_is_refused(client):
    r = client.deploy(extra={"bad.bpmn": minimal().replace("<bpmn:endEvent", "<bpmn:endEvnt").replace(
        "</bpmn:endEvent>", "</bpmn:endEvnt>")})
    assert r.status_code == 400
    assert "schema" in r.get_json()["details"]["bad.bpmn"]["errors"][0]["message"]


def test_dtds_and_entities_are_refused_before_parsing(client):
    laughs = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
              '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&lol2;</bpmn:definitions>')
    xxe = ('<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
           '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&x;</bpmn:definitions>')
    for body in (laughs, xxe):
        r = client.deploy(extra={"evil.bpmn": body})
        assert r.status_code == 400
        message = r.get_json()["details"]["evil.bpmn"]["errors"][0]["message"]
        assert "DTD" in message and "root:" not in r.get_data(as_text=True)


def test_a_form_reference_that_resolves_nowhere_is_refused(client):
    bpmn = minimal().replace('camunda:candidateGroups="fgw"', 'camunda:candidateGroups="fgw" camunda:formRef="nope"')
    r = client.deploy(extra={"simple.bpmn": bpmn})
    assert r.status_code == 400
    [problem] = r.get_json()["details"]["simple.bpmn"]["errors"]
    assert "nope" in problem["message"] and problem["mainElementId"] == "T"


def _bound_form(binding: str, version: str | None = None, on_start: bool = False) -> str:
    attributes = f'camunda:formRef="department_review" camunda:formRefBinding="{binding}"' + (
        f' camunda:formRefVersion="{version}"' if version else "")
    if on_start:
        return minimal().replace('<bpmn:startEvent id="S">', f'<bpmn:startEvent id="S" {attributes}>')
    return minimal().replace('camunda:candidateGroups="fgw"', f'camunda:candidateGroups="fgw" {attributes}')


@pytest.mark.parametrize("on_start", [False, True], ids=["user-task", "start-event"])
def test_a_form_version_that_does_not_exist_is_refused_unless_the_deployment_brings_it(client, on_start):
    """A formRefVersion of a version never deployed deployed, and every completion of the
    task was then a 404: the case was stuck."""
    form = FORMS[0]
    assert client.deploy(form).status_code == 200
    r = client.deploy(extra={"simple.bpmn": _bound_form("version", "9", on_start)})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["simple.bpmn"]["errors"]
    assert problem["mainElementId"] == ("S" if on_start else "T"), problem
    assert "version 9" in problem["message"] and "newest deployed is 1" in problem["message"], problem
    assert client.deploy(extra={"simple.bpmn": _bound_form("version", "2", on_start)}).status_code == 400
    with_form = client.deploy(form, extra={"simple.bpmn": _bound_form("version", "2", on_start)})
    assert with_form.status_code == 200, with_form.get_data(as_text=True)[:300]
    assert client.deploy(extra={"simple.bpmn": _bound_form("version", "1", on_start)}).status_code == 200
    assert deployment_count(client) == 3


def test_a_form_binding_camunda_does_not_know_is_refused_naming_the_ones_it_does(client):
    assert client.deploy(FORMS[0]).status_code == 200
    r = client.deploy(extra={"simple.bpmn": _bound_form("newest")})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["simple.bpmn"]["errors"]
    assert problem["mainElementId"] == "T" and "'newest'" in problem["message"], problem
    assert "latest, deployment, version" in problem["message"], problem


def test_a_call_to_an_undeployed_process_is_refused(client):
    r = client.deploy(FIXTURES / "call_parent.bpmn")
    assert r.status_code == 400
    assert "department_check" in r.get_json()["message"]


def test_java_listeners_and_non_external_service_tasks_are_refused_with_advice(client):
    bpmn = minimal().replace('<bpmn:userTask id="T" name="审查" camunda:candidateGroups="fgw">',
                             '<bpmn:userTask id="T" name="审查"><bpmn:extensionElements><camunda:taskListener '
                             'class="org.Foo" event="create" /></bpmn:extensionElements>')
    r = client.deploy(extra={"l.bpmn": bpmn})
    assert r.status_code == 400 and "taskListener" in r.get_json()["message"]
    service = minimal().replace('<bpmn:userTask id="T" name="审查" camunda:candidateGroups="fgw">',
                                '<bpmn:serviceTask id="T" camunda:class="org.Foo">').replace(
        "</bpmn:userTask>", "</bpmn:serviceTask>")
    r = client.deploy(extra={"s.bpmn": service})
    assert r.status_code == 400 and "external" in r.get_json()["message"]


def test_an_invalid_form_is_refused_and_nothing_is_deployed(client):
    r = client.deploy(extra={"bad.form": '{"type": "default", "id": "bad", "schemaVersion": 16, '
                                         '"components": [{"type": "no-such-thing", "key": "x"}]}',
                             "simple.bpmn": minimal()})
    assert r.status_code == 400
    assert "bad.form" in r.get_json()["details"]
    assert deployment_count(client) == 0


def test_only_designers_and_admins_may_deploy(client):
    clerk = client.create_user("clerk", ["window"])
    r = clerk.deploy(extra={"simple.bpmn": minimal()})
    assert r.status_code == 403
    designer = client.create_user("designer", ["designers"])
    assert designer.deploy(extra={"simple.bpmn": minimal()}).status_code == 200


def test_deleting_a_deployment_with_running_cases_needs_cascade(client):
    dep = client.deploy(extra={"simple.bpmn": minimal()}).get_json()
    client.start("simple")
    assert client.delete(f"/engine-rest/deployment/{dep['id']}").status_code == 400
    assert client.delete(f"/engine-rest/deployment/{dep['id']}", query_string={"cascade": "true"}).status_code == 204
    assert client.get(f"/engine-rest/deployment/{dep['id']}").status_code == 404
    assert client.get("/engine-rest/process-instance/count").get_json()["count"] == 0


def test_multi_instance_review_offers_one_task_per_department_from_a_collection(client):
    assert client.deploy(FIXTURES / "mi_review.bpmn").status_code == 200
    case = client.start("mi_review", typed(departments=["fgw", "zrzy", "zjj"]))
    tasks = client.tasks(processInstanceId=case["id"])
    assert sorted(t["candidateGroups"][0] for t in tasks) == ["fgw", "zjj", "zrzy"]
    assert all(t["priority"] == 70 and t["due"] for t in tasks)
    for task in tasks:
        assert client.complete(task["id"], typed(ok=True)).status_code == 204
    sequential = client.tasks(processInstanceId=case["id"])
    assert len(sequential) == 1 and sequential[0]["taskDefinitionKey"] == "Second"
    for _ in range(3):
        [task] = client.tasks(processInstanceId=case["id"])
        assert client.complete(task["id"]).status_code == 204
    assert client.get(f"/engine-rest/history/process-instance/{case['id']}").get_json()["state"] == "COMPLETED"


def _quorum(sequential: bool) -> str:
    """A joint review (联合审查) that moves on once two of its departments have approved."""
    from tests.security.models import HEAD
    return HEAD.format(key="quorum") + f"""
  <bpmn:process id="quorum" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Review" />
    <bpmn:userTask id="Review" name="联合审查" camunda:candidateGroups="${{dept}}">
      <bpmn:multiInstanceLoopCharacteristics isSequential="{str(sequential).lower()}"
          camunda:collection="departments" camunda:elementVariable="dept">
        <bpmn:completionCondition xsi:type="bpmn:tFormalExpression">${{nrOfCompletedInstances &gt;= 2 and nrOfInstances == 3 and nrOfActiveInstances == 1}}</bpmn:completionCondition>
      </bpmn:multiInstanceLoopCharacteristics>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="F2" sourceRef="Review" targetRef="Issue" />
    <bpmn:userTask id="Issue" name="出件" camunda:candidateGroups="window" />
    <bpmn:sequenceFlow id="F3" sourceRef="Issue" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>
"""


@pytest.mark.parametrize("sequential", [False, True])
def test_a_completion_condition_reads_camundas_instance_counters(client, sequential):
    """nrOfInstances, nrOfActiveInstances and nrOfCompletedInstances, as Camunda 7 gives
    them to the condition (a NameError at every completion before: the case was stuck)."""
    assert client.deploy(extra={"quorum.bpmn": _quorum(sequential)}).status_code == 200
    # a case variable of a counter's name does not hide the counter (Camunda 7: the body's own)
    case = client.start("quorum", typed(departments=["fgw", "zrzy", "zjj"], nrOfCompletedInstances=0))["id"]
    for round_ in range(2):
        tasks = [t for t in client.tasks(processInstanceId=case) if t["taskDefinitionKey"] == "Review"]
        assert len(tasks) == (1 if sequential else 3 - round_)
        r = client.complete(tasks[0]["id"])
        assert r.status_code == 204, r.get_json()
    assert [t["taskDefinitionKey"] for t in client.tasks(processInstanceId=case)] == ["Issue"]


def _with_event_subprocess(start: str) -> str:
    """T1 (fgw), beside an event subprocess whose start event is `start` (its inner XML)."""
    from tests.security.models import HEAD
    return HEAD.format(key="evsub") + f"""
  <bpmn:message id="M" name="Withdrawn" /><bpmn:signal id="Sig" name="halt" /><bpmn:error id="Err" errorCode="E1" />
  <bpmn:escalation id="Esc" escalationCode="late" />
  <bpmn:process id="evsub" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="T1" />
    <bpmn:userTask id="T1" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="F2" sourceRef="T1" targetRef="E" />
    <bpmn:endEvent id="E" />
    <bpmn:subProcess id="EvSub" triggeredByEvent="true">
      <bpmn:startEvent id="ES" {start}</bpmn:startEvent>
      <bpmn:sequenceFlow id="EF1" sourceRef="ES" targetRef="ET" />
      <bpmn:userTask id="ET" camunda:candidateGroups="fgw" />
      <bpmn:sequenceFlow id="EF2" sourceRef="ET" targetRef="EE" />
      <bpmn:endEvent id="EE" />
    </bpmn:subProcess>
  </bpmn:process>
</bpmn:definitions>
"""


TIMER = '<bpmn:timerEventDefinition><bpmn:timeDuration xsi:type="bpmn:tFormalExpression">PT1H</bpmn:timeDuration></bpmn:timerEventDefinition>'


@pytest.mark.parametrize("start", [
    f'>{TIMER}', '><bpmn:messageEventDefinition messageRef="M" />', '><bpmn:errorEventDefinition errorRef="Err" />',
    '><bpmn:signalEventDefinition signalRef="Sig" />', 'isInterrupting="false"><bpmn:messageEventDefinition messageRef="M" />',
    'isInterrupting="false"><bpmn:escalationEventDefinition escalationRef="Esc" />'])
def test_event_subprocesses_that_would_misbehave_are_refused_at_deploy(client, start):
    """SpiffWorkflow started an error or escalation event subprocess with the case (its
    task open before anything was raised), ran an interrupting timer's or signal's beside
    what it should interrupt, and never took a message."""
    r = client.deploy(extra={"evsub.bpmn": _with_event_subprocess(start)})
    assert r.status_code == 400, r.get_json()
    [problem] = r.get_json()["details"]["evsub.bpmn"]["errors"]
    assert problem["mainElementId"] == "EvSub" and "non-interrupting timer start event" in problem["message"]


def test_an_event_subprocess_on_a_non_interrupting_timer_runs_beside_the_case(client, engine):
    from datetime import timedelta

    from engine import scheduler
    from engine.clock import clock
    assert client.deploy(extra={"evsub.bpmn": _with_event_subprocess(f'isInterrupting="false">{TIMER}')}) \
        .status_code == 200
    case = client.start("evsub")["id"]
    assert [t["taskDefinitionKey"] for t in client.tasks(processInstanceId=case)] == ["T1"]
    clock.set(clock.now() + timedelta(hours=2))
    deadline = time.monotonic() + 10                     # the app's scheduler thread may fire it first
    while True:
        scheduler.fire_due(engine)
        tasks = {t["taskDefinitionKey"]: t["id"] for t in client.tasks(processInstanceId=case)}
        if "ET" in tasks or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert sorted(tasks) == ["ET", "T1"]                 # not interrupted: T1 stays
    for key in ("ET", "T1"):
        assert client.complete(tasks[key]).status_code == 204
    assert client.get(f"/engine-rest/history/process-instance/{case}").get_json()["state"] == "COMPLETED"


def test_a_case_ends_with_its_paths_while_its_event_subprocess_still_waits(client, engine):
    """Camunda 7 removes a waiting event subprocess with its scope; SpiffWorkflow's end
    waited for it, so the case stayed ACTIVE for ever (or until the timer fired)."""
    from datetime import timedelta

    from engine import scheduler
    from engine.clock import clock
    assert client.deploy(extra={"evsub.bpmn": _with_event_subprocess(f'isInterrupting="false">{TIMER}')}) \
        .status_code == 200
    case = client.start("evsub")["id"]
    [task] = client.tasks(processInstanceId=case)
    assert client.complete(task["id"]).status_code == 204
    assert client.get(f"/engine-rest/history/process-instance/{case}").get_json()["state"] == "COMPLETED"
    clock.set(clock.now() + timedelta(hours=2))                  # its timer is gone with the case
    assert scheduler.fire_due(engine) == 0 and client.tasks(processInstanceId=case) == []
    history = client.get("/engine-rest/history/activity-instance", query_string={"processInstanceId": case})
    assert sorted(a["activityId"] for a in history.get_json()) == ["E", "S", "T1"], history.get_json()
    assert client.get("/engine-rest/incident/count").get_json()["count"] == 0


def test_call_activity_runs_a_process_deployed_from_another_file(client):
    assert client.deploy(FIXTURES / "call_child.bpmn").status_code == 200
    assert client.deploy(FIXTURES / "call_parent.bpmn").status_code == 200
    case = client.start("stage_parent")
    [check] = client.tasks(processInstanceId=case["id"])
    assert check["taskDefinitionKey"] == "Check"
    assert client.complete(check["id"]).status_code == 204
    [issue] = client.tasks(processInstanceId=case["id"])
    assert issue["taskDefinitionKey"] == "Issue"


def test_a_long_process_key_deploys_with_a_plain_uuid_id_as_camunda_does(client):
    key = "construction_permit_stage_two_engineering_review"
    r = client.deploy(extra={"long.bpmn": minimal(key=key)})
    assert r.status_code == 200, r.get_json()
    [definition] = r.get_json()["deployedProcessDefinitions"].values()
    assert len(definition["id"]) <= 64 and ":" not in definition["id"]
    instance = client.start(key)
    assert instance["definitionId"] == definition["id"]


def _one_node(node: str) -> str:
    """start → `node` (id "N") → a user task → end, as the modeler writes it."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
                  id="D" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="one_node" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="N" />
    {node}
    <bpmn:sequenceFlow id="F2" sourceRef="N" targetRef="T" />
    <bpmn:userTask id="T" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="F3" sourceRef="T" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>
"""


@pytest.mark.parametrize("attributes", ['camunda:type="external" camunda:topic="rules"', "",
                                        'camunda:decisionRef="fees" camunda:resultVariable="fee"'])
def test_a_business_rule_task_is_refused_at_deploy_with_advice(client, attributes):
    """SpiffWorkflow's parser looked up camunda:decisionRef with a KeyError (a 500 at deploy)
    when it was missing, and there is no DMN engine to run one that is there."""
    r = client.deploy(extra={"rule.bpmn": _one_node(f'<bpmn:businessRuleTask id="N" {attributes} />')})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["rule.bpmn"]["errors"]
    assert problem["mainElementId"] == "N" and problem["line"] == 7, problem
    assert "rule step" in problem["message"], problem
    assert client.get("/engine-rest/process-definition/count").get_json()["count"] == 0


def test_an_ad_hoc_subprocess_is_refused_at_deploy(client):
    """It deployed, and every case failed with a 500 at its start (SpiffWorkflow evaluated
    the missing completion condition)."""
    adhoc = ('<bpmn:adHocSubProcess id="N"><bpmn:userTask id="A" camunda:candidateGroups="fgw" />'
             '<bpmn:userTask id="B" camunda:candidateGroups="zrzy" /></bpmn:adHocSubProcess>')
    r = client.deploy(extra={"adhoc.bpmn": _one_node(adhoc)})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["adhoc.bpmn"]["errors"]
    assert problem["mainElementId"] == "N" and "ad-hoc" in problem["message"], problem


def test_link_events_are_refused_at_deploy(client):
    """A case that reached the link throw event ended up waiting for nothing, forever: no
    task, no timer, an empty activity tree, ACTIVE."""
    link = """<bpmn:intermediateThrowEvent id="N"><bpmn:linkEventDefinition id="L1" name="续" /></bpmn:intermediateThrowEvent>
    <bpmn:intermediateCatchEvent id="C"><bpmn:linkEventDefinition id="L2" name="续" /></bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="F4" sourceRef="C" targetRef="T" />"""
    r = client.deploy(extra={"link.bpmn": _one_node(link).replace('<bpmn:sequenceFlow id="F2" sourceRef="N" targetRef="T" />', "")})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    problems = r.get_json()["details"]["link.bpmn"]["errors"]
    assert sorted(p["mainElementId"] for p in problems) == ["C", "N"], problems
    assert all("sequence flow" in p["message"] for p in problems), problems


def test_compensation_is_refused_at_deploy(client):
    """SpiffWorkflow 3.2 read a compensation throw event as a none event (the model deployed,
    and a case passed the event without running any handler), and its boundary parser
    raised NotImplementedError on a compensation boundary event."""
    throw = '<bpmn:intermediateThrowEvent id="N"><bpmn:compensateEventDefinition id="CD" /></bpmn:intermediateThrowEvent>'
    handled = ('<bpmn:serviceTask id="N" camunda:type="external" camunda:topic="pay" />'
               '<bpmn:boundaryEvent id="B" attachedToRef="N"><bpmn:compensateEventDefinition id="CD" />'
               '</bpmn:boundaryEvent><bpmn:serviceTask id="Undo" isForCompensation="true" camunda:type="external" '
               'camunda:topic="refund" />')
    handled = _one_node(handled).replace(
        "</bpmn:process>", '<bpmn:association id="A" associationDirection="One" sourceRef="B" targetRef="Undo" />'
                           "</bpmn:process>")
    r = client.deploy(extra={"throw.bpmn": _one_node(throw), "handled.bpmn": handled})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    details = r.get_json()["details"]
    assert [p["mainElementId"] for p in details["throw.bpmn"]["errors"]] == ["N"]
    assert sorted(p["mainElementId"] for p in details["handled.bpmn"]["errors"]) == ["B", "Undo"]
    assert all("compensation" in p["message"] and "not supported" in p["message"]
               for f in details.values() for p in f["errors"])
    assert client.get("/engine-rest/process-definition/count").get_json()["count"] == 0


@pytest.mark.parametrize("node", [
    '<bpmn:intermediateCatchEvent id="N"><bpmn:messageEventDefinition id="MD" /></bpmn:intermediateCatchEvent>',
    '<bpmn:receiveTask id="N" />'], ids=["catch-event", "receive-task"])
def test_a_message_catch_without_a_message_is_refused_at_deploy(client, node):
    """The modeler draws a message event without a message until one is picked.  It deployed;
    then every case of it was refused at its start with a 409 ("a concurrent change") for
    the subscription it could not file, and a receive task without one did not wait at all."""
    r = client.deploy(extra={"nomessage.bpmn": _one_node(node)})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["nomessage.bpmn"]["errors"]
    assert problem["mainElementId"] == "N" and "names no message" in problem["message"], problem


def test_two_none_start_events_are_refused_at_deploy(client):
    """Camunda 7 refuses them; here the case took the first one's path and silently never
    the second's."""
    second = """<bpmn:startEvent id="S2" /><bpmn:sequenceFlow id="F5" sourceRef="S2" targetRef="N" />
    <bpmn:userTask id="N" camunda:candidateGroups="zrzy" />"""
    r = client.deploy(extra={"two.bpmn": _one_node(second)})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["two.bpmn"]["errors"]
    assert problem["mainElementId"] == "S2" and "more than one none start event" in problem["message"], problem


def test_a_task_name_with_expressions_is_evaluated_for_each_case_and_a_broken_one_refused_at_deploy(client):
    """Camunda 7 evaluates a user task's name: a hall's list tells its cases apart by it.
    The name was shown as written (`审查：${applicantName}`)."""
    from tests.security.models import one_task
    named = one_task("named").replace('name="审查"', 'name="审查：${applicantName}（${amount * 2} 元）"')
    assert client.deploy(extra={"named.bpmn": named}).status_code == 200
    first = client.start("named", typed(applicantName="苏州甲公司", amount=50))["id"]
    client.start("named", typed(applicantName="苏州乙公司", amount=1))
    [task] = client.tasks(processInstanceId=first)
    assert task["name"] == "审查：苏州甲公司（100 元）"
    assert sorted(t["name"] for t in client.tasks(processDefinitionKey="named")) == [
        "审查：苏州乙公司（2 元）", "审查：苏州甲公司（100 元）"]
    r = client.post("/engine-rest/process-definition/key/named/start", json={"variables": {}})
    assert r.status_code == 400 and "applicantName" in r.get_json()["message"], r.get_json()
    broken = one_task("broken").replace('name="审查"', 'name="审查：${applicantName +}"')
    r = client.deploy(extra={"broken.bpmn": broken})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["broken.bpmn"]["errors"]
    assert problem["mainElementId"] == "T" and "task name" in problem["message"], problem


def test_an_evaluated_task_name_is_cut_at_the_255_characters_a_task_row_holds(client):
    """A long variable in a name raised a DataError on PostgreSQL when the task opened."""
    from tests.security.models import one_task
    named = one_task("long_named").replace('name="审查"', 'name="审查：${summary}"')
    assert client.deploy(extra={"long_named.bpmn": named}).status_code == 200
    case = client.start("long_named", typed(summary="项目概况" * 100))["id"]
    [task] = client.tasks(processInstanceId=case)
    assert task["name"] == ("审查：" + "项目概况" * 100)[:255]


@pytest.mark.parametrize("tag,label", [("exclusiveGateway", "Exclusive Gateway"), ("parallelGateway", "Parallel Gateway"),
                                       ("inclusiveGateway", "Inclusive Gateway"),
                                       ("eventBasedGateway", "Event-based Gateway")])
def test_a_gateway_without_an_outgoing_flow_is_refused_at_deploy(client, tag, label):
    """It deployed, and a case reaching it failed with a 400 naming no element ("At least
    one output required"); Camunda 7 refuses it at deploy."""
    dead_end = _one_node(f'<bpmn:{tag} id="N" />').replace(
        '<bpmn:sequenceFlow id="F2" sourceRef="N" targetRef="T" />', "")
    r = client.deploy(extra={"dead_end.bpmn": dead_end})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["dead_end.bpmn"]["errors"]
    assert problem["mainElementId"] == "N" and problem["line"] == 7, problem
    assert f"{label} 'N' has no outgoing sequence flow" in problem["message"], problem
    # a task without one ends its path, as in BPMN and Camunda 7
    implicit_end = _one_node('<bpmn:task id="N" />').replace('<bpmn:sequenceFlow id="F3" sourceRef="T" targetRef="E" />', "")
    assert client.deploy(extra={"implicit_end.bpmn": implicit_end}).status_code == 200


def test_text_with_an_expression_inside_is_evaluated_as_camunda_does(client):
    """`dept_${region}` was taken literally: the task was offered to a group named
    `dept_${region}`, which nobody is in."""
    from tests.security.models import one_task
    mixed = one_task("mixed", task_attrs='camunda:candidateGroups="dept_${region}, ${region}_leaders" '
                                        'camunda:priority="${level}0"')
    assert client.deploy(extra={"mixed.bpmn": mixed}).status_code == 200
    case = client.start("mixed", typed(region="sz", level=7))["id"]
    [task] = client.tasks(processInstanceId=case)
    assert task["priority"] == 70
    assert task["candidateGroups"] == ["dept_sz", "sz_leaders"]
    assert [t["id"] for t in client.tasks(candidateGroup="dept_sz")] == [task["id"]]


@pytest.mark.parametrize("attribute,what", [('camunda:candidateGroups="${dept"', "camunda:candidateGroups"),
                                            ('camunda:candidateGroups="dept_${region" ', "camunda:candidateGroups"),
                                            ('camunda:assignee="${a} and ${b"', "camunda:assignee"),
                                            ('camunda:candidateGroups="fgw" name="Review ${applicant"', "task name")])
def test_an_unclosed_expression_is_refused_at_deploy(client, attribute, what):
    """It was taken as plain text: the task was offered to a group `${dept` nobody is in."""
    from tests.security.models import one_task
    unclosed = one_task("unclosed", task_attrs=attribute).replace('name="审查" ', "", 1 if "name=" in attribute else 0)
    r = client.deploy(extra={"unclosed.bpmn": unclosed})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["unclosed.bpmn"]["errors"]
    assert problem["mainElementId"] == "T" and what in problem["message"], problem
    assert "never closed" in problem["message"], problem


def test_a_broken_expression_inside_text_is_refused_at_deploy(client):
    from tests.security.models import one_task
    r = client.deploy(extra={"broken.bpmn": one_task("broken", task_attrs='camunda:candidateGroups="dept_${region +}"')})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["broken.bpmn"]["errors"]
    assert problem["mainElementId"] == "T" and "camunda:candidateGroups 'dept_${region +}'" in problem["message"], problem


def test_text_with_two_expressions_is_each_value_put_in_as_camunda_does(client):
    """`${a}-${b}` was read as one expression `a}-${b` and refused at deploy (syntax error)."""
    from tests.security.models import one_task
    two = one_task("two_values", task_attrs='camunda:candidateGroups="${bureau}-${region}, #{bureau}" '
                                           'camunda:assignee="${bureau}${seq}" '
                                           'camunda:dueDate="${day}T${hour}:00:00+08:00" '
                                           'camunda:priority=" ${level} "').replace(
        'name="审查"', 'name="${region}：${ {\'fgw\': \'发改委\'}[bureau]}审查"')
    r = client.deploy(extra={"two_values.bpmn": two})
    assert r.status_code == 200, r.get_data(as_text=True)[:400]
    case = client.start("two_values", typed(bureau="fgw", region="sz", seq=7, day="2026-03-02", hour=17,
                                            level=70))["id"]
    [task] = client.tasks(processInstanceId=case)
    assert sorted(task["candidateGroups"]) == ["fgw", "fgw-sz"] and task["assignee"] == "fgw7"
    assert task["name"] == "sz：发改委审查"
    assert task["due"].startswith("2026-03-02T17:00:00.000") and task["priority"] == 70


@pytest.mark.parametrize("attribute", ['camunda:candidateGroups="${a}-${b"', 'camunda:assignee="${a}-${b}-${"',
                                       'camunda:candidateGroups="${x == \'}\'"'])
def test_an_unclosed_expression_after_a_closed_one_is_refused_at_deploy(client, attribute):
    from tests.security.models import one_task
    r = client.deploy(extra={"unclosed2.bpmn": one_task("unclosed2", task_attrs=attribute)})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["unclosed2.bpmn"]["errors"]
    assert problem["mainElementId"] == "T" and "never closed" in problem["message"], problem


def _started_by_message(key: str, message: str, name: str = "") -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
                  id="D" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:message id="M" name="{message}" />
  <bpmn:process id="{key}" name="{name}" isExecutable="true">
    <bpmn:startEvent id="S"><bpmn:messageEventDefinition id="MD" messageRef="M" /></bpmn:startEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="T" />
    <bpmn:userTask id="T" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="F2" sourceRef="T" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_a_second_process_starting_on_the_same_message_is_refused_at_deploy(client):
    """Both deployed, and then POST /message was a 400 ("more than one process definition
    starts with it"); Camunda 7 refuses the second deployment."""
    assert client.deploy(extra={"bank_a.bpmn": _started_by_message("bank_a", "account.opened")}).status_code == 200
    r = client.deploy(extra={"bank_b.bpmn": _started_by_message("bank_b", "account.opened")})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["bank_b.bpmn"]["errors"]
    assert problem["mainElementId"] == "S" and problem["line"] == 6, problem
    assert all(word in problem["message"] for word in ("'account.opened'", "'bank_b'", "'bank_a' (deployed)")), problem
    together = client.deploy(extra={"c.bpmn": _started_by_message("bank_c", "account.closed"),
                                    "d.bpmn": _started_by_message("bank_d", "account.closed")})
    assert together.status_code == 400, together.get_data(as_text=True)[:300]
    [problem] = together.get_json()["details"]["d.bpmn"]["errors"]
    assert "'bank_c' (in this deployment)" in problem["message"], problem
    # a new version of the same key replaces the old one's message start event
    again = client.deploy(extra={"bank_a.bpmn": _started_by_message("bank_a", "account.opened", name="v2")})
    assert again.status_code == 200, again.get_data(as_text=True)[:300]
    started = client.post("/engine-rest/message", json={"messageName": "account.opened", "resultEnabled": True})
    assert started.status_code == 200, started.get_json()
    assert started.get_json()[0]["processInstance"]["definitionId"].startswith("bank_a:2:")


def test_a_data_store_is_documentation_as_in_camunda(client):
    """SpiffWorkflow wants an implementation of every data store; the diagram was refused with
    "Cannot resolve dataOutputAssociation <Element {…}targetRef at 0x7f91b5822900>"."""
    from tests.security.models import one_task
    associations = ('<bpmn:property id="P" name="__targetRef_placeholder" /><bpmn:dataInputAssociation id="DI">'
                    '<bpmn:sourceRef>Store</bpmn:sourceRef><bpmn:targetRef>P</bpmn:targetRef></bpmn:dataInputAssociation>'
                    '<bpmn:dataOutputAssociation id="DO"><bpmn:targetRef>Store</bpmn:targetRef></bpmn:dataOutputAssociation>')
    stored = one_task("stored", inner=associations, after='<bpmn:sequenceFlow id="F2" sourceRef="T" targetRef="E" />'
                      '<bpmn:dataStoreReference id="Store" name="登记簿" />')
    r = client.deploy(extra={"stored.bpmn": stored})
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    case = client.start("stored")["id"]
    [task] = client.tasks(processInstanceId=case)
    assert client.complete(task["id"], typed(approved=True)).status_code == 204
    assert client.get(f"/engine-rest/history/process-instance/{case}").get_json()["state"] == "COMPLETED"
    astray = stored.replace("<bpmn:targetRef>Store</bpmn:targetRef>", "<bpmn:targetRef>E</bpmn:targetRef>")
    r = client.deploy(extra={"astray.bpmn": astray.replace('id="stored"', 'id="astray"')})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["astray.bpmn"]["errors"]
    assert problem["mainElementId"] == "T" and "targetRef 'E'" in problem["message"], problem
    assert " at 0x" not in problem["message"], problem


def test_juel_operators_in_a_condition_are_refused_with_their_python_spelling(client):
    """The 400 said only "invalid syntax"."""
    r = client.deploy(extra={"juel.bpmn": minimal("juel", condition="${approved &amp;&amp; !late || amount gt 100}")})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["juel.bpmn"]["errors"]
    assert problem["mainElementId"] == "F3", problem
    assert "not JUEL: write `and` for `&&`, `or` for `||`, `not` for `!`, `>` for `gt`" in problem["message"], problem


@pytest.mark.parametrize("juel, python", [
    ("${execution.getVariable('who') == 'li'}", "`variable('name', default)` for `execution.getVariable('name')`"),
    ("${execution.processBusinessKey != null}", "`business_key()` for `execution.processBusinessKey`"),
    ("${execution.activityId == 'T'}", "`business_key()`"),
    ('${status.equals("ok")}', "`a == b` for `a.equals(b)`"),
    ("${items.size() &gt; 0}", "`len(x)` for `x.size()`"),
    ("${approved ? amount &gt; 100 : false}", "`b if a else c` for `a ? b : c`"),
])
def test_camunda_idioms_that_python_would_run_and_fail_are_refused_with_the_python_spelling(client, juel, python):
    """They deployed (or were refused without a hint) and every case failed on them with a
    NameError 'execution' or an AttributeError."""
    r = client.deploy(extra={"juel.bpmn": minimal("juel", condition=juel)})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["juel.bpmn"]["errors"]
    assert problem["mainElementId"] == "F3" and problem["line"] == 9, problem
    assert "not JUEL: write " in problem["message"] and python in problem["message"], problem


def test_camunda_idioms_in_an_attribute_and_a_task_name_are_refused_naming_the_task(client):
    bpmn = minimal().replace('camunda:candidateGroups="fgw"', 'camunda:assignee="${execution.getVariable(\'who\')}"')
    bpmn = bpmn.replace('name="审查"', 'name="审查 ${execution.processBusinessKey}"')
    r = client.deploy(extra={"idioms.bpmn": bpmn})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    problems = r.get_json()["details"]["idioms.bpmn"]["errors"]
    assert {p["mainElementId"] for p in problems} == {"T"} and len(problems) == 2, problems
    assert any("camunda:assignee" in p["message"] and "variable('name', default)" in p["message"] for p in problems)
    assert any("task name" in p["message"] and "business_key()" in p["message"] for p in problems)


def test_a_dict_variable_named_execution_may_still_use_dict_methods(client):
    assert client.deploy(extra={"ok.bpmn": minimal("ok", condition="${execution.get('x') == 1}")}).status_code == 200


@pytest.mark.parametrize("listener, said", [
    ('<camunda:executionListener event="start"><camunda:script scriptFormat="groovy">execution.setVariable("a", 1)'
     '</camunda:script></camunda:executionListener>', "a script listener (groovy)"),
    ('<camunda:taskListener event="create"><camunda:script scriptFormat="javascript">task.setVariable("x", 1);'
     '</camunda:script></camunda:taskListener>', "a script listener (javascript)"),
    ('<camunda:executionListener event="end" expression="${execution.setVariable(\'done\', true)}" />',
     "an expression listener"),
    ('<camunda:taskListener event="create" class="org.Foo" />', "Java code"),
    ('<camunda:executionListener event="start" delegateExpression="${auditor}" />', "Java code"),
])
def test_a_listener_is_refused_saying_what_kind_it_is(client, listener, said):
    """A script listener was refused because "execution listeners run Java code"."""
    bpmn = minimal().replace('<bpmn:userTask id="T" name="审查" camunda:candidateGroups="fgw">',
                             '<bpmn:userTask id="T" name="审查" camunda:candidateGroups="fgw"><bpmn:extensionElements>'
                             f'{listener}</bpmn:extensionElements>')
    r = client.deploy(extra={"l.bpmn": bpmn})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["l.bpmn"]["errors"]
    assert problem["mainElementId"] == "T" and said in problem["message"], problem
    if "Java" not in said:
        assert "Java" not in problem["message"], problem
    assert "rule step" in problem["message"] or "external service task" in problem["message"], problem


def _timer_start(cycle: str) -> str:
    return _one_node('<bpmn:task id="N" />').replace(
        '<bpmn:startEvent id="S" />', f'<bpmn:startEvent id="S"><bpmn:timerEventDefinition id="TD"><bpmn:timeCycle>{cycle}'
                                      '</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:startEvent>')


def test_a_cron_cycle_is_refused_with_the_iso_8601_spelling(client):
    """Camunda 7 takes cron; the 400 here said "syntax error: invalid syntax (at line 1, column 3 …)"."""
    r = client.deploy(extra={"cron.bpmn": _timer_start("0 0 9 * * ?")})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["cron.bpmn"]["errors"]
    assert problem["mainElementId"] == "TD" and "cron expressions are not supported" in problem["message"], problem
    advised = "R/2026-01-01T09:00+08:00/P1D"
    assert advised in problem["message"]
    assert client.deploy(extra={"iso.bpmn": _timer_start(advised)}).status_code == 200


def test_a_negative_timer_duration_is_refused_at_deploy(client):
    """`-PT1H` deployed and waited one hour."""
    wait = '<bpmn:intermediateCatchEvent id="N"><bpmn:timerEventDefinition id="TD"><bpmn:timeDuration>{}' \
           '</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>'
    r = client.deploy(extra={"negative.bpmn": _one_node(wait.format("-PT1H"))})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["negative.bpmn"]["errors"]
    assert problem["mainElementId"] == "TD" and "'-PT1H' is negative" in problem["message"], problem
    assert client.deploy(extra={"positive.bpmn": _one_node(wait.format("PT1H"))}).status_code == 200


def test_a_form_that_is_not_json_is_refused_with_its_line_and_column_once(client):
    """`details[].line` and `column` were 0 while the message said "line 1, column 52", and
    the message named the file twice ("f_bad.form: f_bad.form: …")."""
    r = client.deploy(extra={"f_bad.form": '{"components": [ {"type": "textfield", "key": "a", } ], "id": "badjson"'})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["f_bad.form"]["errors"]
    assert (problem["line"], problem["column"]) == (1, 52), problem
    assert problem["message"].startswith("line 1, column 52: not valid JSON"), problem
    assert r.get_json()["message"].count("f_bad.form") == 1, r.get_json()["message"]


def test_a_duplicate_id_is_refused_as_a_duplicate_on_its_line(client):
    """libxml2 said "'F1' is not a valid value of the atomic type 'xs:ID'", on the line before."""
    twice = minimal("twice").replace('<bpmn:endEvent id="E">', '<bpmn:endEvent id="F1">').replace(
        'targetRef="E"', 'targetRef="F1"')
    r = client.deploy(extra={"twice.bpmn": twice})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = [p for p in r.get_json()["details"]["twice.bpmn"]["errors"] if "F1" in p["message"]]
    assert problem["message"].startswith("duplicate id 'F1': 2 elements have it (lines 7, 11)"), problem
    assert problem["line"] == 11 and problem["mainElementId"] == "F1", problem


@pytest.mark.parametrize("priority, variables", [("${prio}", {"prio": 2**31}), ("${prio}", {"prio": -2**31 - 1})])
def test_a_priority_beyond_camundas_int_is_a_400_naming_the_task_and_the_priority(client, priority, variables):
    """It was a 400 blaming the request ('a number beyond 64 bits or text containing a NUL
    character'), or on PostgreSQL's integer column a 2**31; the diagram or the variable is at fault."""
    from tests.security.models import one_task
    assert client.deploy(extra={"prio.bpmn": one_task("prio", f'camunda:candidateGroups="fgw" '
                                                              f'camunda:priority="{priority}"')}).status_code == 200
    r = client.post("/engine-rest/process-definition/key/prio/start", json={"variables": typed(**variables)})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    body = r.get_json()
    assert body["activityId"] == "T" and "T: camunda:priority" in body["message"], body
    assert "out of range" in body["message"] and "2147483647" in body["message"], body
    assert client.get("/engine-rest/process-instance/count").get_json()["count"] == 0


@pytest.mark.parametrize("priority", ["999999999999999999999999999999", "abc", "2147483648", "1.5"])
def test_a_literal_priority_that_is_no_int_is_refused_at_deploy(client, priority):
    """It deployed and failed every case at the task."""
    from tests.security.models import one_task
    r = client.deploy(extra={"prio.bpmn": one_task("prio", f'camunda:candidateGroups="fgw" '
                                                           f'camunda:priority="{priority}"')})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    assert f"camunda:priority '{priority}' is not a whole number" in r.get_json()["message"], r.get_json()
    assert "prio.bpmn" in r.get_json()["message"] and "2147483647" in r.get_json()["message"]


def test_a_priority_at_the_ends_of_camundas_int_is_the_tasks(client):
    from tests.security.models import one_task
    assert client.deploy(extra={"prio.bpmn": one_task("prio", 'camunda:candidateGroups="fgw" '
                                                              'camunda:priority="${prio}"')}).status_code == 200
    for prio in (2**31 - 1, -2**31):
        case = client.start("prio", typed(prio=prio))["id"]
        [task] = client.tasks(processInstanceId=case)
        assert task["priority"] == prio

def test_a_process_without_an_id_is_refused_naming_the_file_and_line(client):
    """The modeler's XML allows it (the id of a BPMN element is optional in the schema); the
    database then refused the definition row's empty key, which answered 409 'a concurrent
    change; retry', and no retry ever passed."""
    r = client.deploy(extra={"noid.bpmn": minimal().replace('id="simple" ', "")})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["noid.bpmn"]["errors"]
    assert problem["line"] == 3 and "a process needs an id" in problem["message"], problem
    assert "noid.bpmn:3: a process needs an id" in r.get_json()["message"]
    assert deployment_count(client) == 0


def test_a_value_the_database_refuses_is_not_reported_as_a_race_to_retry(client, monkeypatch):
    """A NOT NULL constraint is the same on every retry: an unchecked value, not a conflict.
    Without the deploy's check, a process without an id reaches the database as it used to."""
    from engine import deployments
    monkeypatch.setattr(deployments, "_nameless", lambda name, root: [])
    r = client.deploy(extra={"noid.bpmn": minimal().replace('id="simple" ', "")})
    assert r.status_code == 500, r.get_data(as_text=True)[:300]
    body = r.get_json()
    assert body["type"] == "ProcessEngineException" and "a retry will fail the same way" in body["message"], body
    assert deployment_count(client) == 0


NAMELESS_PROPERTY = ('<bpmn:userTask id="T" name="审查" camunda:candidateGroups="fgw"><bpmn:extensionElements>'
                     '<camunda:properties><camunda:property value="x" /></camunda:properties>'
                     '</bpmn:extensionElements>')


def test_a_camunda_property_without_a_name_is_refused_naming_its_element(client):
    """The modeler adds an extension property with empty fields; it deployed, and every start of
    the process was a 500 (the legal clock's hooks read each property's name)."""
    nameless = minimal().replace('<bpmn:userTask id="T" name="审查" camunda:candidateGroups="fgw">', NAMELESS_PROPERTY)
    r = client.deploy(extra={"nameless.bpmn": nameless})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["nameless.bpmn"]["errors"]
    assert problem["mainElementId"] == "T" and "camunda:property needs a name" in problem["message"], problem
    assert deployment_count(client) == 0


def test_a_process_deployed_with_a_nameless_property_before_it_was_refused_still_starts(client, monkeypatch):
    from engine import deployments
    nameless = minimal().replace('<bpmn:userTask id="T" name="审查" camunda:candidateGroups="fgw">', NAMELESS_PROPERTY)
    with monkeypatch.context() as m:                    # deployed by a version that did not check it
        m.setattr(deployments, "_nameless", lambda name, root: [])
        assert client.deploy(extra={"nameless.bpmn": nameless}).status_code == 200
    r = client.post("/engine-rest/process-definition/key/simple/start", json={})
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    assert [t["taskDefinitionKey"] for t in client.tasks(processInstanceId=r.get_json()["id"])] == ["T"]


def test_a_chain_too_long_for_spiffworkflow_is_refused_saying_so(client):
    """It was refused with "RecursionError('maximum recursion depth exceeded …')"."""
    from tests.security.models import HEAD
    steps = "".join(f'<bpmn:task id="U{i}" /><bpmn:sequenceFlow id="F{i}" sourceRef="U{i}" targetRef="U{i + 1}" />'
                    for i in range(600))
    chain = HEAD.format(key="chain") + f"""<bpmn:process id="chain" isExecutable="true">
    <bpmn:startEvent id="S" /><bpmn:sequenceFlow id="F_first" sourceRef="S" targetRef="U0" />
    {steps}<bpmn:task id="U600" /><bpmn:sequenceFlow id="F_last" sourceRef="U600" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>"""
    r = client.deploy(extra={"chain.bpmn": chain})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    assert "too long a chain to run" in r.get_json()["message"] and "RecursionError" not in r.get_json()["message"]


def test_one_resource_is_read_with_its_metadata_and_its_bytes_as_deployed(client):
    """Camunda 7's GET /deployment/{id}/resources/{resourceId}[/data]: the modeler and
    Cockpit download a deployed file; a .bpmn is application/xml, anything else bytes."""
    deployed = client.deploy(QUICKSTART, *FORMS, name="quickstart").get_json()
    base = f"/engine-rest/deployment/{deployed['id']}/resources"
    by_name = {r["name"]: r for r in client.get(base).get_json()}
    reader = client.create_user("clerk")                     # any signed-in user, as the list
    for path, media_type in ((QUICKSTART, "application/xml"), (FORMS[0], "application/octet-stream")):
        listed = by_name[path.name]
        one = reader.get(f"{base}/{listed['id']}")
        assert one.status_code == 200, one.get_json()
        assert one.get_json() == {"id": listed["id"], "name": path.name, "deploymentId": deployed["id"]}
        data = reader.get(f"{base}/{listed['id']}/data")
        assert data.status_code == 200 and data.mimetype == media_type
        assert data.data == path.read_bytes()
    anonymous = client.http.get(f"{base}/{by_name[QUICKSTART.name]['id']}/data")
    assert anonymous.status_code == 401


def test_a_resource_of_another_or_an_unknown_deployment_is_a_404(client):
    first = client.deploy(extra={"a.bpmn": minimal("proc_a")}, name="a").get_json()
    second = client.deploy(extra={"b.bpmn": minimal("proc_b")}, name="b").get_json()
    [other] = client.get(f"/engine-rest/deployment/{second['id']}/resources").get_json()
    for deployment_id, resource_id in ((first["id"], other["id"]), (first["id"], "nope"), ("nope", other["id"])):
        for suffix in ("", "/data"):
            r = client.get(f"/engine-rest/deployment/{deployment_id}/resources/{resource_id}{suffix}")
            assert r.status_code == 404, (deployment_id, resource_id, suffix)
            assert r.get_json()["message"] == (f"Deployment resource with resource id '{resource_id}' "
                                               f"for deployment id '{deployment_id}' does not exist")
