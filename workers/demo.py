"""`python app.py demo` (`make demo`): one narrated case of each reform process, driven
against the running server over its HTTP API with the test clock, each followed by its
timeline as the server recorded it (who did what, on which working day, which limit ran
out, tacit approvals, corrections), in Chinese and English.

    APPROVALS_TEST_CLOCK=1 ADMIN_PASSWORD=… make run      # one terminal
    ADMIN_PASSWORD=… make demo                           # another

The cases:
  enterprise_opening   the department systems answer (the running workers and sandbox, or,
                       when no worker takes the tasks, this program as a stand-in, saying so);
                       the bank's account-opened answer arrives later, as a message
  construction_permit  from Friday 2025-09-26 over the adjusted working Sunday and the
                       National Day holidays: one department returns the application for
                       correction (its clock stops), another stays silent until tacit
                       approval (超时默许) at its legal deadline; all four stages
  joint_acceptance     two-phase joint completion acceptance of one unit work

Only this program's own actions are narrated while it runs (the clock moves); everything in
the timelines is read back from the server (workers/demo_timeline.py).  The test clock is
set back to the real time at the end.  Department officers are users `demo_<group>`,
created (or given a fresh password) on each run.
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from typing import Callable
from zoneinfo import ZoneInfo

import requests

from . import credit_code
from .demo_timeline import DEPARTMENTS, STAGES, WorkingCalendar, department, read_case, render
from .task import encode

DEFAULT_URL = "http://127.0.0.1:8080/engine-rest"
USER_PREFIX = "demo_"
STAND_IN = "approvals-demo-stand-in"
TOKEN_LABEL = "approvals demo"
START_HINT = "APPROVALS_TEST_CLOCK=1 ADMIN_PASSWORD=… make run"


class DemoError(Exception):
    """Something the person running the demo can act on."""


# --- the HTTP API --------------------------------------------------------------------------

class Api:
    """The server as one user sees it: `/engine-rest/...` and the `/api/v1/...` extensions."""

    def __init__(self, engine_url: str, auth: tuple[str, str] | str) -> None:
        self.engine_url = engine_url.rstrip("/")
        self.root = self.engine_url.removesuffix("/engine-rest")
        self.session = requests.Session()
        if isinstance(auth, str):
            self.session.headers["Authorization"] = f"Bearer {auth}"
        else:
            self.session.auth = auth

    def request(self, method: str, path: str, expect=(200, 201, 204), raw: bool = False, **kwargs):
        url = (self.root if path.startswith("/api/") else self.engine_url) + path
        try:
            response = self.session.request(method, url, timeout=60, **kwargs)
        except requests.RequestException as err:
            raise DemoError(f"cannot reach the server at {url} ({err.__class__.__name__}).\n"
                            f"Start it with the test clock:  {START_HINT}\n"
                            "A server on another port or host: PORT=… make demo, or --url / "
                            "APPROVALS_ENGINE_URL") from None
        if response.status_code not in expect:
            try:
                message = response.json().get("message")
            except ValueError:
                message = response.text[:300]
            raise DemoError(f"{method} {path} answered {response.status_code}: {message}")
        if raw:
            return response
        return response.json() if response.content else None

    def status(self, method: str, path: str) -> int:
        return self.request(method, path, expect=range(100, 600), raw=True).status_code

    def get(self, path: str, **params):
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: dict | None = None, **kwargs):
        return self.request("POST", path, json=body or {}, **kwargs)

    def put(self, path: str, body: dict | None = None, **kwargs):
        return self.request("PUT", path, json=body, **kwargs)


def issue_token(api: Api) -> tuple[str, str]:
    """A Bearer token for the caller: passwords are scrypt-hashed, one check per request is slow.
    No expiry (it would be counted on the moved test clock); the demo revokes its tokens at the end."""
    token = api.post("/api/v1/tokens", {"label": TOKEN_LABEL})
    return token["id"], token["token"]


# --- printing in one or two languages ------------------------------------------------------

class Narrator:
    def __init__(self, lang: str, out=None) -> None:
        self.lang = lang
        self.out = out or sys.stdout

    def say(self, zh: str, en: str) -> None:
        if self.lang in ("zh", "both"):
            print(zh, file=self.out, flush=True)
        if self.lang in ("en", "both"):
            print(en, file=self.out, flush=True)

    def lines(self, lines: list[str]) -> None:
        for line in lines:
            print(line, file=self.out)
        self.out.flush()


# --- department officers -------------------------------------------------------------------

class Officers:
    """One officer per department (`demo_<group>`), made on first use and on every run given a
    fresh password, so the demo never needs to know passwords from an earlier run."""

    def __init__(self, admin: Api) -> None:
        self.admin = admin
        self.apis: dict[str, Api] = {}
        self.tokens: list[str] = []

    def of(self, group: str) -> Api:
        if group not in self.apis:
            user = USER_PREFIX + group
            if not self.admin.get("/group", id=group):
                self.admin.post("/group/create", {"id": group, "name": department(group)[0]})
            password = secrets.token_urlsafe(16)
            if self.admin.get("/user", id=user):
                self.admin.put(f"/user/{user}/credentials", {"password": password})
            else:
                self.admin.post("/user/create", {"profile": {"id": user, "firstName": department(group)[0]},
                                                 "credentials": {"password": password}})
            self.admin.put(f"/group/{group}/members/{user}")
            token_id, token = issue_token(Api(self.admin.engine_url, (user, password)))
            self.apis[group] = Api(self.admin.engine_url, token)
            self.tokens.append(token_id)
        return self.apis[group]

    def who(self, user: str | None) -> tuple[str, str]:
        """An actor of the audit trail as a reader understands it."""
        if user and user.startswith(USER_PREFIX) and user[len(USER_PREFIX):] in DEPARTMENTS:
            zh, en = department(user[len(USER_PREFIX):])
            return f"{zh}（{user}）", f"{en} ({user})"
        if user == "system":
            return "系统（定时器）", "the engine (timer)"
        return user or "—", user or "—"



# --- department systems (external tasks) ---------------------------------------------------

def _stand_in_answer(task: dict) -> dict:
    """What the department system would return (see workers/connectors.toml)."""
    serial = uuid.uuid5(uuid.NAMESPACE_URL, task["id"]).int % 10**8
    return {
        "market.registration": {"creditCode": credit_code.issue(task["id"]),
                                "marketRegistrationNo": f"320500{serial:09d}"},
        "police.seal": {"sealIds": [f"ES320500{serial:08d}", f"ES320500{serial + 1:08d}"]},
        "tax.invoice": {"invoiceQuota": {"monthlyCount": 25}, "taxUKeyNo": f"TAXUK{serial:08d}"},
        "hrss.social_security": {"socialSecurityNo": f"3205{serial:08d}"},
        "housing_fund.registration": {"fundAccountNo": f"GJJ3205{serial:08d}"},
        "bank.account_reservation": {"bankReservationId": f"RSV{serial:08d}", "bankReservationStatus": "ACCEPTED"},
        "licence.issue": {"eLicenceId": f"DZZZ-320500-{serial:08d}"},
        "realestate.push": {"realEstateReceiptNo": f"BDC{serial:08d}"},
        "notify.applicant": {"notificationId": f"MSG{serial:08d}", "notificationChannel": "sms"},
    }[task["topicName"]]


class DepartmentSystems:
    """The running workers and sandbox answer the external tasks; if no worker takes the first
    one within `worker_wait` seconds, this program answers them itself, as a stand-in."""

    def __init__(self, admin: Api, narrator: Narrator, worker_wait: float) -> None:
        self.admin = admin
        self.narrator = narrator
        self.worker_wait = worker_wait
        self.stand_in: bool | None = None          # decided at the first external task

    def settle(self, case: str, business_key: str, timeout: float = 60.0) -> None:
        """Wait until the case ended or waits for an officer (no department system working)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if state(self.admin, case) != "ACTIVE":
                return
            self.raise_incidents(case)
            pending = self.admin.get("/external-task", processInstanceId=case)
            if pending and self.stand_in is None:
                self.detect(pending[0])
            if pending and self.stand_in:
                self.answer(business_key)
                continue
            if not pending and self.admin.get("/task", processInstanceId=case):
                return
            time.sleep(0.1)
        waiting = sorted(t["topicName"] for t in self.admin.get("/external-task", processInstanceId=case))
        raise DemoError(f"case {business_key} made no progress for {timeout:g} s "
                        f"(waiting for: {', '.join(waiting) or 'a message'}); are the workers and the sandbox running?")

    def detect(self, task: dict) -> None:
        end = time.monotonic() + self.worker_wait
        while time.monotonic() < end:
            rows = self.admin.get("/external-task", externalTaskId=task["id"])
            if not rows or rows[0].get("workerId"):
                self.stand_in = False
                self.narrator.say("  部门系统：运行中的 worker 领取了外部任务，由 workers 与部门系统沙箱应答",
                                  "  Department systems: a running worker took the external task; the workers and "
                                  "the department-system sandbox answer")
                return
            time.sleep(0.1)
        self.stand_in = True
        self.narrator.say(f"  部门系统：{self.worker_wait:g} 秒内没有 worker 领取外部任务，"
                          f"本演示以 worker“{STAND_IN}”代为应答（fetchAndLock/complete），银行回执亦由本演示发送",
                          f"  Department systems: no worker took the external task within {self.worker_wait:g} s; "
                          f"this demo answers as a stand-in (worker '{STAND_IN}', fetchAndLock/complete) "
                          f"and sends the bank's answer itself")

    def answer(self, business_key: str) -> None:
        topics = [{"topicName": topic, "lockDuration": 60_000, "businessKey": business_key}
                  for topic in ("market.registration", "police.seal", "tax.invoice", "hrss.social_security",
                                "housing_fund.registration", "bank.account_reservation", "licence.issue",
                                "realestate.push", "notify.applicant")]
        fetched = self.admin.post("/external-task/fetchAndLock",
                                  {"workerId": STAND_IN, "maxTasks": 20, "topics": topics})
        reserved = None
        for task in fetched:
            answer = _stand_in_answer(task)
            self.admin.post(f"/external-task/{task['id']}/complete",
                            {"workerId": STAND_IN, "variables": encode(answer)})
            if task["topicName"] == "bank.account_reservation":
                reserved = answer["bankReservationId"]
        if reserved:            # the bank answers after the other departments, as a message
            self.admin.post("/message", {
                "messageName": "bank.account_opened", "businessKey": business_key,
                "messageId": f"bank.account_opened:{reserved}",
                "processVariables": encode({"bankAccountNo": f"6222{int(reserved[3:]):015d}",
                                            "bankName": "中国工商银行", "bankReservationId": reserved})})
        if not fetched:
            time.sleep(0.1)

    def raise_incidents(self, case: str) -> None:
        incidents = self.admin.get("/incident", processInstanceId=case)
        if incidents:
            first = incidents[0]
            raise DemoError(f"incident in case {case} at {first.get('activityId')}: {first.get('incidentMessage')}\n"
                            "Is the department-system sandbox running (make run starts it unless "
                            "APPROVALS_NO_SANDBOX=1)?")


def state(api: Api, case: str) -> str:
    return api.get(f"/history/process-instance/{case}")["state"]


# --- driving cases ---------------------------------------------------------------------------

class Demo:
    def __init__(self, admin: Api, narrator: Narrator, zone: tzinfo, worker_wait: float) -> None:
        self.admin = admin
        self.narrator = narrator
        self.zone = zone
        self.officers = Officers(admin)
        self.systems = DepartmentSystems(admin, narrator, worker_wait)
        self.run_id = datetime.now(timezone.utc).strftime("%H%M%S") + secrets.token_hex(2).upper()

    # the clock
    def at(self, when: str, zh: str = "", en: str = "") -> None:
        moment = datetime.fromisoformat(when)
        self.admin.put("/api/v1/test/clock", {"now": moment.isoformat()})
        local = moment.astimezone(self.zone)
        self.narrator.say(f"  ⏱ 测试时钟 → {local:%Y-%m-%d %H:%M:%S}" + (f"：{zh}" if zh else ""),
                          f"  ⏱ test clock → {local:%Y-%m-%d %H:%M:%S}" + (f": {en}" if en else ""))

    # cases and tasks
    def start(self, key: str, business_key: str, group: str, variables: dict) -> str:
        return self.officers.of(group).post(f"/process-definition/key/{key}/start", {
            "businessKey": business_key, "variables": encode(variables)})["id"]

    def tasks(self, case: str, key: str | None = None, group: str | None = None) -> list[dict]:
        query = {"processInstanceId": case, **({"taskDefinitionKey": key} if key else {})}
        return [t for t in self.admin.get("/task", **query) if group is None or group in t["candidateGroups"]]

    def open_keys(self, case: str) -> list[str]:
        return sorted(t["taskDefinitionKey"] for t in self.tasks(case))

    def complete(self, task: dict, values: dict) -> None:
        """The task's department officer claims it and completes it through its form."""
        group = task["candidateGroups"][0]
        officer = self.officers.of(group)
        officer.post(f"/task/{task['id']}/claim", {"userId": USER_PREFIX + group})
        officer.post(f"/task/{task['id']}/complete", {"variables": encode(values)})

    def do(self, case: str, key: str, group: str | None = None, **values) -> None:
        tasks = self.tasks(case, key, group)
        if len(tasks) != 1:
            raise DemoError(f"expected one open '{key}'{' of ' + group if group else ''} in case {case}, "
                            f"found {len(tasks)}; open: {self.open_keys(case)}")
        self.complete(tasks[0], values)

    def do_all(self, case: str, key: str, **values) -> None:
        tasks = self.tasks(case, key)
        if not tasks:
            raise DemoError(f"no open '{key}' in case {case}; open: {self.open_keys(case)}")
        for task in tasks:
            self.complete(task, values)

    def settle(self, case: str, business_key: str) -> None:
        self.systems.settle(case, business_key)

    def wait_for(self, check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while not check():
            if time.monotonic() > end:
                raise DemoError(f"waited {timeout:g} s for {what}; is the server's timer scheduler running "
                                "(APPROVALS_NO_TIMERS unset)?")
            time.sleep(0.1)

    def ended(self, case: str, activity: str) -> bool:
        rows = self.admin.get("/history/activity-instance", processInstanceId=case, activityId=activity)
        return any(r.get("endTime") for r in rows)

    def clock(self, case: str, stage: str, department_: str | None = None) -> dict:
        clocks = [c for c in self.admin.get(f"/api/v1/process-instance/{case}/legal-clocks")
                  if c["stage"] == stage and department_ in (None, c.get("department")) and not c.get("stopped")]
        if len(clocks) != 1:
            raise DemoError(f"expected one running '{stage}' clock of {department_} in case {case}, "
                            f"found {len(clocks)}")
        return clocks[0]

    def just_after(self, moment: str, seconds: int = 1) -> str:
        return datetime.fromtimestamp(datetime.fromisoformat(moment).timestamp() + seconds, self.zone).isoformat()


# --- the three cases ---------------------------------------------------------------------------

PROJECT = {"projectName": "苏州星湖产业园研发楼", "projectCode": "2509-320500-04-01-100926",
           "applicantName": "苏州星湖产业园开发有限公司", "applicantPhone": "+8613800138000"}
APPROVE = {"decision": "approve", "opinion": "符合法定条件，同意"}


def enterprise_opening(demo: Demo) -> tuple[str, str]:
    bk = f"QY-DEMO-{demo.run_id}"
    demo.at("2025-09-26T09:30:00+08:00", "周五上午，申请人一表申请（窗口录入）", "Friday morning, the one-form application")
    case = demo.start("enterprise_opening", bk, "window", {
        "applicantName": "苏州星湖智能科技有限公司", "enterpriseType": "llc_other", "registeredCapital": 100,
        "legalRepresentative": "张三", "applicantPhone": "+8613800138000", "address": "苏州工业园区星湖街 328 号",
        "addressCommitment": True, "businessScope": "软件开发；信息技术咨询服务", "regionCode": "320500",
        "items": ["registration", "seal", "invoice", "social_security", "housing_fund", "bank"], "bankCode": "ICBC"})
    demo.at("2025-09-26T09:45:00+08:00", "窗口审核一表申请", "the window checks the application")
    demo.do(case, "Task_accept", accepted="yes", acceptanceOpinion="一表申请材料齐全，予以受理")
    demo.settle(case, bk)
    return case, bk


def construction_permit(demo: Demo) -> tuple[str, str]:
    bk = f"GC-DEMO-{demo.run_id}"
    demo.at("2025-09-26T10:00:00+08:00", "周五，窗口收件并一口受理", "Friday, the window receives and accepts")
    case = demo.start("construction_permit", bk, "window", {
        **PROJECT, "creditCode": credit_code.issue(bk), "projectClass": "government", "riskGrade": "low",
        "floorArea": 8000, "investment": 12000, "address": "苏州工业园区星湖街 1 号"})
    demo.do(case, "Task_intake_planning", intakeDecision="accept", acceptanceMode="normal", commitment="no",
            creditBarred="no", intakeOpinion="材料齐全，予以受理")

    demo.at("2025-09-28T10:00:00+08:00", "周日调休上班", "Sunday, an adjusted working day")
    demo.do(case, "Task_review", group="zrzy", decision="correction", opinion="规划条件图缺少界址点坐标",
            correctionItems="补充用地红线界址点坐标")
    demo.at("2025-10-09T09:30:00+08:00", "国庆中秋假期后，申请人到窗口提交补正材料",
            "after the National Day holidays the applicant brings the corrected materials")
    demo.do(case, "Task_correct", group="window", correctedMaterials="用地红线界址点坐标图", correctedOn="2025-10-09")

    silent = demo.clock(case, "review", "fgw")
    demo.at(silent["warningAt"], "发改委审查时限到达预警点", "Development and Reform's review reaches its warning point")
    demo.wait_for(lambda: demo.ended(case, "Timer_yellow"), "the yellow card")
    demo.at("2025-10-10T11:00:00+08:00")
    demo.do(case, "Task_review", group="zrzy", decision="approve", opinion="补正后符合规划条件，同意")
    demo.at(demo.just_after(silent["deadline"]), "发改委法定审查时限刚过，仍未答复",
            "Development and Reform's legal limit has just run out without an answer")
    demo.wait_for(lambda: demo.open_keys(case) == ["Task_issue_planning"], "the tacit approval")

    demo.at("2025-10-11T10:00:00+08:00", "周六调休上班，牵头部门核发用地规划许可",
            "Saturday, an adjusted working day: the lead department issues the planning permit")
    demo.do(case, "Task_issue_planning", permitNo="地字第320500202500926号", landContractSigned="yes",
            issueOpinion="准予核发建设用地规划许可证")
    for stage, when in (("engineering", "2025-10-13T09:30:00+08:00"), ("construction", "2025-10-13T10:00:00+08:00")):
        demo.at(when)
        demo.do(case, f"Task_intake_{stage}", intakeDecision="accept", acceptanceMode="normal", commitment="no",
                creditBarred="no", intakeOpinion="材料齐全，予以受理")
    demo.at("2025-10-14T10:00:00+08:00")
    demo.do(case, "Task_review", group="zjj", **APPROVE)
    demo.do(case, "Task_issue_construction", permitNo="施字第320500202510014号", landContractSigned="yes",
            issueOpinion="准予核发施工许可证")
    demo.at("2025-10-15T10:00:00+08:00")
    demo.do_all(case, "Task_review", **APPROVE)
    demo.do(case, "Task_issue_engineering", permitNo="建字第320500202510015号", landContractSigned="yes",
            issueOpinion="准予核发建设工程规划许可证")

    demo.at("2025-12-01T09:30:00+08:00", "工程竣工，申请联合验收", "the building is finished: joint acceptance")
    demo.do(case, "Task_intake", intakeDecision="accept", acceptanceMode="one_stop", unitWorkList="研发楼",
            intakeOpinion="竣工资料齐全，受理联合验收")
    demo.at("2025-12-02T10:00:00+08:00")
    demo.do_all(case, "Task_inspect_all", inspectionMethod="onsite", inspectedOn="2025-12-02",
                inspectionFindings="现场查验符合设计和规范要求")
    demo.at("2025-12-03T10:00:00+08:00")
    demo.do_all(case, "Task_review", **APPROVE)
    demo.at("2025-12-04T10:00:00+08:00")
    demo.do_all(case, "Task_opinion", acceptanceResult="qualified", opinionNo="联验〔2025〕926号",
                jointOpinionText="联合验收合格")
    demo.settle(case, bk)
    demo.at("2025-12-05T10:00:00+08:00")
    demo.do(case, "Task_window_issue", resultNote="四阶段审批结果及联合验收意见书统一出件")
    demo.settle(case, bk)
    return case, bk


def joint_acceptance(demo: Demo) -> tuple[str, str]:
    bk = f"YS-DEMO-{demo.run_id}"
    demo.at("2025-12-08T09:30:00+08:00", "周一，建设单位申请联合验收", "Monday, the builder applies")
    case = demo.start("joint_acceptance", bk, "window", {**PROJECT, "projectClass": "social", "riskGrade": "general"})
    demo.do(case, "Task_intake", intakeDecision="accept", acceptanceMode="two_phase", unitWorkList="1#研发楼",
            intakeOpinion="竣工资料齐全，受理两段式联合验收")
    demo.at("2025-12-09T10:00:00+08:00")
    demo.do_all(case, "Task_inspect_phase1", inspectionMethod="onsite", inspectedOn="2025-12-09",
                inspectionFindings="规划、消防设施现场查验符合要求")
    demo.at("2025-12-10T15:00:00+08:00")
    demo.do_all(case, "Task_review", **APPROVE)
    demo.at("2025-12-11T10:00:00+08:00")
    demo.do_all(case, "Task_inspect_phase2", inspectionMethod="video", inspectedOn="2025-12-11",
                inspectionFindings="水电气热通信接入远程视频查验符合要求")
    demo.at("2025-12-12T15:00:00+08:00")
    demo.do_all(case, "Task_review", **APPROVE)
    demo.at("2025-12-15T10:00:00+08:00", "周一，牵头部门出具联合验收意见书", "Monday, the lead department's opinion")
    demo.do_all(case, "Task_opinion", acceptanceResult="qualified", opinionNo="联验〔2025〕1215号",
                jointOpinionText="两段式联合验收合格")
    demo.settle(case, bk)
    return case, bk


@dataclass(frozen=True)
class Case:
    title: tuple[str, str]
    plan: tuple[str, str]           # what the demo is about to do (the timeline shows what happened)
    drive: Callable[[Demo], tuple[str, str]]


CASES = {
    "enterprise_opening": Case(
        ("企业开办“一件事”", "Enterprise opening (one bundle)"),
        ("本案演示：一表申请，窗口受理，企业登记赋码后公章、发票、社保、公积金、银行开户并联办理，银行开户回执随后以消息"
         "送达，电子营业执照与电子印章同步发放；承诺时限 1 个工作日，周五受理。",
         "This case: one application, window acceptance, registration (credit code), then seals, invoices, social "
         "security, housing fund and the bank in parallel, the bank's answer later as a message, licence and e-seals "
         "issued together; promised limit 1 working day, accepted on a Friday."),
        enterprise_opening),
    "construction_permit": Case(
        ("工程建设项目并联审批", "Construction permit, four stages in parallel"),
        ("本案演示：政府投资、较低风险项目，周五受理。立项用地规划阶段发改委与自然资源局并联审查：自然资源局在调休上班的"
         "周日退回补正，申请人国庆中秋假期后补正；发改委不作答复，演示把时钟拨过其法定时限。土地出让合同已签，工程建设"
         "许可与施工许可同步办理，最后竣工联合验收。",
         "This case: a government-invested, low-risk project accepted on a Friday. In the planning stage Development "
         "and Reform and Natural Resources review in parallel: Natural Resources returns the application for "
         "correction on the adjusted working Sunday, the applicant corrects after the National Day holidays; "
         "Development and Reform does not answer and the demo moves the clock past its legal limit. With the land "
         "contract signed the engineering and construction permits run side by side; joint acceptance last."),
        construction_permit),
    "joint_acceptance": Case(
        ("竣工联合验收", "Joint completion acceptance"),
        ("本案演示：社会投资、一般风险项目两段式联合验收，先规划、消防，后水、电、气、热、通信、档案；意见书推送不动产登记。",
         "This case: two-phase joint acceptance of a social-investment, general-risk project, planning and fire "
         "first, then water, power, gas, heat, telecoms and archives; the opinion is pushed to real-estate "
         "registration."),
        joint_acceptance),
}


OUTCOMES = {"approved": ("准予", "approved"), "rejected": ("不予许可", "refused"), "not_accepted": ("不予受理", "not accepted"),
            "withdrawn": ("撤回", "withdrawn"), "revoked": ("许可撤销", "revoked"),
            "acceptance_unqualified": ("验收不合格", "acceptance not qualified"),
            "qualified": ("联合验收合格", "qualified"), "unqualified": ("验收不合格", "not qualified")}


def outcome(key: str, variables: dict) -> tuple[str, str]:
    """The case's result variables (the server's), in one line."""
    if key == "enterprise_opening":
        zh = (f"统一社会信用代码 {variables.get('creditCode')}，电子营业执照 {variables.get('eLicenceId')}，"
              f"银行账号 {variables.get('bankAccountNo')}（{variables.get('bankName')}）")
        en = (f"credit code {variables.get('creditCode')}, e-licence {variables.get('eLicenceId')}, "
              f"bank account {variables.get('bankAccountNo')} ({variables.get('bankName')})")
        return zh, en
    result = variables.get("caseOutcome") or variables.get("acceptanceOutcome") or {}
    word_zh, word_en = OUTCOMES.get(result.get("result"), (result.get("result"),) * 2)
    permits = (result.get("permits") or {}).items()
    zh = f"结果：{word_zh}" + "".join(f"；{STAGES[stage][0]} {p.get('permitNo')}" for stage, p in permits)
    en = f"result: {word_en}" + "".join(f"; {STAGES[stage][1]} {p.get('permitNo')}" for stage, p in permits)
    return zh, en


# --- the command -------------------------------------------------------------------------------

def add_command(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="run one narrated case of each reform process against the running server")
    local = f"http://127.0.0.1:{os.environ['PORT']}/engine-rest" if os.environ.get("PORT") else DEFAULT_URL
    demo.add_argument("--url", default=os.environ.get("APPROVALS_ENGINE_URL", local),
                      help=f"the engine's REST base (default APPROVALS_ENGINE_URL, else the server of PORT on "
                           f"this machine, else {DEFAULT_URL})")
    demo.add_argument("--user", default="admin", help="an administrator (default admin)")
    demo.add_argument("--password", default=None, help="the administrator's password (default: ADMIN_PASSWORD)")
    demo.add_argument("--lang", choices=["zh", "en", "both"], default="both", help="timeline language (default both)")
    demo.add_argument("--case", action="append", choices=list(CASES), dest="cases",
                      help="run only this case (repeatable; default all three)")
    demo.add_argument("--worker-wait", type=float, default=5.0,
                      help="seconds to wait for a worker to take an external task before answering as a stand-in")


def main(args: argparse.Namespace, out=None) -> int:
    narrator = Narrator(args.lang, out)
    try:
        return run(args, narrator)
    except DemoError as err:
        print(f"demo: {err}", file=sys.stderr, flush=True)
        return 1


def connect(args: argparse.Namespace) -> Api:
    password = args.password or os.environ.get("ADMIN_PASSWORD")
    if not password:
        raise DemoError("the administrator's password is needed: set ADMIN_PASSWORD or pass --password")
    admin = Api(args.url, (args.user, password))
    try:
        admin.get("/version")
    except DemoError as err:
        if "answered 401" in str(err):
            raise DemoError(f"the server refused user '{args.user}' (401): check ADMIN_PASSWORD / --password") from None
        raise
    if admin.status("GET", "/api/v1/test/clock") == 404:
        raise DemoError(f"the test clock is off on {admin.root}: the demo moves it across working days.\n"
                        f"Restart the server with it:  {START_HINT}")
    return admin


def run(args: argparse.Namespace, narrator: Narrator) -> int:
    password_admin = connect(args)
    token_id, token = issue_token(password_admin)
    admin = Api(args.url, token)
    zone = ZoneInfo(os.environ.get("APPROVALS_TIMEZONE", "Asia/Shanghai"))
    demo = Demo(admin, narrator, zone, args.worker_wait)
    chosen = args.cases or list(CASES)
    completed = 0
    try:
        calendar = WorkingCalendar(admin.get("/api/v1/calendar/days", year=2025))     # the cases' dates are in 2025
        for number, key in enumerate(chosen, 1):
            scenario = CASES[key]
            narrator.lines([""])
            narrator.say(f"━━ {number}/{len(chosen)} {scenario.title[0]}（{key}）━━",
                         f"━━ {number}/{len(chosen)} {scenario.title[1]} ({key}) ━━")
            narrator.say(f"  {scenario.plan[0]}", f"  {scenario.plan[1]}")
            case, business_key = scenario.drive(demo)
            record = read_case(admin, case, scenario.title, demo.officers.who, zone)
            narrator.say(f"  案件 {case}，业务号 {business_key}", f"  case {case}, business key {business_key}")
            narrator.lines([""] + render(record, calendar, args.lang, zone))
            result_zh, result_en = outcome(key, record.variables)
            done = record.state == "COMPLETED"
            completed += done
            narrator.say(f"  状态：{'已办结' if done else record.state}（{record.state}）；{result_zh}",
                         f"  State: {record.state}; {result_en}")
    finally:
        clean_up(password_admin, narrator, zone, [token_id, *demo.officers.tokens])
    narrator.say(f"演示结束：{completed}/{len(chosen)} 个案件已办结", f"Demo finished: {completed}/{len(chosen)} cases completed")
    return 0 if completed == len(chosen) else 1


def clean_up(admin: Api, narrator: Narrator, zone: tzinfo, tokens: list[str]) -> None:
    """Set the test clock back to the real time and revoke the demo's tokens, whatever happened."""
    try:
        now = datetime.now(timezone.utc).astimezone(zone)
        admin.put("/api/v1/test/clock", {"now": now.isoformat()})
        narrator.lines([""])
        narrator.say(f"⏱ 测试时钟已复位为当前时间 {now:%Y-%m-%d %H:%M:%S}",
                     f"⏱ test clock set back to the real time {now:%Y-%m-%d %H:%M:%S}")
        for token_id in tokens:
            admin.request("DELETE", f"/api/v1/tokens/{token_id}", expect=(200, 204, 404))
    except DemoError as err:
        print(f"demo: cleaning up failed: {err}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m workers.demo")
    add_command(parser.add_subparsers(dest="command", required=True))
    sys.exit(main(parser.parse_args(["demo", *sys.argv[1:]])))
