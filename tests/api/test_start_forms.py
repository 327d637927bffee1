"""Starting a case as Camunda Tasklist does (POST /process-definition/.../submit-form)."""
from __future__ import annotations

import pytest

from tests.conftest import ROOT, typed

QUICKSTART = ROOT / "examples" / "quickstart" / "parallel_review.bpmn"
FORMS = [ROOT / "forms" / "department_review.form", ROOT / "forms" / "application_intake.form"]
APPLICATION = {"applicantName": "苏州某某科技有限公司", "creditCode": "91320500MA1XXXXX0X"}


# --- POST /process-definition/.../submit-form --------------------------------------

@pytest.fixture
def quickstart(client):
    assert client.deploy(QUICKSTART, *FORMS, name="quickstart").status_code == 200
    return client


@pytest.mark.parametrize("by", ["key", "id"])
def test_tasklist_starts_a_case_through_submit_form_as_through_start(quickstart, by):
    path = "/engine-rest/process-definition/key/quickstart_review"
    if by == "id":
        path = f"/engine-rest/process-definition/{quickstart.get(path).get_json()['id']}"
    r = quickstart.post(f"{path}/submit-form", json={"variables": typed(**APPLICATION), "businessKey": "SZ-1"})
    assert r.status_code == 200, r.get_json()
    case = r.get_json()
    assert case["businessKey"] == "SZ-1" and case["definitionKey"] == "quickstart_review" and not case["ended"]
    assert case["links"][0]["href"].endswith(f"/process-instance/{case['id']}")
    assert "variables" not in case
    started = quickstart.get(f"/engine-rest/process-instance/{case['id']}/variables").get_json()
    assert started["applicantName"]["value"] == APPLICATION["applicantName"]


def test_submit_form_checks_the_start_form_and_starts_nothing_it_refuses(quickstart):
    r = quickstart.post("/engine-rest/process-definition/key/quickstart_review/submit-form",
                        json={"variables": {}, "businessKey": "SZ-2"})
    assert r.status_code == 400 and r.get_json()["type"] == "FormFieldValidationException"
    assert "applicantName" in r.get_json()["message"]
    assert quickstart.get("/engine-rest/process-instance/count").get_json()["count"] == 0


def test_submit_form_of_an_unknown_process_is_a_404(client):
    r = client.post("/engine-rest/process-definition/key/nope/submit-form", json={"variables": {}})
    assert r.status_code == 404 and "nope" in r.get_json()["message"]


def test_submit_form_is_for_who_may_start_the_process(quickstart):
    applicant = quickstart.create_user("someone", ["applicants"])
    r = applicant.post("/engine-rest/process-definition/key/quickstart_review/submit-form",
                       json={"variables": typed(**APPLICATION)})
    assert r.status_code == 403
    assert quickstart.get("/engine-rest/process-instance/count").get_json()["count"] == 0

