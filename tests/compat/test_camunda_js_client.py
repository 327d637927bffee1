"""The unmodified Camunda external-task client for JavaScript (npm
`camunda-external-task-client-js` 3.1.0, pinned by tests/compat/js/package-lock.json)
against a real server over HTTP: tests/compat/js/exercise.mjs completes with typed
variables, local and transient ones, raises a BPMN error, fails with retries and a retry
timeout until an incident opens, fails without retries, extends a lock, unlocks and locks.
Every call must resolve, and its effect is checked here through the REST API.

The client is installed once, by `npm ci`, into tests/compat/js/node_modules (ignored by
git, reused by later runs).  Without node and npm, or without the npm registry, the test
is skipped."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from tests.conftest import ADMIN

JS = Path(__file__).parent / "js"
BPMN = Path(__file__).parent / "js_client.bpmn"
CLIENT = JS / "node_modules" / "camunda-external-task-client-js" / "package.json"
WORKER = ("js_worker", "worker-pw")
# the same process in an older version (camunda:versionTag "js-0"), with only the task of
# the topic the worker subscribes to with the version tag "js-1": it must be left alone
OLDER = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="Defs_js_old" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="js_client_compat" isExecutable="true" camunda:versionTag="js-0">
    <bpmn:startEvent id="StartEvent_1"><bpmn:outgoing>F1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:serviceTask id="Task_register" camunda:type="external" camunda:topic="js-register">
      <bpmn:incoming>F1</bpmn:incoming><bpmn:outgoing>F2</bpmn:outgoing>
    </bpmn:serviceTask>
    <bpmn:endEvent id="End_1"><bpmn:incoming>F2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="StartEvent_1" targetRef="Task_register" />
    <bpmn:sequenceFlow id="F2" sourceRef="Task_register" targetRef="End_1" />
  </bpmn:process>
</bpmn:definitions>
"""
NETWORK_ERRORS = ("ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "ECONNREFUSED", "ECONNRESET", "ENETUNREACH",
                  "network", "offline")


def _node_client() -> str:
    """The node executable, with the client installed; skips when that cannot be."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("the Camunda JS client test needs node and npm on PATH")
    if not CLIENT.exists():
        installed = subprocess.run([npm, "ci", "--prefix", str(JS), "--prefer-offline", "--no-audit", "--no-fund",
                                    "--fetch-retries=1", "--fetch-retry-mintimeout=2000", "--fetch-retry-maxtimeout=5000"],
                                   capture_output=True, text=True, timeout=600)
        if installed.returncode != 0:
            output = installed.stdout + installed.stderr
            if any(sign in output for sign in NETWORK_ERRORS):
                pytest.skip("npm ci could not reach the npm registry to install camunda-external-task-client-js")
            pytest.fail(f"npm ci --prefix {JS} failed:\n{output[-3000:]}")
    return node


def _deploy_and_start(admin: requests.Session, base: str, bpmn, business_key: str, variables=None) -> str:
    deployed = admin.post(f"{base}/deployment/create", files={"diagram": ("js_client.bpmn", bpmn)},
                          data={"deployment-name": "js"})
    assert deployed.status_code == 200, deployed.text
    started = admin.post(f"{base}/process-definition/key/js_client_compat/start",
                         json={"businessKey": business_key, "variables": variables or {}})
    assert started.status_code == 200, started.text
    return started.json()["id"]


def _setup(base: str) -> tuple[requests.Session, str, str]:
    """(an admin session, the case the worker works on, the case of the older version)."""
    admin = requests.Session()
    admin.auth = ADMIN
    older = _deploy_and_start(admin, base, OLDER.encode(), "JS-0")
    case = _deploy_and_start(admin, base, BPMN.read_bytes(), "JS-1", {
        "amount": {"value": 1200, "type": "Integer"}, "applicant": {"value": "苏州某某科技有限公司", "type": "String"}})
    if not admin.get(f"{base}/group", params={"id": "external-workers"}).json():
        assert admin.post(f"{base}/group/create", json={"id": "external-workers", "name": "workers"}).status_code == 204
    assert admin.post(f"{base}/user/create", json={"profile": {"id": WORKER[0]},
                                                   "credentials": {"password": WORKER[1]}}).status_code == 204
    assert admin.put(f"{base}/group/external-workers/members/{WORKER[0]}").status_code == 204
    return admin, case, older


def test_the_camunda_js_client_resolves_every_call_and_each_has_its_effect(server):
    node = _node_client()
    admin, instance_id, older = _setup(server)
    ran = subprocess.run([node, str(JS / "exercise.mjs"), "--base-url", server, "--user", WORKER[0],
                          "--password", WORKER[1], "--timeout-ms", "30000"],
                         capture_output=True, text=True, timeout=60)
    assert ran.stdout, ran.stderr
    report = json.loads(ran.stdout)
    assert ran.returncode == 0 and not report["timedOut"], report
    rejected = [c for c in report["calls"] if not c["resolved"]]
    assert rejected == [], rejected
    assert sorted((c["topic"], c["call"]) for c in report["calls"]) == [
        ("js-archive", "extendLock"), ("js-archive", "lock"), ("js-archive", "unlock"),
        ("js-notify", "handleFailure(no retries)"), ("js-register", "complete"),
        ("js-seal", "handleBpmnError"),
        ("js-tax", "handleFailure(retries 0)"), ("js-tax", "handleFailure(retries 1, retryTimeout 300)")]
    assert report["errors"] == []

    # what the worker was given: the variables, the business key, the version tag it filtered
    # by (the older version's task of the same topic was not fetched)
    [seen] = report["seen"]["js-register"]
    assert seen["variables"] == {"amount": 1200, "applicant": "苏州某某科技有限公司"}
    assert seen["businessKey"] == "JS-1" and seen["processDefinitionVersionTag"] == "js-1"
    [untouched] = admin.get(f"{server}/external-task", params={"processInstanceId": older}).json()
    assert untouched["workerId"] is None and untouched["processDefinitionVersionTag"] == "js-0"

    # complete: typed process variables; the local one and the transient ones are not in the case
    variables = admin.get(f"{server}/process-instance/{instance_id}/variables").json()
    assert {name: (v["type"], v["value"]) for name, v in variables.items()} == {
        "amount": ("Integer", 1200), "applicant": ("String", "苏州某某科技有限公司"),
        "creditCode": ("String", "91320500MA1XXXXX0X"), "employees": ("Integer", 42),
        "registeredCapital": ("Long", 5000000000), "shareRatio": ("Double", 0.25), "approved": ("Boolean", True),
        "address": ("Json", json.dumps({"city": "苏州", "zip": "215000"}, ensure_ascii=False)),
        "registeredAt": ("Date", "2025-09-26T10:00:00.000+0800"), "sealReason": ("String", "name mismatch")}
    history = admin.get(f"{server}/history/variable-instance", params={"processInstanceId": instance_id}).json()
    assert {"rawReceipt", "fastTrack", "otp"}.isdisjoint(row["name"] for row in history)
    # the transient fastTrack took the gateway's fast branch; the BPMN error the boundary path
    tasks = admin.get(f"{server}/task", params={"processInstanceId": instance_id}).json()
    assert sorted(t["taskDefinitionKey"] for t in tasks) == ["Task_fast_track", "Task_seal_by_hand"]

    # handleFailure: retries 1 and the retry timeout, fetched again, then retries 0: an incident;
    # a failure without retries: Camunda's default 0, an incident too
    first = report["observed"]["afterFirstFailure"]
    assert first["retries"] == 1 and first["errorMessage"] == "tax bureau unavailable"
    assert report["observed"]["refetchedRetries"] == 1
    incidents = admin.get(f"{server}/incident", params={"processInstanceId": instance_id}).json()
    assert sorted((i["activityId"], i["incidentMessage"]) for i in incidents) == [
        ("Task_notify", "SMS gateway refused the number"), ("Task_tax", "tax bureau still unavailable")]
    tax = admin.get(f"{server}/external-task", params={"processInstanceId": instance_id,
                                                        "activityId": "Task_tax"}).json()
    assert tax[0]["retries"] == 0
    assert admin.get(f"{server}/external-task/{tax[0]['id']}/errorDetails").text == "HTTP 503 again"

    # extendLock moved the expiry; unlock cleared the lock; lock took it again for the worker
    observed = report["observed"]
    assert observed["fetched"]["workerId"] == "js-compat-worker"
    assert observed["afterExtendLock"]["lockExpirationTime"] > observed["fetched"]["lockExpirationTime"]
    assert observed["afterUnlock"]["workerId"] is None and observed["afterUnlock"]["lockExpirationTime"] is None
    assert observed["afterLock"]["workerId"] == "js-compat-worker"
    assert observed["afterLock"]["lockExpirationTime"] > observed["fetched"]["lockExpirationTime"]
    archive = admin.get(f"{server}/external-task/{observed['archiveTaskId']}").json()
    assert (archive["workerId"], archive["lockExpirationTime"]) == (
        "js-compat-worker", observed["afterLock"]["lockExpirationTime"])
