"""The library with the department systems running: the server on a real port, the
department-system sandbox (`python app.py sandbox`) and the workers with the shipped connector
file (`python app.py worker`), in threads.  Only the window and the officers act through the
API; everything else is the departments' systems answering, the bank calling back late."""
from __future__ import annotations

from datetime import datetime

import logging
import threading

import pytest
from werkzeug.serving import make_server

from tests.e2e.conftest import APPROVE, enterprise, eventually, intake, issue, project
from workers import RetryPolicy, credit_code
from workers import config as connector_config
from workers.config import AuthConfig, SandboxConfig
from workers.connectors import build_worker
from workers.sandbox import create_sandbox

pytestmark = pytest.mark.usefixtures("state_storage")      # tests/e2e/conftest.py

GATEWAY = ("dept_gateway", "gw-secret")          # the department systems' account (external-workers)


class Served:
    """A WSGI app on 127.0.0.1:<free port> in a thread."""

    def __init__(self, app) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def departments(app, gov):
    """Server, sandbox and workers up; the bank calls back 1 s after the reservation."""
    server = Served(app)
    engine_url = server.url + "/engine-rest"
    gov.admin.create_user(GATEWAY[0], ["external-workers"], password=GATEWAY[1])
    sandbox_app = create_sandbox(SandboxConfig(token="sandbox-token", callback_delay_s=1.0, engine_url=engine_url,
                                               engine_auth=AuthConfig("basic", *GATEWAY)), seed=5)
    sandbox = Served(sandbox_app)
    env = dict(SANDBOX_URL=sandbox.url, APPROVALS_ENGINE_URL=engine_url, WORKER_USER=GATEWAY[0],
               WORKER_PASSWORD=GATEWAY[1])
    config = connector_config.load(connector_config.DEFAULT_PATH, env=env)
    worker = build_worker(config, async_response_timeout=1_000,
                          retry=RetryPolicy(retries=2, initial_ms=50)).start()
    yield sandbox_app.extensions["sandbox"]
    worker.stop(timeout=10)
    sandbox.close()
    server.close()


def test_enterprise_opening_runs_on_the_department_systems_and_the_banks_late_callback(gov, departments):
    gov.at("2025-11-03T10:00:00+08:00")
    bk = "QY-2025-1001"
    case = gov.start("enterprise_opening", bk, **enterprise(
        items=["registration", "seal", "invoice", "social_security", "housing_fund", "bank"], bankCode="ICBC"))
    gov.complete(case, "Task_accept", accepted="yes", acceptanceOpinion="一表申请材料齐全")

    assert eventually(lambda: gov.state(case) == "COMPLETED", timeout=20)
    # the bank accepted the reservation, called back (at least) a second later, and the licence
    # waited for that callback (read from history, not raced against the sandbox's timer).
    # The second runs from the reservation, which the worker made after Task_bank started
    # and before the engine recorded it ended: measure from the start.
    history = {a["activityId"]: a for a in gov.admin.get(
        "/engine-rest/history/activity-instance", query_string={"processInstanceId": case}).get_json()}
    when = {k: datetime.fromisoformat(history[k][f].replace("+0800", "+08:00"))
            for k, f in (("Task_bank", "startTime"), ("Catch_bank_opened", "endTime"), ("Task_licence", "startTime"))}
    assert (when["Catch_bank_opened"] - when["Task_bank"]).total_seconds() >= 0.99
    assert when["Task_licence"] >= when["Catch_bank_opened"]

    values = gov.variables(case)
    assert credit_code.is_valid(values["creditCode"])
    assert len(values["sealIds"]) == 4 and values["eLicenceId"] and values["fundAccountNo"]
    assert values["bankAccountNo"]                                 # from the bank's callback message
    assert values["notificationChannel"] == "sms"
    assert [c["status"] for c in departments.stats()["callbacks"]] == ["delivered"]
    [clock] = gov.clocks(case, "opening")
    assert clock["outcome"] == "decided" and clock["status"] == "green"


def test_construction_permit_pushes_the_joint_acceptance_opinion_to_real_estate_registration(gov, departments):
    gov.at("2025-11-03T10:00:00+08:00")
    bk = "GC-2025-1001"
    case = gov.start("construction_permit", bk, **project(project_class="low_risk", risk_grade="low"))
    for stage, permit in (("planning", "地字第1001号"), ("engineering", "建字第1001号"),
                          ("construction", "施字第1001号")):
        gov.complete(case, f"Task_intake_{stage}", **intake())
        gov.complete_all(case, "Task_review", **APPROVE)
        gov.complete(case, f"Task_issue_{stage}", **issue(permit))
    gov.complete(case, "Task_intake", intakeDecision="accept", acceptanceMode="one_stop", unitWorkList="门卫室",
                 intakeOpinion="受理")
    gov.complete_all(case, "Task_inspect_all", inspectionMethod="onsite", inspectedOn="2025-12-01",
                     inspectionFindings="符合要求")
    gov.complete_all(case, "Task_review", **APPROVE)
    gov.complete_all(case, "Task_opinion", acceptanceResult="qualified", opinionNo="联验〔2025〕1001号",
                     jointOpinionText="联合验收合格")
    assert eventually(lambda: gov.open_keys(case) == ["Task_window_issue"])     # pushed and notified
    assert gov.variables(case)["realEstateReceiptNo"]
    gov.complete(case, "Task_window_issue", resultNote="统一出件")
    assert eventually(lambda: gov.state(case) == "COMPLETED")
    assert gov.variables(case)["caseOutcome"]["result"] == "approved"
