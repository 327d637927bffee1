"""The declarative HTTP connector: the shipped connector file against the sandbox, and the
mapping and error rules against a scripted department system."""
from __future__ import annotations

import json

import pytest
from flask import Flask, jsonify, request

from workers import BpmnError, ExternalTask, Failure, credit_code
from workers import config as connector_config
from workers.config import SandboxConfig
from workers.connectors import HttpConnector, build_worker
from workers.sandbox import create_sandbox

SYSTEM_ENV = {"MARKET": "market", "POLICE": "police", "TAX": "tax", "HRSS": "hrss",
              "HOUSING_FUND": "housing-fund", "BANK": "bank", "LICENCE": "licence",
              "REALESTATE": "realestate", "NOTIFY": "notify"}


@pytest.fixture
def departments(serve, fake_engine):
    """The shipped connector file, every system pointed at a sandbox on a free port."""
    app = create_sandbox(SandboxConfig(token="sandbox-token", callback_delay_s=0.05, engine_url=fake_engine.url))
    served = serve(app)
    env = {f"{name}_URL": f"{served.url}/{path}" for name, path in SYSTEM_ENV.items()}
    loaded = connector_config.load(connector_config.DEFAULT_PATH, env=env)
    served.sandbox = app.extensions["sandbox"]
    served.connector = lambda topic: HttpConnector(loaded.topics[topic])
    return served


def task(topic, task_id="ext-1", business_key="SZ-2025-0001", **variables):
    return ExternalTask(id=task_id, topic_name=topic, business_key=business_key, variables=variables)


APPLICANT = {"applicantName": "苏州某某科技有限公司", "applicantPhone": "13800000000"}


def test_enterprise_opening_runs_through_every_department(departments, fake_engine):
    registered = departments.connector("market.registration")(task("market.registration", "t1", **APPLICANT))
    assert set(registered) == {"creditCode", "marketRegistrationNo"}
    assert credit_code.is_valid(registered["creditCode"])
    case = {**APPLICANT, "creditCode": registered["creditCode"]}
    results = {}
    for i, topic in enumerate(["police.seal", "tax.invoice", "hrss.social_security", "housing_fund.registration",
                               "bank.account_reservation", "licence.issue", "notify.applicant"]):
        results.update(departments.connector(topic)(task(topic, f"t{i + 2}", **case)))
    assert set(results) == {"sealIds", "invoiceQuota", "taxUKeyNo", "socialSecurityNo", "fundAccountNo",
                            "bankReservationId", "bankReservationStatus", "eLicenceId", "notificationId",
                            "notificationChannel"}
    assert len(results["sealIds"]) == 4 and results["invoiceQuota"]["monthlyCount"] == 25
    assert results["bankReservationStatus"] == "ACCEPTED" and results["notificationChannel"] == "sms"
    assert fake_engine.wait_for(lambda: fake_engine.messages, timeout=3)
    assert fake_engine.messages[0]["businessKey"] == "SZ-2025-0001"


def test_joint_acceptance_opinion_is_pushed_to_real_estate_registration(departments):
    opinion = {"result": "合格", "departments": ["规划", "消防", "人防"], "date": "2025-10-09"}
    pushed = departments.connector("realestate.push")(task("realestate.push", jointAcceptanceOpinion=opinion))
    assert pushed["realEstateReceiptNo"].startswith("BDC")


def test_the_task_id_is_the_idempotency_key_so_a_redelivered_task_has_no_second_effect(departments):
    register = departments.connector("market.registration")
    first = register(task("market.registration", "ext-77", **APPLICANT))
    again = register(task("market.registration", "ext-77", **APPLICANT))
    assert again == first
    stats = departments.sandbox.stats()
    assert stats["effects"] == {"/market/registrations": 1} and stats["replays"] == 1


def test_a_taken_name_is_the_bpmn_error_the_diagram_catches(departments):
    with pytest.raises(BpmnError) as err:
        departments.connector("market.registration")(task("market.registration", applicantName="苏州重名科技有限公司"))
    assert err.value.code == "MARKET_NAME_TAKEN"
    assert "已被登记" in err.value.variables["marketRejectReason"]


def test_an_invalid_credit_code_is_refused_by_the_seal_system(departments):
    with pytest.raises(BpmnError) as err:
        departments.connector("police.seal")(task("police.seal", creditCode="91320500MA1XXXXX0X", **APPLICANT))
    assert err.value.code == "SEAL_REJECTED" and "GB 11714" in err.value.message


def test_a_missing_required_variable_opens_an_incident_naming_it(departments):
    with pytest.raises(Failure) as err:
        departments.connector("tax.invoice")(task("tax.invoice", **APPLICANT))
    assert err.value.retries == 0 and "creditCode is missing" in err.value.message


def test_an_unavailable_department_is_retried(serve):
    served = serve(create_sandbox(SandboxConfig(failure_rate=1.0)))
    loaded = connector_config.load(connector_config.DEFAULT_PATH, env={"HRSS_URL": served.url + "/hrss"})
    with pytest.raises(Failure) as err:
        HttpConnector(loaded.topics["hrss.social_security"])(task("hrss.social_security", creditCode="x",
                                                                  applicantName="y"))
    assert err.value.retries is None and "503" in err.value.message


def test_a_connector_stuck_past_twice_its_systems_timeout_is_given_up():
    """timeout_s bounds connecting and each read; a call still running after twice that is
    stuck (an answer trickling in), and the worker reports it failed instead of waiting for ever."""
    loaded = connector_config.load(connector_config.DEFAULT_PATH, env={})
    worker = build_worker(loaded)
    timeouts = {topic: sub.handler_timeout for topic, sub in worker.subscriptions.items()}
    assert timeouts == {name: 2 * topic.system.timeout_s for name, topic in loaded.topics.items()}
    assert timeouts["market.registration"] == 20 and timeouts["notify.applicant"] == 10


# --- mapping and error rules against a scripted department -------------------------------------

class Scripted:
    """A department system that records requests and answers what the test says."""

    def __init__(self):
        self.requests, self.answer = [], (200, {"ok": True})
        self.app = Flask("scripted")

        @self.app.route("/<path:path>", methods=["GET", "POST", "PUT"])
        def any_path(path):
            self.requests.append({"method": request.method, "path": request.environ["RAW_URI"],
                                  "headers": dict(request.headers), "json": request.get_json(silent=True)})
            status, body = self.answer
            if isinstance(body, str):
                return body, status
            return jsonify(body), status


@pytest.fixture
def scripted(serve, tmp_path):
    dept = Scripted()
    url = serve(dept.app).url

    def connector(topic_toml: str, system_extra: str = "") -> HttpConnector:
        path = tmp_path / "c.toml"
        path.write_text(f'[systems.dept]\nbase_url = "{url}/api"\nauth = {{ type = "header", header = "X-Api-Key", '
                        f'value = "k1" }}\ntimeout_s = 0.5\nheaders = {{ X-Channel = "approvals" }}\n{system_extra}\n'
                        f'[topics.t]\nsystem = "dept"\n{topic_toml}', encoding="utf-8")
        return HttpConnector(connector_config.load(path, env={}).topics["t"])
    dept.connector = connector
    return dept


def test_request_mapping_builds_nested_bodies_from_variables_task_attributes_and_literals(scripted):
    connect = scripted.connector('path = "/cases/{$businessKey}/items/{item}"\n[topics.t.request]\n'
                                 '"enterprise.name" = "applicantName"\n"enterprise.rep" = "applicant.rep"\n'
                                 'kind = "=有限责任公司"\ncount = 3\noptional = "absent?"\ncase = "$processInstanceId"\n')
    scripted.answer = (200, {})
    t = ExternalTask(id="ext-5", topic_name="t", business_key="SZ/2025 1", process_instance_id="pi-9",
                     variables={"applicantName": "苏州某某", "applicant": {"rep": "张三"}, "item": "a b"})
    assert connect(t) == {}
    [sent] = scripted.requests
    assert sent["method"] == "POST" and sent["path"] == "/api/cases/SZ%2F2025%201/items/a%20b"
    assert sent["json"] == {"enterprise": {"name": "苏州某某", "rep": "张三"}, "kind": "有限责任公司", "count": 3,
                            "case": "pi-9"}
    assert sent["headers"]["Idempotency-Key"] == "ext-5"
    assert sent["headers"]["X-Api-Key"] == "k1" and sent["headers"]["X-Channel"] == "approvals"


def test_a_get_sends_the_mapping_as_query_parameters(scripted):
    connect = scripted.connector('method = "GET"\npath = "/lookup"\n[topics.t.request]\ncode = "creditCode"\n'
                                 '[topics.t.response]\nstatus = "data.0.status"\n')
    scripted.answer = (200, {"data": [{"status": "存续"}]})
    assert connect(task("t", creditCode="914403001922038216")) == {"status": "存续"}
    assert scripted.requests[0]["path"] == "/api/lookup?code=914403001922038216"


def test_response_mapping_and_checks(scripted):
    connect = scripted.connector('path = "/r"\n[topics.t.response]\ncreditCode = "result.code"\n'
                                 'note = "result.note?"\n[topics.t.checks]\ncreditCode = "credit_code"\n')
    scripted.answer = (200, {"result": {"code": "914403001922038216"}})
    assert connect(task("t")) == {"creditCode": "914403001922038216"}
    scripted.answer = (200, {"result": {"code": "914403001922038217"}})
    with pytest.raises(Failure) as err:
        connect(task("t"))
    assert err.value.retries == 0 and "invalid creditCode" in err.value.message
    scripted.answer = (200, {"result": {}})
    with pytest.raises(Failure, match="no 'result.code'") as err:
        connect(task("t"))
    assert err.value.retries == 0
    scripted.answer = (200, "<html>gateway</html>")
    with pytest.raises(Failure, match="not JSON"):
        connect(task("t"))


RULES = ('path = "/r"\n[[topics.t.errors]]\ncode = "E1001"\nbpmn_error = "MATERIALS_INCOMPLETE"\n'
         'variables = { missing = "data.missing" }\n'
         '[[topics.t.errors]]\nstatus = [409, 410]\nretry = true\n')


@pytest.mark.parametrize("status, body, outcome, retries", [
    (200, {"code": "E1001", "message": "材料不全", "data": {"missing": ["章程"]}}, "MATERIALS_INCOMPLETE", None),
    (400, {"code": "E1001", "message": "材料不全", "data": {"missing": ["章程"]}}, "MATERIALS_INCOMPLETE", None),
    (409, {"code": "BUSY"}, Failure, None),            # rule: retry = true
    (400, {"code": "E2000", "message": "bad"}, Failure, 0),
    (429, {}, Failure, None),
    (500, "oops", Failure, None),
    (200, {"code": "E2000"}, None, None),               # a code in a success matches only rules naming it
])
def test_error_rules_and_defaults(scripted, status, body, outcome, retries):
    connect = scripted.connector(RULES)
    scripted.answer = (status, body)
    if outcome is None:
        assert connect(task("t")) == {}
    elif outcome is Failure:
        with pytest.raises(Failure) as err:
            connect(task("t"))
        assert err.value.retries == retries and str(status) in err.value.message
    else:
        with pytest.raises(BpmnError) as err:
            connect(task("t"))
        assert err.value.code == outcome and err.value.message == "材料不全"
        assert err.value.variables == {"missing": ["章程"]}


def test_a_slow_or_unreachable_department_is_a_transient_failure(scripted, serve):
    slow = create_sandbox(SandboxConfig(latency_ms=(1500, 1500)))
    url = serve(slow).url
    loaded = connector_config.load(connector_config.DEFAULT_PATH, env={"NOTIFY_URL": url + "/notify"})
    topic = loaded.topics["notify.applicant"]
    import dataclasses
    quick = dataclasses.replace(topic, system=dataclasses.replace(topic.system, timeout_s=0.3))
    with pytest.raises(Failure, match="no answer .* within 0.3 s") as err:
        HttpConnector(quick)(task("notify.applicant", applicantName="x"))
    assert err.value.retries is None
    gone = dataclasses.replace(topic, system=dataclasses.replace(topic.system, base_url="http://127.0.0.1:9"))
    with pytest.raises(Failure, match="cannot reach") as err:
        HttpConnector(gone)(task("notify.applicant", applicantName="x"))
    assert err.value.retries is None
    json.dumps(err.value.message)
