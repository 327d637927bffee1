"""What a case stores from a Camunda Form's submission (POST /task/{id}/submit-form and a
start form's submit-form): read-only fields keep the case's value, nested ones included, and
values of every shape are checked without a 500."""
from __future__ import annotations

import json

import pytest

from tests.conftest import typed

PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="D" targetNamespace="t">
  <bpmn:process id="fv" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1" camunda:formKey="camunda-forms:deployment:start.form"><bpmn:outgoing>Flow_s</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="Fill" camunda:assignee="admin" camunda:formKey="camunda-forms:deployment:task.form"><bpmn:incoming>Flow_s</bpmn:incoming><bpmn:outgoing>Flow_w</bpmn:outgoing></bpmn:userTask>
    <bpmn:userTask id="Wait" camunda:assignee="admin"><bpmn:incoming>Flow_w</bpmn:incoming><bpmn:outgoing>Flow_e</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="Event_end"><bpmn:incoming>Flow_e</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="Flow_s" sourceRef="StartEvent_1" targetRef="Fill"/>
    <bpmn:sequenceFlow id="Flow_w" sourceRef="Fill" targetRef="Wait"/>
    <bpmn:sequenceFlow id="Flow_e" sourceRef="Wait" targetRef="Event_end"/>
  </bpmn:process>
</bpmn:definitions>
"""

APPLICANT_AND_ITEMS = [
    {"type": "group", "path": "applicant", "id": "G1", "label": "Applicant", "components": [
        {"type": "textfield", "key": "company", "id": "R1", "label": "Company", "readonly": True},
        {"type": "textfield", "key": "phone", "id": "R2", "label": "Phone"}]},
    {"type": "dynamiclist", "path": "items", "id": "DL", "label": "Items", "isRepeating": True, "components": [
        {"type": "textfield", "key": "code", "id": "R3", "label": "Code", "readonly": True},
        {"type": "textfield", "key": "note", "id": "R4", "label": "Note"}]}]


def form(form_id, *components) -> str:
    return json.dumps({"components": list(components), "type": "default", "id": form_id,
                       "executionPlatform": "Camunda Platform", "executionPlatformVersion": "7.22.0",
                       "schemaVersion": 18})


def deploy(client, task_components=(), start_components=()):
    files = {"fv.bpmn": PROCESS, "start.form": form("start_form", *start_components),
             "task.form": form("task_form", *task_components)}
    r = client.deploy(extra=files)
    assert r.status_code == 200, r.get_json()


def variables(client, case_id) -> dict:
    found = client.get(f"/engine-rest/process-instance/{case_id}/variables").get_json()
    return {name: json.loads(v["value"]) if v["type"] == "Json" else v["value"] for name, v in found.items()}


def fill_task(client, case_id) -> str:
    [task] = client.tasks(processInstanceId=case_id, taskDefinitionKey="Fill")
    return task["id"]


def submit(client, task_id, body):
    return client.post(f"/engine-rest/task/{task_id}/submit-form", json={"variables": body})


def test_read_only_fields_in_a_group_and_a_dynamic_list_keep_the_stored_values(client):
    deploy(client, APPLICANT_AND_ITEMS)
    case = client.start("fv", typed(applicant={"company": "ACME Ltd"}, items=[{"code": "A1"}, {"code": "B2"}]))
    # what form-js sends: the read-only values as shown, one of them tampered with
    r = submit(client, fill_task(client, case["id"]), typed(
        applicant={"company": "Other Ltd", "phone": "+8613800138000"},
        items=[{"code": "A1", "note": "ok"}, {"note": "ok2"}]))
    assert r.status_code == 204, r.get_json()
    stored = variables(client, case["id"])
    assert stored["applicant"] == {"company": "ACME Ltd", "phone": "+8613800138000"}
    assert stored["items"] == [{"code": "A1", "note": "ok"}, {"code": "B2", "note": "ok2"}]


def test_a_removed_entry_does_not_move_read_only_values_to_another_entry(client):
    deploy(client, APPLICANT_AND_ITEMS)
    case = client.start("fv", typed(items=[{"code": "A1"}, {"code": "B2"}]))
    # the user removed the first entry: form-js submits the second one's values
    r = submit(client, fill_task(client, case["id"]), typed(items=[{"code": "B2", "note": "kept"}]))
    assert r.status_code == 204, r.get_json()
    assert variables(client, case["id"])["items"] == [{"code": "B2", "note": "kept"}]


def test_a_read_only_start_form_field_stores_its_default_value_and_no_other(client):
    channel = {"type": "textfield", "key": "channel", "id": "C", "label": "Channel", "readonly": True,
               "defaultValue": "window"}
    deploy(client, start_components=[channel, {"type": "textfield", "key": "name", "id": "N", "label": "Name"}])
    path = "/engine-rest/process-definition/key/fv/submit-form"
    shown = client.post(path, json={"variables": typed(channel="window", name="a")})
    assert shown.status_code == 200, shown.get_json()
    assert variables(client, shown.get_json()["id"]) == {"channel": "window", "name": "a"}
    forged = client.post(path, json={"variables": typed(channel="online", name="b")})
    assert forged.status_code == 200, forged.get_json()
    assert variables(client, forged.get_json()["id"]) == {"name": "b"}


APPROVE = [{"label": "Amount", "type": "number", "id": "Field_a", "key": "amount", "readonly": True},
           {"label": "Approved?", "type": "checkbox", "id": "Field_approved", "key": "approved", "defaultValue": False}]


@pytest.mark.parametrize("held, sent", [
    ({"value": 500, "type": "Long"}, {"value": 500.0, "type": "Double"}),
    ({"value": 500, "type": "Long"}, {"value": 7, "type": "Long"}),
    ({"value": 500, "type": "Short"}, {"value": 500, "type": "Integer"}),
    ({"value": 500, "type": "Short"}, {"value": 500}),
])
def test_a_read_only_field_keeps_the_variables_value_and_its_type_whatever_was_sent(client, held, sent):
    """The value stayed, but it showed the type that was sent for it (a Long 500 became an
    Integer 500, in the history too)."""
    deploy(client, APPROVE)
    case = client.start("fv", {"amount": held})
    r = submit(client, fill_task(client, case["id"]), {"approved": {"value": False, "type": "Boolean"},
                                                         "amount": sent})
    assert r.status_code == 204, r.get_json()
    expected = {"value": 500, "type": held["type"], "valueInfo": {}}
    assert client.get(f"/engine-rest/process-instance/{case['id']}/variables/amount").get_json() == expected
    [row] = client.get("/engine-rest/history/variable-instance",
                       query_string={"processInstanceId": case["id"], "variableName": "amount"}).get_json()
    assert (row["value"], row["type"]) == (500, held["type"])


@pytest.mark.parametrize("value, increment, status", [(10**28, 1, 204), (1.5e300, 1, 204), (10**28 + 1, 2, 400)])
def test_a_huge_number_is_checked_against_its_increment_without_a_500(client, value, increment, status):
    deploy(client, [{"type": "number", "key": "cnt", "id": "B", "label": "Count", "increment": increment}])
    case = client.start("fv")
    r = submit(client, fill_task(client, case["id"]), {"cnt": {"value": value}})   # untyped, as the report sent
    assert r.status_code == status, r.get_json()
    if status == 400:
        assert list(r.get_json()["errors"]) == ["cnt"] and "10000000000000000000000000002" in r.get_json()["message"]
        assert fill_task(client, case["id"])          # the task is still open


def test_an_id_number_pattern_refuses_a_trailing_newline_as_javascript_does(client):
    deploy(client, [{"type": "textfield", "key": "idNo", "id": "I", "label": "ID number",
                     "validate": {"pattern": r"^\d{17}[\dX]$"}}])
    case = client.start("fv")
    task_id = fill_task(client, case["id"])
    r = submit(client, task_id, typed(idNo="11010119900307123X\n"))
    assert r.status_code == 400 and list(r.get_json()["errors"]) == ["idNo"], r.get_json()
    assert submit(client, task_id, typed(idNo="11010119900307123X")).status_code == 204


def test_a_date_typed_value_stays_a_date_and_a_midnight_date_is_a_day(client):
    deploy(client, [{"type": "datetime", "key": "when", "id": "W", "subtype": "datetime", "dateLabel": "When"},
                    {"type": "datetime", "key": "day", "id": "D", "subtype": "date", "dateLabel": "Day"}])
    case = client.start("fv")
    task_id = fill_task(client, case["id"])
    late = submit(client, task_id, {"when": {"value": "2024-05-01T10:00:00.000+0800", "type": "Date"},
                                    "day": {"value": "2024-05-01T10:00:00.000+0800", "type": "Date"}})
    assert late.status_code == 400 and list(late.get_json()["errors"]) == ["day"], late.get_json()
    r = submit(client, task_id, {"when": {"value": "2024-05-01T10:00:00.000+0800", "type": "Date"},
                                 "day": {"value": "2024-05-01T00:00:00.000+0800", "type": "Date"}})
    assert r.status_code == 204, r.get_json()
    stored = client.get(f"/engine-rest/process-instance/{case['id']}/variables").get_json()
    assert stored["when"]["type"] == "Date" and stored["when"]["value"].startswith("2024-05-01T10:00:00")
    assert stored["day"]["type"] == "Date" and stored["day"]["value"].startswith("2024-05-01T00:00:00")


def test_a_fields_messages_are_joined_as_sentences(client):
    deploy(client, [{"type": "number", "key": "cnt", "id": "B", "label": "Count", "increment": 5,
                     "decimalDigits": 0}])
    case = client.start("fv")
    r = submit(client, fill_task(client, case["id"]), typed(cnt=12.5))
    assert r.status_code == 400
    assert r.get_json()["message"].endswith("cnt: Value is expected to be an integer. Please select a valid value, "
                                            "the two nearest valid values are 10 and 15.")
