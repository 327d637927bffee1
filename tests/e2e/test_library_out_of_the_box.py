"""After a plain `make run` every process of the library can be driven to completion by someone
who knows nothing but the forms: a robot reads each start form and task form from the API, fills
it with values the form accepts (defaults, first options, samples for patterned fields), the
department systems answer their external tasks, and the bank answers by message."""
from __future__ import annotations

import pytest

from tests.conftest import typed
from tests.e2e.conftest import WORKER

pytestmark = pytest.mark.usefixtures("state_storage")      # tests/e2e/conftest.py

SAMPLES = {                 # fields whose pattern a generic value would not meet
    "creditCode": "91320594MA27ABCD1X", "projectCode": "2511-320500-04-01-123456", "regionCode": "320594",
    "review.key": "planning", "review.limit": "5wd", "review.verificationLimit": "20wd",
    "applicantPhone": "13800138000",
}
ANSWERS = {                 # what each department system returns (see workers/connectors.toml)
    "market.registration": {"creditCode": "91320594MA27ABCD1X", "marketRegistrationNo": "320594000000001"},
    "police.seal": {"sealIds": ["3205940000001", "3205940000002"]},
    "tax.invoice": {"invoiceQuota": {"monthlyCount": 25}, "taxUKeyNo": "UK-0001"},
    "hrss.social_security": {"socialSecurityNo": "SB-0001"},
    "housing_fund.registration": {"fundAccountNo": "GJJ-0001"},
    "bank.account_reservation": {"bankReservationId": "RSV-0001", "bankReservationStatus": "accepted"},
    "licence.issue": {"eLicenceId": "EL-0001"},
    "realestate.push": {"realEstateReceiptNo": "BDC-0001"},
    "notify.applicant": {"notificationId": "SMS-0001", "notificationChannel": "sms"},
}


def inputs(components):
    for component in components:
        if component.get("components"):
            yield from inputs(component["components"])
        elif component.get("key") and not component.get("readonly") and not component.get("disabled"):
            yield component


def value_for(component):
    """A value the form accepts, as a person using it would give one."""
    kind, key = component["type"], component["key"]
    if "defaultValue" in component:
        return component["defaultValue"]
    if key in SAMPLES:
        return SAMPLES[key]
    options = [o["value"] for o in component.get("values", [])]
    validate = component.get("validate") or {}
    if kind in ("radio", "select"):
        return options[0]
    if kind in ("checklist", "taglist"):
        return options[:1]
    if kind == "checkbox":
        return True
    if kind == "number":
        return max(validate.get("min", 1), 1)
    if kind == "datetime":
        return "2025-11-05"
    if validate.get("validationType") == "phone":
        return "+8613800138000"
    return "示例内容"


def fill(form: dict) -> dict:
    values: dict = {}
    for component in inputs(form["components"]):
        *path, last = component["key"].split(".")
        target = values
        for segment in path:
            target = target.setdefault(segment, {})
        target[last] = value_for(component)
    return values


class Robot:
    def __init__(self, gov):
        self.gov, self.admin = gov, gov.admin

    def start(self, key: str, business_key: str) -> str:
        r = self.admin.get(f"/engine-rest/process-definition/key/{key}/deployed-start-form")
        assert r.status_code == 200, r.get_json()
        return self.gov.start(key, business_key, **fill(r.get_json()))

    def work_user_tasks(self, case: str) -> int:
        done = 0
        for task in self.gov.tasks(case):
            form = self.admin.get(f"/engine-rest/task/{task['id']}/deployed-form")
            assert form.status_code == 200, (task["taskDefinitionKey"], form.get_json())
            self.gov.complete_task(task, **fill(form.get_json()))
            done += 1
        return done

    def work_external_tasks(self, business_key: str) -> int:
        worker = self.gov.worker
        r = worker.post("/engine-rest/external-task/fetchAndLock", json={
            "workerId": WORKER, "maxTasks": 50,
            "topics": [{"topicName": topic, "lockDuration": 60000, "businessKey": business_key}
                       for topic in ANSWERS]})
        assert r.status_code == 200, r.get_json()
        fetched = r.get_json()
        for task in fetched:
            r = worker.post(f"/engine-rest/external-task/{task['id']}/complete",
                            json={"workerId": WORKER, "variables": typed(**ANSWERS[task["topicName"]])})
            assert r.status_code == 204, r.get_json()
            if task["topicName"] == "bank.account_reservation":      # the bank answers later
                assert self.gov.message("bank.account_opened", business_key, bankAccountNo="6222000000000001",
                                        bankName="中国工商银行").status_code == 204
        return len(fetched)

    def drive(self, case: str, business_key: str, rounds: int = 60) -> list:
        worked = []
        for _ in range(rounds):
            if self.gov.state(case) != "ACTIVE":
                return worked
            worked += [t["taskDefinitionKey"] for t in self.gov.tasks(case)]
            if not (self.work_user_tasks(case) + self.work_external_tasks(business_key)):
                break
        assert self.gov.state(case) == "COMPLETED", (self.gov.open_keys(case), self.gov.waiting_topics(business_key))
        return worked


@pytest.mark.parametrize("key", ["enterprise_opening", "construction_permit", "joint_acceptance",
                                 "department_review", "commitment_verification"])
def test_every_process_runs_to_completion_on_the_values_its_forms_accept(gov, key):
    gov.at("2025-11-03T10:00:00+08:00")
    robot = Robot(gov)
    case = robot.start(key, f"ROBOT-{key}")
    worked = robot.drive(case, f"ROBOT-{key}")
    assert gov.state(case) == "COMPLETED"
    if key == "construction_permit":       # the robot takes first options: 告知承诺, hence verifications too
        assert {"Task_intake_planning", "Task_commitment", "Task_verify", "Task_intake", "Task_opinion",
                "Task_window_issue"} <= set(worked)
        assert gov.variables(case)["caseOutcome"]["result"] == "approved"


def test_the_library_deploys_as_one_unit_and_an_unchanged_restart_deploys_nothing(gov, engine, settings, capsys):
    from app import deploy_files, library_files
    definitions = gov.admin.get("/engine-rest/process-definition").get_json()
    assert sorted(d["key"] for d in definitions) == ["commitment_verification", "construction_permit",
                                                     "department_review", "enterprise_opening", "joint_acceptance",
                                                     "review_supervision"]
    deploy_files(engine, library_files(settings))
    assert "library unchanged" in capsys.readouterr().out
    resources = gov.admin.get(f"/engine-rest/deployment/{definitions[0]['deploymentId']}/resources").get_json()
    assert "items.json" in {r["name"] for r in resources}
