"""The workers, the shipped connector file and the sandbox against the real server over HTTP:
企业开办 runs from registration through the parallel departments and the bank's callback to
the e-licence; a taken name follows the error boundary; a department that keeps failing
opens an incident that setting retries again resolves."""
from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from engine.config import ROOT
from tests.conftest import typed
from workers import RetryPolicy, credit_code
from workers import config as connector_config
from workers.config import AuthConfig, SandboxConfig
from workers.connectors import build_worker
from workers.sandbox import create_sandbox
from workers.task import decode


OPENING = Path(__file__).parent / "fixtures" / "enterprise_opening.bpmn"
GATEWAY = ("dept_gateway", "gw-secret")


@pytest.fixture
def stack(app, client, serve):
    """The server on a free port, a department gateway user, the sandbox, and a connector file
    pointing at both (the environment a deployment would set)."""
    server = serve(app)
    engine_url = server.url + "/engine-rest"
    client.create_user(GATEWAY[0], ["external-workers"], password=GATEWAY[1])
    assert client.deploy(OPENING, name="opening").status_code == 200
    sandbox_app = create_sandbox(SandboxConfig(token="sandbox-token", callback_delay_s=0.05, engine_url=engine_url,
                                               engine_auth=AuthConfig("basic", *GATEWAY)), seed=1)
    dept = serve(sandbox_app)
    env = dict(SANDBOX_URL=dept.url, APPROVALS_ENGINE_URL=engine_url, WORKER_USER=GATEWAY[0],
               WORKER_PASSWORD=GATEWAY[1])

    class Stack:
        url, sandbox, environment = engine_url, sandbox_app.extensions["sandbox"], env
        config = connector_config.load(connector_config.DEFAULT_PATH, env=env)
        workers = []

        def worker(self, **overrides):
            overrides.setdefault("async_response_timeout", 1_000)
            overrides.setdefault("retry", RetryPolicy(retries=2, initial_ms=50))
            return self.workers.append(build_worker(self.config, **overrides).start()) or self.workers[-1]

        def start_case(self, business_key, **variables):
            return client.start("workers_opening", typed(**variables), business_key)

        def state(self, case):
            return client.get(f"/engine-rest/history/process-instance/{case['id']}").get_json()["state"]

        def wait(self, predicate, timeout=10.0):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if predicate():
                    return True
                time.sleep(0.05)
            return False

        def variables(self, case):
            rows = client.get("/engine-rest/history/variable-instance",
                              query_string={"processInstanceId": case["id"]}).get_json()
            return decode({row["name"]: {"value": row["value"], "type": row["type"]} for row in rows})

    made = Stack()
    yield made
    for worker in made.workers:
        worker.stop(timeout=10)


def test_enterprise_opening_completes_through_every_department_and_the_bank_callback(stack):
    stack.worker()
    case = stack.start_case("SZ-2025-0900", applicantName="苏州某某科技有限公司", applicantPhone="13800000000")
    assert stack.wait(lambda: stack.state(case) == "COMPLETED"), stack.state(case)
    variables = stack.variables(case)
    assert credit_code.is_valid(variables["creditCode"])
    assert len(variables["sealIds"]) == 4 and variables["invoiceQuota"]["monthlyCount"] == 25
    assert variables["taxUKeyNo"].startswith("TAXUK") and variables["socialSecurityNo"]
    assert variables["fundAccountNo"].startswith("GJJ") and variables["eLicenceId"].startswith("DZZZ-")
    assert variables["bankReservationStatus"] == "ACCEPTED"
    assert variables["bankAccountNo"].startswith("6222")                # from the bank's callback
    assert variables["notificationChannel"] == "sms"
    stats = stack.sandbox.stats()
    assert all(count == 1 for count in stats["effects"].values()) and len(stats["effects"]) == 8
    assert [c["status"] for c in stats["callbacks"]] == ["delivered"]


def test_a_taken_name_follows_the_error_boundary_to_the_window(stack, client):
    stack.worker()
    case = stack.start_case("SZ-2025-0901", applicantName="苏州重名科技有限公司")
    assert stack.wait(lambda: client.tasks(processInstanceId=case["id"]))
    [task] = client.tasks(processInstanceId=case["id"])
    assert task["taskDefinitionKey"] == "Task_rename"
    assert "已被登记" in stack.variables(case)["marketRejectReason"]
    assert stack.sandbox.stats()["effects"] == {}


def test_a_failing_department_opens_an_incident_and_new_retries_resolve_it(stack, client):
    stack.sandbox.config = dataclasses.replace(stack.sandbox.config, failure_rate=1.0)
    stack.worker(topics=["market.registration"], retry=RetryPolicy(retries=1, initial_ms=50))
    case = stack.start_case("SZ-2025-0902", applicantName="苏州某某科技有限公司")

    def incidents():
        return client.get("/engine-rest/incident", query_string={"processInstanceId": case["id"]}).get_json()
    assert stack.wait(lambda: incidents())
    [incident] = incidents()
    assert incident["incidentType"] == "failedExternalTask" and "503" in incident["incidentMessage"]
    [task] = client.get("/engine-rest/external-task", query_string={"processInstanceId": case["id"]}).get_json()
    assert task["retries"] == 0 and task["topicName"] == "market.registration"
    assert stack.sandbox.stats()["injectedFailures"] == 2          # the first try and one retry

    stack.sandbox.config = dataclasses.replace(stack.sandbox.config, failure_rate=0.0)
    assert client.put(f"/engine-rest/external-task/{task['id']}/retries", json={"retries": 1}).status_code == 204
    assert stack.wait(lambda: "creditCode" in stack.variables(case))
    assert incidents() == []


def test_the_worker_command_stops_cleanly_on_sigterm(stack, tmp_path):
    """`python app.py worker` against the server: it works a case, then SIGTERM ends it as soon
    as the long poll in flight (1 s) ends, not when its shutdown grace (60 s) runs out."""
    connectors = tmp_path / "connectors.toml"
    connectors.write_text(connector_config.DEFAULT_PATH.read_text(encoding="utf-8").replace(
        "async_response_timeout_ms = 5000", "async_response_timeout_ms = 1000").replace(
        "shutdown_grace_s = 10", "shutdown_grace_s = 60"), encoding="utf-8")
    env = {**os.environ, **stack.environment, "APPROVALS_CONNECTORS": str(connectors)}
    process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "worker", "--topics", "market.registration"],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        case = stack.start_case("SZ-2025-0903", applicantName="苏州某某科技有限公司")
        assert stack.wait(lambda: "creditCode" in stack.variables(case), timeout=15)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0            # half the grace: a stop that waited it out fails
    finally:
        if process.poll() is None:
            process.kill()
    output = process.stdout.read()
    assert "fetching market.registration" in output
    assert re.search(r"SIGTERM: stopping \(up to 60 s.*worker \S+ stopped", output, re.S), output


def test_wrong_worker_credentials_fetch_nothing(stack, client):
    bad = dataclasses.replace(stack.config, engine=dataclasses.replace(
        stack.config.engine, auth=AuthConfig("basic", user=GATEWAY[0], password="wrong")))
    worker = build_worker(bad, ["market.registration"], async_response_timeout=200).start()
    try:
        case = stack.start_case("SZ-2025-0904", applicantName="苏州某某科技有限公司")
        time.sleep(0.5)
        [task] = client.get("/engine-rest/external-task", query_string={"processInstanceId": case["id"]}).get_json()
        assert task["workerId"] is None
    finally:
        worker.stop(timeout=5)
    requests.get(stack.url + "/version", timeout=2)


def test_the_library_enterprise_opening_runs_on_the_shipped_connectors_and_sandbox(stack, client, engine, settings):
    """The reform library's own diagram (bpmn/enterprise_opening.bpmn), not a test fixture."""
    from app import deploy_files, library_files
    deploy_files(engine, library_files(settings))
    stack.worker()
    case = client.start("enterprise_opening", typed(
        applicantName="苏州某某科技有限公司", enterpriseType="llc_natural_person", registeredCapital=100000,
        legalRepresentative="张三", applicantPhone="+8613800000000", address="苏州工业园区星湖街328号",
        businessScope="软件开发；信息技术咨询服务", regionCode="320506", bankCode="ICBC", invoiceType="vat_general",
        items=["registration", "seal", "invoice", "social_security", "housing_fund", "bank"]), "QY-2025-0900")
    assert stack.wait(lambda: stack.state(case) == "COMPLETED", timeout=15), stack.state(case)
    variables = stack.variables(case)
    assert credit_code.is_valid(variables["creditCode"]) and variables["creditCode"][2:8] == "320506"
    assert variables["bankAccountNo"].startswith("6222") and variables["eLicenceId"].startswith("DZZZ-")
    assert variables["notificationChannel"] == "sms" and variables["bankName"] == "中国工商银行"
    assert variables["invoiceQuota"]["invoiceType"] == "增值税电子普通发票"
    assert len(stack.sandbox.stats()["effects"]) == 8
