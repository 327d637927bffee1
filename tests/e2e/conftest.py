"""End-to-end scenarios of the reform process library (bpmn/ + forms/), through the HTTP API only.

The library is deployed exactly as `make run` deploys it (`app.deploy_files(library_files)`).
Department officers, window staff, supervisors and department systems (external-task workers)
are users of the API; the test clock is moved, never slept through.
"""
from __future__ import annotations

import copy
import json
import time
from datetime import datetime

import pytest

from app import deploy_files, library_files
from tests.conftest import Client, typed

WORKER = "dept-systems"


@pytest.fixture(params=["document", "rows"])
def state_storage(request, monkeypatch):
    """The reform scenarios run twice: as small cases are kept, with each case's state in
    one JSON document (below APPROVALS_STATE_ROWS_FROM tasks), and as big cases are, with
    every case's tasks in instance_task rows from its first task on and its finished tasks
    sealed (workflows.SEAL_FROM).  The suite's check mode reads the rows back after every
    save (engine/runtime.py, _check_stored) and compares every dump with SpiffWorkflow's."""
    from engine import workflows
    if request.param == "rows":
        monkeypatch.setattr(workflows, "ROWS_FROM", 0)
        monkeypatch.setattr(workflows, "SEAL_FROM", 0)
    return request.param


@pytest.fixture
def settings(settings):
    settings.test_clock = True
    return settings


LIBRARY_DEPLOYED_AT = "2025-10-09T09:00:00+08:00"


@pytest.fixture
def library(engine, settings):
    """bpmn/*.bpmn, bpmn/*.json and forms/*.form in one deployment, as `make run` does.

    Deployed on the test clock before the scenarios' dates, so that a configuration a
    scenario redeploys later is the newer one."""
    engine.clock.set(datetime.fromisoformat(LIBRARY_DEPLOYED_AT))
    deploy_files(engine, library_files(settings))


@pytest.fixture
def gov(client, library) -> "Gov":
    return Gov(client)


def eventually(check, timeout=10.0):
    """The scheduler fires timers in its own thread: wait (bounded) for its commit."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > end:
            return value
        time.sleep(0.05)


class Gov:
    """The departments, the window, the supervisors and the department systems."""

    def __init__(self, admin: Client) -> None:
        self.admin = admin
        self._officers: dict[str, Client] = {}
        self.worker = admin.create_user(WORKER, groups=["external-workers"])

    def on(self, server: Client) -> "Gov":
        """The same people at another server on the same database (restarted_server)."""
        other = copy.copy(self)
        other.admin, other.worker = server, server.as_user(*self.worker.user)
        other._officers = {department: server.as_user(*officer.user) for department, officer in self._officers.items()}
        return other

    def officer(self, department: str) -> Client:
        """`<department>1`, a member of the department's group (made on first use)."""
        if department not in self._officers:
            self._officers[department] = self.admin.create_user(f"{department}1", groups=[department])
        return self._officers[department]

    # --- clock ---------------------------------------------------------------------------
    def at(self, now: str) -> None:
        r = self.admin.put("/api/v1/test/clock", json={"now": now})
        assert r.status_code == 200, r.get_json()

    # --- cases ---------------------------------------------------------------------------
    def start(self, key: str, business_key: str, **variables) -> str:
        return self.admin.start(key, typed(**variables), business_key=business_key)["id"]

    def state(self, case: str) -> str:
        return self.admin.get(f"/engine-rest/history/process-instance/{case}").get_json()["state"]

    def variables(self, case: str) -> dict:
        """Process variables as plain values (history: also after the case ended)."""
        rows = self.admin.get("/engine-rest/history/variable-instance",
                              query_string={"processInstanceId": case}).get_json()
        values = {}
        for row in rows:
            value = row["value"]
            if row.get("type") == "Json" and isinstance(value, str):
                value = json.loads(value)
            values[row["name"]] = value
        return values

    def clocks(self, case: str, stage: str | None = None) -> list:
        r = self.admin.get(f"/api/v1/process-instance/{case}/legal-clocks")
        assert r.status_code == 200, r.get_json()
        return [c for c in r.get_json() if stage is None or c["stage"] == stage]

    def ended_at(self, case: str, activity: str) -> int:
        rows = self.admin.get("/engine-rest/history/activity-instance",
                              query_string={"processInstanceId": case, "activityId": activity}).get_json()
        return len([r for r in rows if r.get("endTime")])

    # --- user tasks ----------------------------------------------------------------------
    def tasks(self, case: str, key: str | None = None, group: str | None = None) -> list:
        query = {"processInstanceId": case}
        if key:
            query["taskDefinitionKey"] = key
        found = self.admin.tasks(**query)
        return [t for t in found if group is None or group in t["candidateGroups"]]

    def task_variable(self, task: dict, name: str):
        r = self.admin.get(f"/engine-rest/task/{task['id']}/variables")
        assert r.status_code == 200, r.get_json()
        body = r.get_json()[name]
        return json.loads(body["value"]) if body.get("type") == "Json" else body["value"]

    def escalations(self, business_key: str) -> list:
        """The supervisors' open escalations (督办件, process review_supervision) of a case:
        each is a case of its own under the overdue case's business key."""
        return self.admin.tasks(processInstanceBusinessKey=business_key, processDefinitionKey="review_supervision")

    def open_keys(self, case: str) -> list:
        return sorted(t["taskDefinitionKey"] for t in self.tasks(case))

    def complete(self, case: str, key: str, group: str | None = None, **values) -> dict:
        """The officer of the task's department claims it and completes it through its form."""
        tasks = self.tasks(case, key, group)
        assert len(tasks) == 1, (key, group, [t["candidateGroups"] for t in tasks])
        return self.complete_task(tasks[0], **values)

    def complete_all(self, case: str, key: str, **values) -> list:
        """Every open task of this activity (multi-instance: each department its own)."""
        tasks = self.tasks(case, key)
        assert tasks, f"no open {key} in case {case}: {self.open_keys(case)}"
        return [self.complete_task(t, **values) for t in tasks]

    def complete_task(self, task: dict, **values) -> dict:
        department = task["candidateGroups"][0]
        officer = self.officer(department)
        r = officer.post(f"/engine-rest/task/{task['id']}/claim", json={"userId": f"{department}1"})
        assert r.status_code == 204, r.get_json()
        r = officer.post(f"/engine-rest/task/{task['id']}/complete", json={"variables": typed(**values)})
        assert r.status_code == 204, (task["taskDefinitionKey"], r.get_json())
        return task

    # --- department systems (external tasks) ---------------------------------------------
    def fetch(self, topic: str, business_key: str) -> list:
        r = self.worker.post("/engine-rest/external-task/fetchAndLock", json={
            "workerId": WORKER, "maxTasks": 50,
            "topics": [{"topicName": topic, "lockDuration": 60000, "businessKey": business_key}]})
        assert r.status_code == 200, r.get_json()
        return r.get_json()

    def answer(self, topic: str, business_key: str, **values) -> dict:
        """The department system serving `topic` does the case's work and answers."""
        tasks = self.fetch(topic, business_key)
        assert len(tasks) == 1, (topic, tasks)
        r = self.worker.post(f"/engine-rest/external-task/{tasks[0]['id']}/complete",
                             json={"workerId": WORKER, "variables": typed(**values)})
        assert r.status_code == 204, r.get_json()
        return tasks[0]

    def refuse(self, topic: str, business_key: str, code: str, **values) -> None:
        [task] = self.fetch(topic, business_key)
        r = self.worker.post(f"/engine-rest/external-task/{task['id']}/bpmnError",
                             json={"workerId": WORKER, "errorCode": code, "variables": typed(**values)})
        assert r.status_code == 204, r.get_json()

    def waiting_topics(self, business_key: str) -> list:
        rows = self.admin.get("/engine-rest/external-task",
                              query_string={"businessKey": business_key}).get_json()
        return sorted(r["topicName"] for r in rows)

    def message(self, name: str, business_key: str, **values):
        return self.worker.post("/engine-rest/message", json={
            "messageName": name, "businessKey": business_key, "processVariables": typed(**values)})


# --- what applicants and officers type into the forms ------------------------------------------

APPROVE = {"decision": "approve", "opinion": "符合法定条件，同意"}


def project(project_class="social", risk_grade="general", **more) -> dict:
    """The construction_application start form (工程建设项目审批一表申请)."""
    return {"projectName": "苏州某产业园研发楼", "projectCode": "2511-320500-04-01-123456",
            "applicantName": "苏州某某科技有限公司", "creditCode": "91320594MA27ABCD1X",
            "applicantPhone": "+8613800138000", "projectClass": project_class, "riskGrade": risk_grade,
            "floorArea": 8000, "investment": 12000, "address": "苏州工业园区星湖街 1 号", **more}


def intake(mode="normal", commitment="no", decision="accept", **more) -> dict:
    """The stage_intake form (阶段一口受理)."""
    return {"intakeDecision": decision, "acceptanceMode": mode, "commitment": commitment, "creditBarred": "no",
            "intakeOpinion": "材料齐全，予以受理" if mode == "normal" else "次要材料容缺，先行受理",
            **({"missingMaterials": "节能评估报告"} if mode == "deficiency" else {}), **more}


def issue(permit_no: str, land_contract_signed="no") -> dict:
    return {"permitNo": permit_no, "landContractSigned": land_contract_signed, "issueOpinion": "准予核发"}


def enterprise(items=("registration", "seal", "invoice", "social_security", "housing_fund"),
               enterprise_type="llc_other", **more) -> dict:
    """The enterprise_opening_application start form (企业开办一表申请)."""
    return {"applicantName": "苏州星湖智能科技有限公司", "enterpriseType": enterprise_type,
            "registeredCapital": 100, "legalRepresentative": "张三", "applicantPhone": "+8613800138000",
            "address": "苏州工业园区星湖街 328 号", "businessScope": "软件开发；信息技术咨询服务",
            "items": list(items), **more}
