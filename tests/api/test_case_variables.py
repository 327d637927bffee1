"""Changing a running case's variables through Camunda 7's variables API: the window's
administrator corrects a value, a department fixes a fact of its own task, and whatever
runs next in every branch of the case (a parallel branch, a worker's task, a boundary
timer, a conditional event, the gateway after a join) goes on with the new value."""
from __future__ import annotations

import pytest

from engine import scheduler, workflows
from tests.conftest import FIXTURES, ROOT, at_once, typed

PI = "/engine-rest/process-instance"
TASK = "/engine-rest/task"
BRANCHES = FIXTURES / "branch_review.bpmn"
CONDITION = FIXTURES / "materials_condition.bpmn"
DEADLINE = FIXTURES / "deadline_notice.bpmn"


@pytest.fixture
def settings(settings):
    settings.test_clock = True
    settings.timers_enabled = False          # the deadline test fires its timer itself
    return settings


@pytest.fixture
def people(client):
    for model in (BRANCHES, CONDITION, DEADLINE):
        deployed = client.deploy(model, name=model.stem)
        assert deployed.status_code == 200, deployed.get_json()
    return {"a": client.create_user("a_officer", ["dept_a"]), "a2": client.create_user("a_colleague", ["dept_a"]),
            "window": client.create_user("window_clerk", ["window"]),
            "worker": client.create_user("b_system", ["external-workers"])}


@pytest.fixture(params=["cached", "restored", "rows", "rows-restored"])
def restoring(request, engine, monkeypatch):
    """Each command finds the case in the workflow cache, or restores it from its stored
    state; "rows": the case keeps its tasks as rows and seals its finished ones, as a
    case of 100 tasks does (a change then unseals the finished tasks it rewrites)."""
    if request.param.endswith("restored"):
        monkeypatch.setattr(engine.workflows, "size", 0)
    if request.param.startswith("rows"):
        monkeypatch.setattr(workflows, "ROWS_FROM", 0)
        monkeypatch.setattr(workflows, "SEAL_FROM", 0)
    return request.param


def variables(client, case) -> dict:
    response = client.get(f"{PI}/{case['id']}/variables")
    assert response.status_code == 200, response.get_json()
    return {name: typed_value["value"] for name, typed_value in response.get_json().items()}


def task_variables(client, task) -> dict:
    response = client.get(f"{TASK}/{task['id']}/variables")
    assert response.status_code == 200, response.get_json()
    return {name: typed_value["value"] for name, typed_value in response.get_json().items()}


def history(client, case) -> dict:
    rows = client.get("/engine-rest/history/variable-instance", query_string={"processInstanceId": case["id"]})
    return {row["name"]: row["value"] for row in rows.get_json()}


def open_steps(client, case) -> list[str]:
    return sorted(t["taskDefinitionKey"] for t in client.tasks(processInstanceId=case["id"]))


def fetch_check(worker) -> list:
    response = worker.post("/engine-rest/external-task/fetchAndLock", json={
        "workerId": "b-1", "maxTasks": 1, "topics": [{"topicName": "dept_b.check", "lockDuration": 60_000}]})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def put(client, case, name, value, vtype=None):
    return client.put(f"{PI}/{case['id']}/variables/{name}", json={"value": value, "type": vtype})


def audit_events(client, case, kind="VariablesModified") -> list:
    dossier = client.get(f"/api/v1/process-instance/{case['id']}/dossier").get_json()
    assert dossier["auditTrail"]["verification"]["valid"] is True, dossier["auditTrail"]["verification"]
    return [e for e in dossier["auditTrail"]["events"] if e["kind"] == kind]


# --- what runs next sees the change ---------------------------------------------------

def test_a_change_reaches_both_parallel_branches_and_the_gateway_after_their_join(client, people, restoring):
    case = client.start("branch_review", typed(route="slow", draftNote="待补"))
    [review] = people["a"].tasks()
    assert client.put(f"{PI}/{case['id']}/variables/route", json={"value": "fast", "type": "String"}).status_code == 204
    assert client.delete(f"{PI}/{case['id']}/variables/draftNote").status_code == 204

    assert task_variables(people["a"], review)["route"] == "fast"           # the department's branch
    assert "draftNote" not in task_variables(people["a"], review)
    [check] = fetch_check(people["worker"])                                  # the worker's branch
    assert check["variables"]["route"]["value"] == "fast" and "draftNote" not in check["variables"]
    assert variables(client, case) == {"route": "fast"}
    assert history(client, case) == {"route": "fast"}

    assert people["a"].complete(review["id"]).status_code == 204
    done = people["worker"].post(f"/engine-rest/external-task/{check['id']}/complete", json={"workerId": "b-1"})
    assert done.status_code == 204, done.get_json()
    assert open_steps(client, case) == ["Task_fast"]                         # the gateway after the join
    assert variables(client, case) == {"route": "fast"}


def test_a_branch_already_waiting_at_the_join_does_not_bring_the_old_value_back(client, people, restoring):
    case = client.start("branch_review", typed(route="slow", draftNote="待补"))
    [review] = people["a"].tasks()
    assert people["a"].complete(review["id"]).status_code == 204            # branch A waits at the join
    modified = client.post(f"{PI}/{case['id']}/variables", json={
        "modifications": {"route": {"value": "fast", "type": "String"}, "checkedBy": {"value": "科长"}},
        "deletions": ["draftNote"]})
    assert modified.status_code == 204, modified.get_json()
    [check] = fetch_check(people["worker"])
    assert people["worker"].post(f"/engine-rest/external-task/{check['id']}/complete",
                                 json={"workerId": "b-1"}).status_code == 204
    assert open_steps(client, case) == ["Task_fast"]
    assert variables(client, case) == {"route": "fast", "checkedBy": "科长"}
    assert history(client, case) == {"route": "fast", "checkedBy": "科长"}


def test_a_boundary_timer_that_fires_later_goes_on_with_the_new_value(client, engine, people, restoring):
    client.put("/api/v1/test/clock", json={"now": "2025-09-26T10:00:00+08:00"})
    case = client.start("deadline_notice", typed(notice="请于三日内补正"))
    assert put(client, case, "notice", "请于五日内补正", "String").status_code == 204
    client.put("/api/v1/test/clock", json={"now": "2025-09-26T12:00:00+08:00"})
    assert scheduler.fire_due(engine) == 1
    [overdue] = people["window"].tasks()
    assert overdue["taskDefinitionKey"] == "Task_overdue"
    assert task_variables(people["window"], overdue)["notice"] == "请于五日内补正"


def test_a_message_that_arrives_later_goes_on_with_the_new_value(client, people, restoring):
    assert client.deploy(FIXTURES / "message_bank.bpmn", name="bank").status_code == 200
    case = client.start("bank_account", typed(accountType="一般户"), "SZ-2025-0300")
    assert put(client, case, "accountType", "基本户", "String").status_code == 204
    delivered = people["worker"].post("/engine-rest/message", json={
        "messageName": "BankAccountOpened", "businessKey": "SZ-2025-0300",
        "processVariables": {"accountNo": {"value": "6222020000001"}}})
    assert delivered.status_code == 204, delivered.get_json()
    assert variables(client, case) == {"accountType": "基本户", "accountNo": "6222020000001"}


def test_a_waiting_conditional_event_fires_when_a_put_makes_its_condition_true(client, people, restoring):
    case = client.start("materials_condition", typed(materialsComplete=False))
    assert open_steps(client, case) == ["Task_check"]
    assert put(client, case, "materialsComplete", "false", "Boolean").status_code == 204
    assert open_steps(client, case) == ["Task_check"]                        # still false: still waiting
    assert put(client, case, "materialsComplete", True, "Boolean").status_code == 204
    assert open_steps(client, case) == ["Task_check", "Task_issue"]
    activities = client.get("/engine-rest/history/activity-instance",
                            query_string={"processInstanceId": case["id"], "activityId": "Catch_ready"}).get_json()
    assert [a["endTime"] is not None for a in activities] == [True]


def test_a_change_reaches_a_called_process_and_comes_back_with_it(client, people, restoring):
    for model in ("call_child.bpmn", "call_parent.bpmn"):
        assert client.deploy(FIXTURES / model, name=model).status_code == 200
    case = client.start("stage_parent", typed(stage="planning", draftNote="待补"))
    [check] = client.tasks(processInstanceId=case["id"])
    modified = client.post(f"{PI}/{case['id']}/variables", json={
        "modifications": {"stage": {"value": "construction"}}, "deletions": ["draftNote"]})
    assert modified.status_code == 204, modified.get_json()
    assert task_variables(client, check) == {"stage": "construction"}
    assert client.complete(check["id"]).status_code == 204
    [issue] = client.tasks(processInstanceId=case["id"])
    assert issue["taskDefinitionKey"] == "Issue"
    assert task_variables(client, issue) == {"stage": "construction"}


def test_a_multi_instance_element_variable_stays_each_departments_own(client, people, restoring):
    assert client.deploy(FIXTURES / "mi_review.bpmn", name="mi").status_code == 200
    fgw, zrzy = client.create_user("fgw_officer", ["fgw"]), client.create_user("zrzy_officer", ["zrzy"])
    case = client.start("mi_review", typed(departments=["fgw", "zrzy"]))
    assert put(client, case, "dept", "zjj", "String").status_code == 204
    assert put(client, case, "departments", ["fgw", "zrzy", "zjj"], "Json").status_code == 204
    for officer, own in ((fgw, "fgw"), (zrzy, "zrzy")):
        [review] = officer.tasks()
        seen = task_variables(officer, review)
        assert seen["dept"] == own and seen["departments"] == '["fgw", "zrzy", "zjj"]'


def test_a_case_read_after_the_change_has_it_one_by_one(client, people):
    case = client.start("branch_review", typed(route="slow"))
    assert put(client, case, "area", 12000, "Integer").status_code == 204
    got = client.get(f"{PI}/{case['id']}/variables/area")
    assert got.status_code == 200 and got.get_json() == {"value": 12000, "type": "Integer", "valueInfo": {}}
    [review] = people["a"].tasks()
    got = people["a"].get(f"{TASK}/{review['id']}/variables/route")
    assert got.get_json() == {"value": "slow", "type": "String", "valueInfo": {}}
    for path in (f"{PI}/{case['id']}/variables/nothing", f"{TASK}/{review['id']}/variables/nothing"):
        missing = client.get(path)
        assert missing.status_code == 404 and missing.get_json()["type"] == "InvalidRequestException"
        assert "nothing" in missing.get_json()["message"]


def test_two_changes_at_once_on_one_case_both_stay(client, people):
    case = client.start("branch_review", typed(route="slow"))
    answers = at_once([lambda: put(client, case, "fgwOpinion", "同意", "String"),
                       lambda: put(client, case, "zrzyOpinion", "同意", "String")])
    assert sorted(a.status_code for a in answers) == [204, 204]
    assert variables(client, case) == {"route": "slow", "fgwOpinion": "同意", "zrzyOpinion": "同意"}


# --- bad values change nothing ---------------------------------------------------------

@pytest.mark.parametrize("bad, words", [
    ({"value": "twelve", "type": "Integer"}, "cannot convert"),
    ({"value": "9999-12-31T23:00:00.000-0500", "type": "Date"}, "out of range"),
    ({"value": {"typename": "datetime", "value": "x"}, "type": "Json"}, "typename"),
    ({"value": "{\"a\": NaN}", "type": "Json"}, "not JSON"),
    ({"value": "x", "type": "Object"}, "unsupported type"),
])
def test_a_bad_value_is_a_400_naming_it_and_nothing_changes(client, people, bad, words):
    case = client.start("branch_review", typed(route="slow"))
    events = len(audit_events(client, case, kind="ProcessInstanceStarted"))
    one = client.put(f"{PI}/{case['id']}/variables/area", json=bad)
    many = client.post(f"{PI}/{case['id']}/variables", json={
        "modifications": {"route": {"value": "fast"}, "area": bad}, "deletions": ["route"]})
    for answer in (one, many):
        assert answer.status_code == 400, answer.get_json()
        assert "'area'" in answer.get_json()["message"] and words in answer.get_json()["message"]
    assert variables(client, case) == {"route": "slow"}
    assert history(client, case) == {"route": "slow"}
    assert audit_events(client, case) == [] and len(audit_events(client, case, "ProcessInstanceStarted")) == events


def test_a_lone_surrogate_or_a_reserved_name_is_refused(client, people):
    case = client.start("branch_review", typed(route="slow"))
    body = b'{"modifications": {"note": {"value": "\\ud800", "type": "String"}}}'
    answer = client.post(f"{PI}/{case['id']}/variables", data=body, content_type="application/json")
    assert answer.status_code == 400 and "surrogate" in answer.get_json()["message"]
    answer = client.post(f"{PI}/{case['id']}/variables", json={"deletions": ["__spiff"]})
    assert answer.status_code == 400 and "'__spiff'" in answer.get_json()["message"]
    assert variables(client, case) == {"route": "slow"}


# --- who may, and of what ---------------------------------------------------------------

def test_an_officer_changes_variables_through_a_task_they_may_complete_only(client, people):
    case = client.start("branch_review", typed(route="slow"))
    [review] = people["a"].tasks()
    mine = people["a"].put(f"{TASK}/{review['id']}/variables/siteVisit", json={"value": True, "type": "Boolean"})
    assert mine.status_code == 204, mine.get_json()
    assert variables(client, case)["siteVisit"] is True

    through_case = people["a"].put(f"{PI}/{case['id']}/variables/route", json={"value": "fast"})
    assert through_case.status_code == 403 and through_case.get_json()["type"] == "AuthorizationException"
    outsider = client.create_user("b_officer", ["dept_b"])
    for answer in (outsider.put(f"{TASK}/{review['id']}/variables/route", json={"value": "fast"}),
                   outsider.get(f"{PI}/{case['id']}/variables/route"),
                   people["window"].delete(f"{TASK}/{review['id']}/variables/siteVisit")):
        assert answer.status_code == 403, answer.get_json()
    assert people["a"].post(f"{TASK}/{review['id']}/claim", json={"userId": "a_officer"}).status_code == 204
    colleague = people["a2"].post(f"{TASK}/{review['id']}/variables", json={"deletions": ["siteVisit"]})
    assert colleague.status_code == 403 and "a_officer" in colleague.get_json()["message"]
    assert variables(client, case) == {"route": "slow", "siteVisit": True}
    denied = client.get("/api/v1/audit/system-events",
                        query_string={"outcome": "denied", "processInstanceId": case["id"]}).get_json()
    assert len(denied) == 4                  # every refused write, in the system chain (the read is not one)


def test_an_officer_may_not_set_their_forms_fields_nor_reach_past_their_tasks_outputs(client):
    deployed = client.deploy(ROOT / "examples" / "quickstart" / "parallel_review.bpmn",
                             ROOT / "forms" / "department_review.form", ROOT / "forms" / "application_intake.form")
    assert deployed.status_code == 200, deployed.get_json()
    officer = client.create_user("fgw_officer", ["fgw"])
    client.start("quickstart_review", typed(applicantName="苏州某某科技有限公司", creditCode="91320500MA1XXXXX0X"))
    [review] = officer.tasks()
    refused = officer.put(f"{TASK}/{review['id']}/variables/decision", json={"value": "maybe"})
    assert refused.status_code == 403 and "department_review" in refused.get_json()["message"]
    # only fgwDecision and fgwOpinion reach the case from this task: not zjjDecision, say
    refused = officer.post(f"{TASK}/{review['id']}/variables", json={"modifications": {"zjjDecision": {"value": "approve"}}})
    assert refused.status_code == 403 and "fgwDecision, fgwOpinion" in refused.get_json()["message"]
    assert client.put(f"{TASK}/{review['id']}/variables/zjjDecision", json={"value": "approve"}).status_code == 204
    assert client.get(f"{PI}/{review['processInstanceId']}/variables/zjjDecision").get_json()["value"] == "approve"


def test_unknown_and_ended_cases_and_tasks_are_404(client, people):
    for path in (f"{PI}/no-such-case/variables/x", f"{TASK}/no-such-task/variables/x"):
        assert client.put(path, json={"value": 1}).status_code == 404
        assert client.delete(path).status_code == 404
        assert client.get(path).status_code == 404
    assert client.post(f"{PI}/no-such-case/variables", json={"deletions": ["x"]}).status_code == 404
    case = client.start("materials_condition", typed(materialsComplete=True))
    [issue, check] = sorted(client.tasks(processInstanceId=case["id"]), key=lambda t: t["taskDefinitionKey"])
    for task in (issue, check):
        assert client.complete(task["id"]).status_code == 204
    ended = client.get(f"{PI}/{case['id']}/variables")
    assert ended.status_code == 404
    for answer in (put(client, case, "x", 1), client.delete(f"{PI}/{case['id']}/variables/x"),
                   client.get(f"{PI}/{case['id']}/variables/x")):
        assert (answer.status_code, answer.get_json()) == (ended.status_code, ended.get_json())


# --- the audit trail (全程留痕) -----------------------------------------------------------

def test_every_change_is_an_audit_event_of_the_case_and_the_chain_verifies(client, people):
    case = client.start("branch_review", typed(route="slow", draftNote="待补"))
    [review] = people["a"].tasks()
    assert put(client, case, "route", "fast", "String").status_code == 204
    assert people["a"].post(f"{TASK}/{review['id']}/variables", json={
        "modifications": {"siteVisit": {"value": True, "type": "Boolean"}},
        "deletions": ["draftNote"]}).status_code == 204
    by_case, by_task = audit_events(client, case)
    assert (by_case["actor"], by_case["taskId"]) == ("admin", None)
    assert by_case["data"] == {"modifications": {"route": "fast"}, "deletions": [], "previous": {"route": "slow"}}
    assert (by_task["actor"], by_task["taskId"], by_task["activityId"]) == ("a_officer", review["id"], "Task_a")
    assert by_task["data"] == {"modifications": {"siteVisit": True}, "deletions": ["draftNote"],
                               "previous": {"draftNote": "待补"}}
    assert client.get("/api/v1/audit/verification").get_json()["valid"] is True
