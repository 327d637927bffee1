"""The REST contract a Camunda 7 client relies on: auth, error bodies, typed
variables, unknown ids, races, and the OpenAPI document."""
from __future__ import annotations

import base64
import re

from sqlalchemy import select

from engine.models import VariableInstance
from tests.api.test_deployment import minimal
from tests.conftest import Client, at_once, typed


def test_every_endpoint_requires_a_user(client):
    anonymous = client.http
    for path in ("/engine-rest/version", "/engine-rest/task", "/engine-rest/deployment"):
        r = anonymous.get(path)
        assert r.status_code == 401 and r.get_json()["type"] == "AuthenticationException"
        assert "Basic" in r.headers["WWW-Authenticate"]
    wrong = Client(anonymous, ("admin", "wrong"))
    assert wrong.get("/engine-rest/version").status_code == 401
    assert client.get("/engine-rest/version").get_json() == {"version": "7.22.0"}
    assert client.get("/engine-rest/engine").get_json() == [{"name": "default"}]


def test_bearer_tokens_work_until_revoked(client):
    clerk = client.create_user("clerk", ["window"])
    issued = clerk.post("/api/v1/tokens", json={"label": "window pc"})
    assert issued.status_code == 201
    token = issued.get_json()
    bearer = {"Authorization": f"Bearer {token['token']}"}
    assert client.http.get("/engine-rest/task", headers=bearer).status_code == 200
    assert clerk.delete(f"/api/v1/tokens/{token['id']}").status_code == 204
    assert client.http.get("/engine-rest/task", headers=bearer).status_code == 401


def test_malformed_basic_credentials_are_a_401_not_a_500(client):
    r = client.http.get("/engine-rest/task", headers={"Authorization": "Basic !!!not-base64"})
    assert r.status_code == 401


def test_unknown_ids_are_404_with_camundas_error_body(client):
    for path in ("/engine-rest/task/nope", "/engine-rest/process-instance/nope",
                 "/engine-rest/process-definition/nope", "/engine-rest/process-definition/key/nope",
                 "/engine-rest/deployment/nope", "/engine-rest/history/process-instance/nope"):
        r = client.get(path)
        assert r.status_code == 404, path
        assert r.get_json()["type"] == "InvalidRequestException" and r.get_json()["message"]
    r = client.complete("nope")
    assert r.status_code == 404
    r = client.post("/engine-rest/process-definition/key/nope/start", json={})
    assert r.status_code == 404


def test_error_bodies_carry_camundas_code_an_engine_exception_0_or_1_and_invalid_request_none(client):
    # Camunda 7.22's REST overview: AuthorizationException with "code": 0; OptimisticLockingException
    # 1; the REST layer's InvalidRequestException is no engine exception and has no code
    client.create_user("nobody", [])
    forbidden = client.as_user("nobody").post("/engine-rest/external-task/fetchAndLock",
                                              json={"workerId": "w", "maxTasks": 1, "topics": []})
    assert forbidden.status_code == 403
    assert (forbidden.get_json()["type"], forbidden.get_json()["code"]) == ("AuthorizationException", 0)
    parse = client.deploy(extra={"broken.bpmn": "<definitions"})
    assert (parse.status_code, parse.get_json()["type"], parse.get_json()["code"]) == (400, "ParseException", 0)
    missing = client.get("/engine-rest/task/nope")
    assert (missing.get_json()["type"], missing.get_json()["code"]) == ("InvalidRequestException", None)


def test_malformed_json_and_wrong_variable_types_are_400(client):
    client.deploy(extra={"simple.bpmn": minimal()})
    r = client.post("/engine-rest/process-definition/key/simple/start", data="{not json",
                    content_type="application/json")
    assert r.status_code == 400 and r.get_json()["type"] == "InvalidRequestException"
    for bad in ({"n": {"value": "abc", "type": "Integer"}}, {"n": {"value": 2**40, "type": "Integer"}},
                {"n": {"value": "x", "type": "Blob"}}, {"n": {"value": "yes", "type": "Boolean"}},
                {"n": {"value": "2025-13-45", "type": "Date"}}, {"__class__": {"value": 1}}, {"n": 5}):
        r = client.post("/engine-rest/process-definition/key/simple/start", json={"variables": bad})
        assert r.status_code == 400, bad
        assert r.get_json()["message"]
    assert client.get("/engine-rest/process-instance/count").get_json()["count"] == 0


def test_typed_variables_round_trip(client):
    client.deploy(extra={"simple.bpmn": minimal()})
    variables = {"s": {"value": "文本", "type": "String"}, "i": {"value": 42, "type": "Integer"},
                 "l": {"value": 2**40, "type": "Long"}, "d": {"value": 1.5, "type": "Double"},
                 "b": {"value": True, "type": "Boolean"}, "j": {"value": '{"a": [1, 2]}', "type": "Json"},
                 "t": {"value": "2025-09-26T10:00:00.000+0800", "type": "Date"}, "n": {"value": None, "type": "Null"}}
    case = client.post("/engine-rest/process-definition/key/simple/start", json={"variables": variables}).get_json()
    got = client.get(f"/engine-rest/process-instance/{case['id']}/variables").get_json()
    assert {k: v["type"] for k, v in got.items()} == {"s": "String", "i": "Integer", "l": "Long", "d": "Double",
                                                     "b": "Boolean", "j": "Json", "t": "Date", "n": "Null"}
    assert got["t"]["value"] == "2025-09-26T10:00:00.000+0800"
    assert got["j"]["value"] == '{"a": [1, 2]}' and got["l"]["value"] == 2**40
    history = client.get("/engine-rest/history/variable-instance", query_string={"processInstanceId": case["id"]})
    assert {row["name"]: row["value"] for row in history.get_json()}["t"] == "2025-09-26T10:00:00.000+0800"


def test_complete_with_variables_in_return(client):
    client.deploy(extra={"simple.bpmn": minimal()})
    case = client.start("simple", typed(x=1))
    [task] = client.tasks(processInstanceId=case["id"])
    r = client.post(f"/engine-rest/task/{task['id']}/complete",
                    json={"variables": typed(approved=True), "withVariablesInReturn": True})
    assert r.status_code == 200
    assert r.get_json()["approved"] == {"type": "Boolean", "value": True, "valueInfo": {}}


def test_a_changed_variable_keeps_its_row_and_a_new_one_gets_its_own(client, engine):
    """One row per variable: a completion that changes one updates its row in place (id
    and createTime kept, type, value and update time new), and one that adds a variable
    inserts it; a single statement writes both (engine/projections.py)."""
    client.deploy(extra={"simple.bpmn": minimal()})
    case = client.start("simple", typed(x=1, kept="same"))

    def rows():
        found = client.get("/engine-rest/history/variable-instance",
                           query_string={"processInstanceId": case["id"]}).get_json()
        return {v["name"]: v for v in found}

    def updated():              # not in Camunda's shape; the dossier shows it
        with engine.uow(write=False) as uow:
            return dict(uow.session.execute(select(VariableInstance.name, VariableInstance.updated)
                                            .where(VariableInstance.instance_id == case["id"])).all())

    before, updated_before = rows(), updated()
    [task] = client.tasks(processInstanceId=case["id"])
    changes = {"x": {"value": "two", "type": "String"}, **typed(y=3, approved=True)}
    assert client.complete(task["id"], changes).status_code == 204
    after = rows()
    assert set(after) == {"x", "kept", "y", "approved"}
    assert (after["x"]["id"], after["x"]["createTime"]) == (before["x"]["id"], before["x"]["createTime"])
    assert (after["x"]["type"], after["x"]["value"]) == ("String", "two")
    assert after["kept"] == before["kept"]
    assert after["y"]["value"] == 3 and after["y"]["id"] not in {before["x"]["id"], before["kept"]["id"]}
    updated_after = updated()
    assert updated_after["x"] > updated_before["x"] and updated_after["kept"] == updated_before["kept"]


def test_a_gateway_condition_failing_rolls_the_completion_back(client):
    client.deploy(extra={"simple.bpmn": minimal(condition="missing_variable > 3")})
    case = client.start("simple")
    [task] = client.tasks(processInstanceId=case["id"])
    r = client.complete(task["id"])
    assert r.status_code == 400
    body = r.get_json()
    assert body["type"] == "ProcessEngineException" and "missing_variable" in body["message"]
    assert [t["id"] for t in client.tasks(processInstanceId=case["id"])] == [task["id"]]
    assert client.complete(task["id"], typed(missing_variable=5)).status_code == 204


def test_two_departments_completing_one_task_at_once_one_wins_and_one_gets_409(client):
    client.deploy(extra={"simple.bpmn": minimal()})
    case = client.start("simple")
    [task] = client.tasks(processInstanceId=case["id"])
    results = at_once([lambda: client.complete(task["id"], typed(approved=True))] * 2)
    codes = sorted(r.status_code for r in results)
    assert codes == [204, 409], [(r.status_code, r.get_data(as_text=True)) for r in results]
    loser = next(r for r in results if r.status_code == 409).get_json()
    assert loser["type"] == "OptimisticLockingException"
    completions = client.get("/engine-rest/history/activity-instance",
                             query_string={"processInstanceId": case["id"], "activityId": "T"}).get_json()
    assert len(completions) == 1


def test_two_officers_claiming_one_task_at_once_one_gets_it_and_one_gets_409(client):
    """The case is locked after the task is read, so both claims pass the check that the
    task is free; the assignee is then written only if it is still the one read (on
    PostgreSQL both claims answered 204 before, the second overwriting the first)."""
    client.deploy(extra={"simple.bpmn": minimal()})
    officers = {"li": client.create_user("li", ["fgw"]), "wang": client.create_user("wang", ["fgw"])}
    for _ in range(5):
        case = client.start("simple")
        [task] = client.tasks(processInstanceId=case["id"])
        path = f"/engine-rest/task/{task['id']}/claim"
        results = dict(at_once([lambda name=name, officer=officer: (name, officer.post(path, json={"userId": name}))
                                for name, officer in officers.items()]))
        codes = sorted(r.status_code for r in results.values())
        assert codes == [204, 409], [(n, r.status_code, r.get_data(as_text=True)) for n, r in results.items()]
        [winner] = [name for name, r in results.items() if r.status_code == 204]
        [loser] = [r for r in results.values() if r.status_code == 409]
        assert loser.get_json()["type"] == "TaskAlreadyClaimedException"
        assert client.get(f"/engine-rest/task/{task['id']}").get_json()["assignee"] == winner


def test_one_officer_claiming_twice_at_once_gets_the_task_both_times(client):
    """A second click: the second claim finds the task already theirs, and changes nothing."""
    client.deploy(extra={"simple.bpmn": minimal()})
    li = client.create_user("li", ["fgw"])
    for _ in range(3):
        case = client.start("simple")
        [task] = client.tasks(processInstanceId=case["id"])
        path = f"/engine-rest/task/{task['id']}/claim"
        results = at_once([lambda: li.post(path, json={"userId": "li"})] * 2)
        assert [r.status_code for r in results] == [204, 204], [r.get_data(as_text=True) for r in results]
        assert client.get(f"/engine-rest/task/{task['id']}").get_json()["assignee"] == "li"
        trail = client.get(f"/api/v1/process-instance/{case['id']}/dossier").get_json()["auditTrail"]["events"]
        claims = [e for e in trail
                  if e["kind"] == "TaskClaimed"]
        assert len(claims) == 1


def test_the_openapi_document_and_docs_page_are_served(client):
    spec = client.http.get("/engine-rest/openapi.json")
    assert spec.status_code == 200
    paths = spec.get_json()["paths"]
    for path in ("/engine-rest/deployment/create", "/engine-rest/task/{task_id}/complete",
                 "/engine-rest/process-definition/key/{key}/start", "/engine-rest/history/process-instance"):
        assert path in paths
    page = client.http.get("/engine-rest/docs")
    assert page.status_code == 200
    # every script and style the page loads is served here, without credentials: a
    # government network is often offline, and the page loaded them from a CDN before
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.get_data(as_text=True))
    assert sorted(a.rsplit("/", 1)[1] for a in assets) == [
        "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"], assets
    for asset in assets:
        assert asset.startswith("/engine-rest/swagger-ui/"), asset
        r = client.http.get(asset)
        assert r.status_code == 200 and len(r.data) > 10_000, (asset, r.status_code)
    assert client.http.get("/engine-rest/swagger-ui/../../app.py").status_code == 404


def test_users_groups_and_memberships(client):
    client.create_user("li", ["fgw"])
    users = client.get("/engine-rest/user", query_string={"memberOfGroup": "fgw"}).get_json()
    assert [u["id"] for u in users] == ["li"]
    groups = client.get("/engine-rest/group", query_string={"member": "li"}).get_json()
    assert [g["id"] for g in groups] == ["fgw"]
    li = client.as_user("li")
    assert li.post("/engine-rest/user/create", json={"profile": {"id": "x"}}).status_code == 403
    assert client.post("/engine-rest/user/create", json={"profile": {"id": "li"}}).status_code == 400
    verify = client.post("/engine-rest/identity/verify", json={"username": "li", "password": "pw"}).get_json()
    assert verify == {"authenticatedUser": "li", "authenticated": True}


def test_request_bodies_over_the_limit_are_413(client, app):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    token = base64.b64encode(b"admin:admin-secret").decode()
    r = client.http.post("/engine-rest/process-definition/key/x/start", data="x" * 4096,
                         headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"})
    assert r.status_code == 413


def test_a_204_has_no_body_and_no_content_type(client):
    """Camunda's 204s carry neither; the JavaScript external-task client parses any answer
    typed application/json, and an empty one failed it after the server had done the work."""
    client.deploy(extra={"simple.bpmn": minimal("simple")})
    case = client.start("simple")["id"]
    [task] = client.tasks(processInstanceId=case)
    answers = [client.post(f"/engine-rest/task/{task['id']}/claim", json={"userId": "admin"}),
               client.post(f"/engine-rest/task/{task['id']}/complete", json={"variables": typed(approved=True)}),
               client.post("/engine-rest/group/create", json={"id": "g204", "name": "g"})]
    for r in answers:
        assert r.status_code == 204, r.get_data(as_text=True)[:200]
        assert "Content-Type" not in r.headers and r.data == b"", dict(r.headers)
    r = client.get("/engine-rest/version")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
