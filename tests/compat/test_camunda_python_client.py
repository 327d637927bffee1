"""The unmodified `camunda-external-task-client-python3` (PyPI, pinned in
requirements-dev.txt) against a real server over HTTP: one topic completed, one answered
with a BPMN error that follows the error boundary, one failed until an incident opens."""
from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.conftest import ADMIN

camunda_worker = pytest.importorskip("camunda.external_task.external_task_worker",
                                     reason="pip install -r requirements-dev.txt")

BPMN = Path(__file__).parent / "three_topics.bpmn"
WORKER = ("tax_system", "worker-pw")


def _setup(base: str) -> str:
    admin = requests.Session()
    admin.auth = ADMIN
    with BPMN.open("rb") as bpmn:
        deployed = admin.post(f"{base}/deployment/create", files={"diagram": bpmn}, data={"deployment-name": "compat"})
    assert deployed.status_code == 200, deployed.text
    if not admin.get(f"{base}/group", params={"id": "external-workers"}).json():
        assert admin.post(f"{base}/group/create", json={"id": "external-workers", "name": "workers"}).status_code == 204
    assert admin.post(f"{base}/user/create", json={"profile": {"id": WORKER[0]},
                                                   "credentials": {"password": WORKER[1]}}).status_code == 204
    assert admin.put(f"{base}/group/external-workers/members/{WORKER[0]}").status_code == 204
    started = admin.post(f"{base}/process-definition/key/client_compat/start",
                         json={"businessKey": "COMPAT-1", "variables": {"amount": {"value": 1200, "type": "Integer"}}})
    assert started.status_code == 200, started.text
    return started.json()["id"]


def test_the_camunda_python_client_completes_raises_bpmn_errors_and_fails_until_an_incident(server):
    instance_id = _setup(server)
    config = {"auth_basic": {"username": WORKER[0], "password": WORKER[1]}, "maxTasks": 1,
              "lockDuration": 10_000, "asyncResponseTimeout": 2_000, "retries": 2, "retryTimeout": 0,
              "sleepSeconds": 0}
    worker = camunda_worker.ExternalTaskWorker(worker_id="compat-worker", base_url=server, config=config)
    seen = {}

    def register(task):
        seen["amount"] = task.get_variable("amount")
        seen["business_key"] = task.get_business_key()
        return task.complete({"creditCode": "91320500MA1XXXXX0X"})

    def seal(task):
        return task.bpmn_error("SEAL_REFUSED", "the seal office refused", {"sealReason": "name mismatch"})

    def tax(task):
        return task.failure("tax bureau unavailable", "HTTP 503 from the tax bureau", max_retries=2, retry_timeout=0)

    worker.fetch_and_execute("compat-register", register)
    worker.fetch_and_execute("compat-seal", seal)
    failures = 0
    while failures < 5:
        try:
            worker.fetch_and_execute("compat-tax", tax)
        except camunda_worker.NoExternalTaskFound:
            break
        failures += 1
    assert failures == 3                 # retries 2, then 1, then 0: the incident stops further fetches

    admin = requests.Session()
    admin.auth = ADMIN
    assert seen == {"amount": 1200, "business_key": "COMPAT-1"}
    variables = admin.get(f"{server}/process-instance/{instance_id}/variables").json()
    assert variables["creditCode"]["value"] == "91320500MA1XXXXX0X"
    assert variables["sealReason"]["value"] == "name mismatch"
    tasks = admin.get(f"{server}/task", params={"processInstanceId": instance_id}).json()
    assert sorted(t["taskDefinitionKey"] for t in tasks) == ["Task_review", "Task_seal_by_hand"]
    [incident] = admin.get(f"{server}/incident", params={"processInstanceId": instance_id}).json()
    assert incident["incidentType"] == "failedExternalTask" and incident["activityId"] == "Task_tax"
    assert incident["incidentMessage"] == "tax bureau unavailable"
    [stuck] = admin.get(f"{server}/external-task", params={"processInstanceId": instance_id}).json()
    assert stuck["activityId"] == "Task_tax" and stuck["retries"] == 0
    details = admin.get(f"{server}/external-task/{stuck['id']}/errorDetails")
    assert details.text == "HTTP 503 from the tax bureau"
