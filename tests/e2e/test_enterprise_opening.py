"""企业开办“一件事” (enterprise_opening) end to end: one application, registration first (it gives
the credit code), the applicant's chosen items in parallel, the bank's answer by message, licence
and seals issued together, within a promised limit that items.json sets."""
from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT, typed
from tests.e2e.conftest import enterprise, eventually

pytestmark = pytest.mark.usefixtures("state_storage")      # tests/e2e/conftest.py

MONDAY = "2025-11-03T10:00:00+08:00"
CREDIT_CODE = "91320594MA27ABCD1X"
OPTIONAL = ["bank.account_reservation", "housing_fund.registration", "hrss.social_security", "police.seal",
            "tax.invoice"]


def register(gov, business_key):
    assert gov.waiting_topics(business_key) == ["market.registration"]
    gov.answer("market.registration", business_key, creditCode=CREDIT_CODE, marketRegistrationNo="320594000123456")


def test_registration_first_then_the_chosen_items_in_parallel_then_licence_and_seals_together(gov):
    gov.at(MONDAY)
    bk = "QY-2025-0001"
    case = gov.start("enterprise_opening", bk, **enterprise(
        items=["registration", "seal", "invoice", "social_security", "housing_fund", "bank"], bankCode="ICBC"))
    assert gov.open_keys(case) == ["Task_accept"]                 # not a simple case: the window accepts
    gov.complete(case, "Task_accept", accepted="yes", acceptanceOpinion="一表申请材料齐全")
    [clock] = gov.clocks(case, "opening")
    assert clock["kind"] == "promised" and clock["limit"] == {"value": 1.0, "unit": "workdays"}
    assert clock["department"] == "scjg" and clock["deadline"] == "2025-11-04T23:59:59+08:00"

    register(gov, bk)
    assert gov.waiting_topics(bk) == OPTIONAL
    seal = gov.answer("police.seal", bk, sealIds=["3205940001", "3205940002"])
    assert seal["variables"]["creditCode"]["value"] == CREDIT_CODE          # the code registration gave
    gov.answer("tax.invoice", bk, invoiceQuota={"monthlyCount": 25}, taxUKeyNo="UK-001")
    gov.answer("hrss.social_security", bk, socialSecurityNo="SB-001")
    gov.answer("housing_fund.registration", bk, fundAccountNo="GJJ-001")
    gov.answer("bank.account_reservation", bk, bankReservationId="RSV-1", bankReservationStatus="accepted")
    assert gov.waiting_topics(bk) == []                           # the bank has not answered yet
    assert gov.message("bank.account_opened", bk, bankAccountNo="6222020000001", bankName="工商银行").status_code == 204

    licence = gov.answer("licence.issue", bk, eLicenceId="EL-001")
    assert licence["variables"]["sealIds"]["value"] == json.dumps(["3205940001", "3205940002"])
    notice = gov.answer("notify.applicant", bk, notificationId="SMS-1")
    assert notice["variables"]["notifyText"]["value"] == (
        f"您的企业开办申请已办结：统一社会信用代码 {CREDIT_CODE}，电子营业执照已发放；公章刻制（公安）已办结；"
        "发票申领及税务UKey（税务）已办结；社保登记（人社）已办结；住房公积金缴存登记已办结；银行预约开户已办结。")
    assert gov.state(case) == "COMPLETED" and gov.ended_at(case, "End_done") == 1
    values = gov.variables(case)
    assert values["bankAccountNo"] == "6222020000001" and values["eLicenceId"] == "EL-001"
    assert values["openingOutcome"] == "opened"                   # it stayed "in_progress" before
    assert values["notificationId"] == "SMS-1"
    [clock] = gov.clocks(case, "opening")
    assert clock["outcome"] == "decided" and clock["status"] == "green"


def test_a_simple_company_is_accepted_automatically_and_registration_is_never_dropped(gov):
    gov.at(MONDAY)
    bk = "QY-2025-0002"
    case = gov.start("enterprise_opening", bk, **enterprise(items=["seal"], enterprise_type="llc_natural_person"))
    assert gov.open_keys(case) == []                              # 自动受理
    register(gov, bk)                                             # not chosen, done anyway
    assert gov.waiting_topics(bk) == ["police.seal"]              # only what the applicant chose
    gov.answer("police.seal", bk, sealIds=["3205940009"])
    gov.answer("licence.issue", bk, eLicenceId="EL-002")
    gov.answer("notify.applicant", bk, notificationId="SMS-2")
    assert gov.state(case) == "COMPLETED"


def test_registration_alone_goes_straight_to_the_licence(gov):
    gov.at(MONDAY)
    bk = "QY-2025-0003"
    case = gov.start("enterprise_opening", bk, **enterprise(items=["registration"],
                                                            enterprise_type="llc_sole_natural_person"))
    register(gov, bk)
    assert gov.waiting_topics(bk) == ["licence.issue"]
    gov.answer("licence.issue", bk, eLicenceId="EL-003")
    gov.answer("notify.applicant", bk, notificationId="SMS-3")
    assert gov.state(case) == "COMPLETED"


def test_the_bank_answers_late_by_message_after_the_promised_limit_ran_out(gov):
    gov.at(MONDAY)
    bk = "QY-2025-0004"
    case = gov.start("enterprise_opening", bk, **enterprise(items=["registration", "bank"],
                                                            enterprise_type="llc_natural_person", bankCode="CCB"))
    register(gov, bk)
    gov.answer("bank.account_reservation", bk, bankReservationId="RSV-4", bankReservationStatus="accepted")

    gov.at("2025-11-05T09:30:00+08:00")                           # the promised working day has passed
    assert eventually(lambda: gov.tasks(case, "Task_opening_supervise"))
    [clock] = gov.clocks(case, "opening")
    assert clock["status"] == "red" and clock["stopped"] is None
    assert gov.ended_at(case, "Timer_opening_yellow") == 1 and gov.ended_at(case, "Timer_opening_red") == 1
    # the supervisors' list tells which enterprise and case, due in supervision.dueWorkdays (2)
    [supervision] = gov.tasks(case, "Task_opening_supervise")
    assert supervision["name"] == "超时督办：「苏州星湖智能科技有限公司」企业开办超过承诺时限（QY-2025-0004）"
    assert supervision["due"] == "2025-11-07T23:59:59.000+0800"    # opened Wednesday
    gov.complete(case, "Task_opening_supervise", measure="reminder", supervisionOpinion="督促银行尽快回执")

    # another case's answer does not reach this one
    r = gov.message("bank.account_opened", "QY-2025-9999", bankAccountNo="x")
    assert r.status_code == 400 and "bank.account_opened" in r.get_json()["message"]
    assert gov.waiting_topics(bk) == [] and gov.state(case) == "ACTIVE"

    gov.at("2025-11-06T11:00:00+08:00")
    assert gov.message("bank.account_opened", bk, bankAccountNo="6217000000004", bankName="建设银行").status_code == 204
    gov.answer("licence.issue", bk, eLicenceId="EL-004")
    gov.answer("notify.applicant", bk, notificationId="SMS-4")
    assert gov.state(case) == "COMPLETED"
    [clock] = gov.clocks(case, "opening")
    assert clock["outcome"] == "decided" and clock["status"] == "red"
    totals = gov.admin.get("/api/v1/statistics", query_string={"processDefinitionKey": "enterprise_opening"}
                           ).get_json()["totals"]
    assert totals["decidedOverdue"] == 1 and totals["escalations"] == 1 and totals["warnings"] == 1


def test_an_application_without_a_business_key_is_refused_before_anything_starts(gov):
    """The bank answers by the business key: without one a simple company was accepted, its
    promised clock started, and registration failed with an incident for good."""
    gov.at(MONDAY)
    r = gov.admin.post("/engine-rest/process-definition/key/enterprise_opening/start",
                       json={"variables": typed(**enterprise(enterprise_type="llc_natural_person"))})
    assert r.status_code == 400, r.get_json()
    assert "process 'enterprise_opening' needs a business key" in r.get_json()["message"]
    assert gov.admin.get("/engine-rest/history/process-instance").get_json() == []
    assert gov.admin.get("/engine-rest/external-task").get_json() == []
    assert gov.admin.get("/engine-rest/incident").get_json() == []


def test_the_window_may_refuse_to_accept(gov):
    gov.at(MONDAY)
    bk = "QY-2025-0005"
    case = gov.start("enterprise_opening", bk, **enterprise())
    gov.complete(case, "Task_accept", accepted="no", acceptanceOpinion="经营范围含前置许可事项，请先取得许可")
    assert gov.state(case) == "COMPLETED" and gov.ended_at(case, "End_not_accepted") == 1
    assert "openingOutcome" not in gov.variables(case)              # never accepted: no outcome of the bundle
    assert gov.waiting_topics(bk) == [] and gov.clocks(case) == []


def test_a_taken_name_goes_back_to_the_window_and_is_registered_under_the_new_name(gov):
    gov.at(MONDAY)
    bk = "QY-2025-0006"
    case = gov.start("enterprise_opening", bk, **enterprise(items=["registration"],
                                                            enterprise_type="llc_natural_person"))
    gov.refuse("market.registration", bk, "MARKET_NAME_TAKEN", marketRejectReason="名称与已登记企业重名")
    assert gov.open_keys(case) == ["Task_registration_rejected"]
    gov.complete(case, "Task_registration_rejected", registrationAction="resubmit",
                 applicantName="苏州星湖未来智能科技有限公司", handlingNote="申请人改用备选名称")
    [task] = gov.fetch("market.registration", bk)
    assert task["variables"]["applicantName"]["value"] == "苏州星湖未来智能科技有限公司"


def test_an_applicant_who_gives_up_after_a_refusal_ends_the_case_withdrawn(gov):
    gov.at(MONDAY)
    bk = "QY-2025-0007"
    case = gov.start("enterprise_opening", bk, **enterprise(enterprise_type="llc_natural_person"))
    gov.refuse("market.registration", bk, "MARKET_REJECTED", marketRejectReason="住所不符合要求")
    gov.complete(case, "Task_registration_rejected", registrationAction="abandon", applicantName="苏州星湖智能科技有限公司")
    assert gov.state(case) == "COMPLETED" and gov.ended_at(case, "End_opening_withdrawn") == 1
    assert gov.variables(case)["openingOutcome"] == "withdrawn"
    [clock] = gov.clocks(case, "opening")
    assert clock["outcome"] == "withdrawn"


def test_the_promised_limit_is_configuration_down_to_half_a_day_or_minutes(gov):
    items = json.loads((ROOT / "bpmn" / "items.json").read_text(encoding="utf-8"))
    for limit, expected in (("0.5wd", {"value": 0.5, "unit": "workdays"}),
                            ("150min", {"value": 2.5, "unit": "workhours"})):
        items["enterprise_opening"]["promisedLimit"] = limit
        r = gov.admin.deploy(extra={"items.json": json.dumps(items, ensure_ascii=False)}, name="items")
        assert r.status_code == 200, r.get_json()
        gov.at(MONDAY)
        case = gov.start("enterprise_opening", f"QY-LIMIT-{limit}", **enterprise(enterprise_type="llc_natural_person"))
        [clock] = gov.clocks(case, "opening")
        assert clock["limit"] == expected
        assert clock["deadline"].startswith("2025-11-03T1")         # the same afternoon


def test_a_bank_that_refuses_the_account_does_not_hold_up_the_licence(gov):
    gov.at(MONDAY)
    bk = "QY-2025-0008"
    case = gov.start("enterprise_opening", bk, **enterprise(items=["registration", "bank"],
                                                            enterprise_type="llc_natural_person", bankCode="BOC"))
    register(gov, bk)
    gov.refuse("bank.account_reservation", bk, "BANK_REFUSED")
    gov.answer("licence.issue", bk, eLicenceId="EL-008")
    notice = gov.answer("notify.applicant", bk, notificationId="SMS-8")
    assert notice["variables"]["notifyText"]["value"] == (
        f"您的企业开办申请已办结：统一社会信用代码 {CREDIT_CODE}，电子营业执照已发放；"
        "银行预约开户未能办理（BANK_REFUSED），请另行办理。")
    assert gov.state(case) == "COMPLETED" and gov.variables(case)["bankRefused"] is True
    assert gov.variables(case)["bankRejectCode"] == "BANK_REFUSED"


def test_a_department_that_refuses_its_item_does_not_hold_up_the_others_and_the_refusal_is_recorded(gov):
    """Seals, invoices, social security and the housing fund are optional items of the bundle, as
    the bank account is: a department that refuses one (the connectors' SEAL_REJECTED, …) leaves
    its code and reason on the case, and the licence is issued with the others."""
    gov.at(MONDAY)
    bk = "QY-2025-0009"
    case = gov.start("enterprise_opening", bk, **enterprise(enterprise_type="llc_natural_person"))
    register(gov, bk)
    refusals = {"police.seal": ("SEAL_REJECTED", "法定代表人身份核验未通过"),
                "hrss.social_security": ("HRSS_REJECTED", "单位已有社保登记"),
                "housing_fund.registration": ("HOUSING_FUND_REJECTED", "缴存基数不符")}
    for topic, (code, reason) in refusals.items():
        [task] = gov.fetch(topic, bk)
        r = gov.worker.post(f"/engine-rest/external-task/{task['id']}/bpmnError",
                            json={"workerId": "dept-systems", "errorCode": code, "errorMessage": reason})
        assert r.status_code == 204, (topic, r.get_json())
    assert gov.waiting_topics(bk) == ["tax.invoice"]
    [task] = gov.fetch("tax.invoice", bk)
    r = gov.worker.post(f"/engine-rest/external-task/{task['id']}/bpmnError",
                        json={"workerId": "dept-systems", "errorCode": "TAX_REJECTED"})
    assert r.status_code == 204, r.get_json()

    gov.answer("licence.issue", bk, eLicenceId="EL-009")
    notice = gov.answer("notify.applicant", bk, notificationId="SMS-9")
    # the applicant is told what was issued and what was refused, and why
    assert notice["variables"]["notifyText"]["value"] == (
        f"您的企业开办申请已办结：统一社会信用代码 {CREDIT_CODE}，电子营业执照已发放；"
        "公章刻制（公安）未能办理（法定代表人身份核验未通过），请另行办理；"
        "发票申领及税务UKey（税务）未能办理（TAX_REJECTED），请另行办理；"
        "社保登记（人社）未能办理（单位已有社保登记），请另行办理；"
        "住房公积金缴存登记未能办理（缴存基数不符），请另行办理。")
    assert gov.state(case) == "COMPLETED" and gov.ended_at(case, "End_done") == 1
    values = gov.variables(case)
    assert (values["sealRejectCode"], values["sealRejectReason"]) == refusals["police.seal"]
    assert (values["socialSecurityRejectCode"], values["socialSecurityRejectReason"]) == \
        refusals["hrss.social_security"]
    assert (values["housingFundRejectCode"], values["housingFundRejectReason"]) == \
        refusals["housing_fund.registration"]
    assert values["taxRejectCode"] == "TAX_REJECTED" and values["taxRejectReason"] is None
    assert values["openingOutcome"] == "opened" and "sealIds" not in values
