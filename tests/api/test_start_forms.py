"""Starting a case as Camunda Tasklist does (POST /process-definition/.../submit-form), and
Camunda 7's older reference to a deployed form, camunda:formKey="camunda-forms:deployment:NAME",
shown and enforced as camunda:formRef is."""
from __future__ import annotations

import pytest

from tests.conftest import ROOT, typed

QUICKSTART = ROOT / "examples" / "quickstart" / "parallel_review.bpmn"
FORMS = [ROOT / "forms" / "department_review.form", ROOT / "forms" / "application_intake.form"]
APPLICATION = {"applicantName": "苏州某某科技有限公司", "creditCode": "91320500MA1XXXXX0X"}

ORDER_FORM = """{
  "components": [
    {"label": "Amount", "type": "number", "id": "Field_amt", "key": "amount", "validate": {"required": true, "min": 1, "max": 1000}},
    {"label": "Code", "type": "textfield", "id": "Field_code", "key": "code", "validate": {"pattern": "^[A-Z]{3}$"}}
  ],
  "type": "default", "id": "order_form", "executionPlatform": "Camunda Platform", "executionPlatformVersion": "7.20.0",
  "exporter": {"name": "Camunda Modeler", "version": "5.20.0"}, "schemaVersion": 16
}"""

PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="D" targetNamespace="t">
  <bpmn:process id="fk_cf" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1" {start}><bpmn:outgoing>Flow_s</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="Activity_1" camunda:candidateGroups="fgw" {task}><bpmn:incoming>Flow_s</bpmn:incoming><bpmn:outgoing>Flow_e</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="Event_end"><bpmn:incoming>Flow_e</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="Flow_s" sourceRef="StartEvent_1" targetRef="Activity_1"/>
    <bpmn:sequenceFlow id="Flow_e" sourceRef="Activity_1" targetRef="Event_end"/>
  </bpmn:process>
</bpmn:definitions>
"""
ON_TASK = PROCESS.format(start="", task='camunda:formKey="camunda-forms:deployment:f_order.form"')
ON_START = PROCESS.format(start='camunda:formKey="camunda-forms:deployment:f_order.form"', task="")


# --- POST /process-definition/.../submit-form --------------------------------------

@pytest.fixture
def quickstart(client):
    assert client.deploy(QUICKSTART, *FORMS, name="quickstart").status_code == 200
    return client


@pytest.mark.parametrize("by", ["key", "id"])
def test_tasklist_starts_a_case_through_submit_form_as_through_start(quickstart, by):
    path = "/engine-rest/process-definition/key/quickstart_review"
    if by == "id":
        path = f"/engine-rest/process-definition/{quickstart.get(path).get_json()['id']}"
    r = quickstart.post(f"{path}/submit-form", json={"variables": typed(**APPLICATION), "businessKey": "SZ-1"})
    assert r.status_code == 200, r.get_json()
    case = r.get_json()
    assert case["businessKey"] == "SZ-1" and case["definitionKey"] == "quickstart_review" and not case["ended"]
    assert case["links"][0]["href"].endswith(f"/process-instance/{case['id']}")
    assert "variables" not in case
    started = quickstart.get(f"/engine-rest/process-instance/{case['id']}/variables").get_json()
    assert started["applicantName"]["value"] == APPLICATION["applicantName"]


def test_submit_form_checks_the_start_form_and_starts_nothing_it_refuses(quickstart):
    r = quickstart.post("/engine-rest/process-definition/key/quickstart_review/submit-form",
                        json={"variables": {}, "businessKey": "SZ-2"})
    assert r.status_code == 400 and r.get_json()["type"] == "FormFieldValidationException"
    assert "applicantName" in r.get_json()["message"]
    assert quickstart.get("/engine-rest/process-instance/count").get_json()["count"] == 0


def test_submit_form_of_an_unknown_process_is_a_404(client):
    r = client.post("/engine-rest/process-definition/key/nope/submit-form", json={"variables": {}})
    assert r.status_code == 404 and "nope" in r.get_json()["message"]


def test_submit_form_is_for_who_may_start_the_process(quickstart):
    applicant = quickstart.create_user("someone", ["applicants"])
    r = applicant.post("/engine-rest/process-definition/key/quickstart_review/submit-form",
                       json={"variables": typed(**APPLICATION)})
    assert r.status_code == 403
    assert quickstart.get("/engine-rest/process-instance/count").get_json()["count"] == 0


# --- camunda:formKey="camunda-forms:deployment:NAME" ---------------------------------

def test_a_task_whose_form_key_names_a_deployed_form_serves_and_enforces_it(client):
    assert client.deploy(extra={"fk_cf.bpmn": ON_TASK, "f_order.form": ORDER_FORM}).status_code == 200
    officer = client.create_user("fgw_officer", ["fgw"])
    client.start("fk_cf")
    [task] = officer.tasks()
    assert task["formKey"] == "camunda-forms:deployment:f_order.form" and task["camundaFormRef"] is None
    form = officer.get(f"/engine-rest/task/{task['id']}/deployed-form")
    assert form.status_code == 200 and form.get_json()["id"] == "order_form"
    assert officer.get(f"/engine-rest/task/{task['id']}/form").get_json() == {
        "key": "camunda-forms:deployment:f_order.form", "contextPath": None, "camundaFormRef": None}

    r = officer.complete(task["id"], typed(amount=5000, code="ab"))
    assert r.status_code == 400 and r.get_json()["type"] == "FormFieldValidationException"
    assert set(r.get_json()["errors"]) == {"amount", "code"}
    assert [t["id"] for t in officer.tasks()] == [task["id"]]          # untouched
    assert officer.complete(task["id"], typed(amount=500, code="ABC")).status_code == 204


def test_a_start_event_whose_form_key_names_a_deployed_form_serves_and_enforces_it(client):
    assert client.deploy(extra={"fk_cf.bpmn": ON_START, "f_order.form": ORDER_FORM}).status_code == 200
    path = "/engine-rest/process-definition/key/fk_cf"
    assert client.get(f"{path}/deployed-start-form").get_json()["id"] == "order_form"
    assert client.get(f"{path}/startForm").get_json()["key"] == "camunda-forms:deployment:f_order.form"
    for route in ("start", "submit-form"):
        r = client.post(f"{path}/{route}", json={"variables": typed(amount=0)})
        assert r.status_code == 400 and "amount" in r.get_json()["errors"], route
    assert client.get("/engine-rest/process-instance/count").get_json()["count"] == 0
    assert client.post(f"{path}/submit-form", json={"variables": typed(amount=3)}).status_code == 200


def test_the_form_is_the_one_of_the_tasks_own_deployment(client):
    assert client.deploy(extra={"fk_cf.bpmn": ON_TASK, "f_order.form": ORDER_FORM}, name="a").status_code == 200
    officer = client.create_user("fgw_officer", ["fgw"])
    client.start("fk_cf")
    # a later deployment's f_order.form is another form: the case keeps its own
    other = ORDER_FORM.replace('"max": 1000', '"max": 10').replace('"order_form"', '"order_form_v2"')
    assert client.deploy(extra={"fk_cf.bpmn": ON_TASK.replace('id="D"', 'id="D2"'), "f_order.form": other},
                         name="b").status_code == 200
    [task] = officer.tasks()
    assert officer.get(f"/engine-rest/task/{task['id']}/deployed-form").get_json()["id"] == "order_form"
    assert officer.complete(task["id"], typed(amount=500)).status_code == 204


@pytest.mark.parametrize("model", [ON_TASK, ON_START], ids=["user task", "start event"])
def test_a_form_key_naming_no_form_of_the_deployment_is_refused_at_deploy(client, model):
    r = client.deploy(extra={"fk_cf.bpmn": model})
    assert r.status_code == 400
    [problem] = r.get_json()["details"]["fk_cf.bpmn"]["errors"]
    assert "f_order.form" in problem["message"]
    assert problem["mainElementId"] == ("Activity_1" if model is ON_TASK else "StartEvent_1")
    assert client.get("/engine-rest/process-definition/count").get_json()["count"] == 0


def test_other_form_keys_are_passed_through_to_the_client(client):
    model = ON_TASK.replace("camunda-forms:deployment:f_order.form", "camunda-forms:app:forms/order.form")
    assert client.deploy(extra={"fk_cf.bpmn": model}).status_code == 200
    officer = client.create_user("fgw_officer", ["fgw"])
    client.start("fk_cf")
    [task] = officer.tasks()
    assert task["formKey"] == "camunda-forms:app:forms/order.form"
    assert officer.get(f"/engine-rest/task/{task['id']}/deployed-form").status_code == 404
    assert officer.complete(task["id"], typed(anything="goes")).status_code == 204



# --- GET /process-definition/.../form-variables ---------------------------------------

DEFAULTS_FORM = """{
  "components": [
    {"label": "Channel", "type": "select", "id": "Field_ch", "key": "channel", "defaultValue": "window",
     "values": [{"label": "Window", "value": "window"}, {"label": "Online", "value": "online"}]},
    {"label": "Urgent", "type": "checkbox", "id": "Field_urg", "key": "urgent", "defaultValue": false},
    {"label": "Copies", "type": "number", "id": "Field_n", "key": "copies", "defaultValue": 2},
    {"label": "Note", "type": "textfield", "id": "Field_note", "key": "note"},
    {"type": "group", "id": "Group_a", "path": "applicant", "label": "Applicant", "components": [
      {"label": "Country", "type": "textfield", "id": "Field_c", "key": "country", "defaultValue": "CN"}]},
    {"type": "dynamiclist", "id": "List_i", "path": "items", "label": "Items", "components": [
      {"label": "Qty", "type": "number", "id": "Field_q", "key": "qty", "defaultValue": 1}]}
  ],
  "type": "default", "id": "defaults_form", "executionPlatform": "Camunda Platform",
  "executionPlatformVersion": "7.22.0", "schemaVersion": 16
}"""


@pytest.mark.parametrize("by", ["key", "id"])
def test_start_form_variables_are_the_start_forms_default_values_typed(client, by):
    start = ON_START.replace("f_order.form", "f_defaults.form")
    assert client.deploy(extra={"fk_cf.bpmn": start, "f_defaults.form": DEFAULTS_FORM}).status_code == 200
    path = "/engine-rest/process-definition/key/fk_cf"
    if by == "id":
        path = f"/engine-rest/process-definition/{client.get(path).get_json()['id']}"
    r = client.get(f"{path}/form-variables")
    assert r.status_code == 200, r.get_json()
    found = {name: (v["type"], v["value"]) for name, v in r.get_json().items()}
    assert found == {"channel": ("String", "window"), "urgent": ("Boolean", False), "copies": ("Integer", 2),
                     "applicant": ("Json", '{"country": "CN"}')}         # Camunda's Json: the text
    only = client.get(f"{path}/form-variables?variableNames=channel,nope").get_json()
    assert list(only) == ["channel"]


def test_start_form_variables_of_a_process_without_a_start_form_are_empty_and_of_none_a_404(client):
    assert client.deploy(extra={"fk_cf.bpmn": ON_TASK, "f_order.form": ORDER_FORM}).status_code == 200
    r = client.get("/engine-rest/process-definition/key/fk_cf/form-variables")
    assert r.status_code == 200 and r.get_json() == {}
    assert client.get("/engine-rest/process-definition/key/nope/form-variables").status_code == 404


CHOICE_FORM = """{
  "components": [
    {"label": "Class", "type": "select", "id": "Field_cls", "key": "projectClass", "valuesKey": "classes"}
  ],
  "type": "default", "id": "choice_form", "executionPlatform": "Camunda Platform",
  "executionPlatformVersion": "7.22.0", "schemaVersion": 16
}"""


def test_a_start_forms_value_key_options_are_checked_against_the_options_submitted_with_it(client):
    start = ON_START.replace("f_order.form", "f_choice.form")
    assert client.deploy(extra={"fk_cf.bpmn": start, "f_choice.form": CHOICE_FORM}).status_code == 200
    path = "/engine-rest/process-definition/key/fk_cf/submit-form"
    classes = [{"label": "A", "value": "a"}, {"label": "B", "value": "b"}]
    r = client.post(path, json={"variables": typed(classes=classes, projectClass="z")})
    assert r.status_code == 400 and "projectClass" in r.get_json()["errors"]
    assert "choose from a, b" in r.get_json()["message"]
    assert client.get("/engine-rest/process-instance/count").get_json()["count"] == 0
    assert client.post(path, json={"variables": typed(classes=classes, projectClass="b")}).status_code == 200
