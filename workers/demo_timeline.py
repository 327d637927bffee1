"""The timeline of a demo case, in Chinese and English, built only from what the server
recorded: the case's dossier (案卷: the hash-chained audit events with actor and submitted
data, the step names from the diagram), its legal clocks and the working-day calendar.

Nothing here invents an event: a line is printed for an audit event or a clock the server
returned.  `python app.py demo` (workers/demo.py) drives the cases; this module reads them back.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Callable, Iterable

WEEKDAYS_ZH = "一二三四五六日"
WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

DEPARTMENTS = {         # group id -> (zh as in bpmn/items.json, en)
    "window": ("政务服务中心综合窗口", "one-stop service window"),
    "supervisors": ("督查督办", "supervisors"),
    "scjg": ("市场监督管理局", "Market Regulation"),
    "fgw": ("发展和改革委员会", "Development and Reform"),
    "zrzy": ("自然资源和规划局", "Natural Resources and Planning"),
    "zjj": ("住房和城乡建设局", "Housing and Construction"),
    "xf": ("消防审验（住建）", "Fire Safety (Housing and Construction)"),
    "rf": ("人防办（国动办）", "Civil Air Defence"),
    "sthj": ("生态环境局", "Ecology and Environment"),
    "swj": ("水务局", "Water Affairs"),
    "gs": ("供水公司", "water supply company"),
    "gd": ("供电公司", "power supply company"),
    "rq": ("燃气公司", "gas company"),
    "gr": ("供热公司", "heating company"),
    "tx": ("通信管理（通信运营商）", "telecoms"),
    "da": ("城建档案馆", "Urban Construction Archives"),
}

SYSTEMS = {             # external-task topic -> the department system answering it (zh, en)
    "market.registration": ("市场监管登记系统", "market-regulation registration system"),
    "police.seal": ("公安印章系统", "police seal system"),
    "tax.invoice": ("税务发票系统", "tax invoice system"),
    "hrss.social_security": ("人社社保系统", "social-security system"),
    "housing_fund.registration": ("公积金系统", "housing-fund system"),
    "bank.account_reservation": ("银行", "the bank"),
    "licence.issue": ("电子证照库", "e-licence library"),
    "realestate.push": ("不动产登记系统", "real-estate registration system"),
    "notify.applicant": ("短信通知平台", "SMS / notice gateway"),
}

STEPS_EN = {            # activity id -> English name (the Chinese name comes from the diagram)
    "StartEvent_apply": "application (one form)",
    "Task_accept": "window acceptance",
    "Task_registration": "business registration (credit code)",
    "Task_registration_rejected": "registration returned",
    "Task_seal": "seal engraving",
    "Task_invoice": "invoices and tax UKey",
    "Task_social_security": "social-security registration",
    "Task_housing_fund": "housing-fund registration",
    "Task_bank": "bank account reservation",
    "Catch_bank_opened": "the bank's account-opened answer",
    "Task_licence": "e-licence and e-seals issued together",
    "Task_notify": "result notification",
    "Task_opening_supervise": "supervision of the overdue case",
    "Timer_opening_yellow": "warning before the promised limit",
    "Timer_opening_red": "promised limit exceeded",
    "Task_intake_planning": "planning stage: one-window intake",
    "Task_intake_engineering": "engineering stage: one-window intake",
    "Task_intake_construction": "construction stage: one-window intake",
    "Task_issue_planning": "land-use planning permit (lead department)",
    "Task_issue_engineering": "engineering planning permit (lead department)",
    "Task_issue_construction": "construction permit (lead department)",
    "Task_window_issue": "results issued at the window",
    "Task_case_supervise": "whole-case supervision",
    "Timer_case_yellow": "whole-case warning",
    "Timer_case_red": "whole-case limit exceeded",
    "Task_review": "department review",
    "Task_commitment": "approval on commitment",
    "Task_supplement": "missing materials supplied",
    "Task_correct": "applicant's correction (received at the window)",
    "Task_escalate": "escalation of an overdue review",
    "Task_special_paused": "special step (clock stopped)",
    "Task_special_counted": "special step (clock running)",
    "Timer_yellow": "yellow card",
    "Timer_red": "red card",
    "Timer_tacit": "tacit approval",
    "Timer_supplement_lapsed": "supplement deadline lapsed",
    "Task_verify": "post-approval verification",
    "Task_revoke": "permit revoked, credit record",
    "Task_verify_escalate": "overdue verification escalated",
    "Task_intake": "joint acceptance: one-window intake",
    "Task_inspect_phase1": "joint site inspection, phase 1 (planning, fire, civil defence)",
    "Task_inspect_phase2": "joint site inspection, phase 2 (utilities, archives)",
    "Task_inspect_all": "joint site inspection (one-stop)",
    "Task_opinion": "joint acceptance opinion",
    "Task_push": "pushed to real-estate registration",
    "End_done": "completed",
    "End_not_accepted": "not accepted",
    "End_opening_withdrawn": "withdrawn by the applicant",
    "End_unit_accepted": "unit work accepted",
    "End_unit_unqualified": "rectification ordered",
}

STAGES = {              # legal clock stage -> (zh, en)
    "case": ("全流程", "whole case"),
    "opening": ("企业开办", "enterprise opening"),
    "planning": ("立项用地规划许可阶段", "planning stage"),
    "engineering": ("工程建设许可阶段", "engineering stage"),
    "construction": ("施工许可阶段", "construction stage"),
    "acceptance": ("竣工联合验收", "joint acceptance"),
    "review": ("部门审查", "review"),
    "special": ("特殊环节", "special step"),
    "verification": ("事后核查", "verification"),
}

# submitted form fields worth reading in a timeline: key -> (zh label, en label, {value: (zh, en)})
# a value mapped to None is left out (a "no" nobody needs to read)
FIELDS: dict[str, tuple[str, str, dict]] = {
    "decision": ("结论", "decision", {"approve": ("准予", "approved"), "reject": ("不予", "refused"),
                                     "correction": ("退回补正", "returned for correction"),
                                     "special": ("启动特殊环节", "special step")}),
    "intakeDecision": ("受理决定", "intake", {"accept": ("受理", "accepted"), "reject": ("不予受理", "not accepted")}),
    "accepted": ("受理决定", "intake", {"yes": ("受理", "accepted"), "no": ("不予受理", "not accepted")}),
    "acceptanceMode": ("受理方式", "mode", {"normal": ("材料齐全，一般受理", "complete materials"),
                                        "deficiency": ("容缺受理", "accepted with materials missing (容缺)"),
                                        "one_stop": ("一站式联合验收", "one-stop"),
                                        "two_phase": ("两段式联合验收", "two-phase")}),
    "commitment": ("告知承诺", "commitment route", {"yes": ("是", "yes"), "no": None}),
    "landContractSigned": ("土地出让合同", "land contract", {
        "yes": ("已签订（工程建设许可与施工许可同步办理）", "signed (engineering and construction permits side by side)"),
        "no": ("未签订", "not signed")}),
    "permitNo": ("证号", "permit no.", {}),
    "unitWorkList": ("单位工程", "unit works", {}),
    "inspectionMethod": ("查验方式", "inspection", {"onsite": ("联合现场查验", "joint on-site"),
                                                "video": ("远程视频查验", "remote video")}),
    "acceptanceResult": ("验收结论", "result", {"qualified": ("联合验收合格", "qualified"),
                                             "unqualified": ("不合格，限期整改", "not qualified")}),
    "opinionNo": ("意见书编号", "opinion no.", {}),
    "measure": ("督办措施", "measure", {"reminder": ("电话督促", "reminder"), "notice": ("督办通知", "notice"),
                                    "interview": ("约谈", "interview"), "accountability": ("问责", "accountability")}),
    "correctionItems": ("需补正", "to correct", {}),
    "correctedMaterials": ("已补正", "corrected", {}),
    "opinion": ("意见", "opinion", {}),
    "intakeOpinion": ("意见", "opinion", {}),
    "acceptanceOpinion": ("意见", "opinion", {}),
    "issueOpinion": ("意见", "opinion", {}),
    "inspectionFindings": ("查验情况", "findings", {}),
    "jointOpinionText": ("意见", "opinion", {}),
    "resultNote": ("出件说明", "note", {}),
    "supervisionOpinion": ("督办意见", "opinion", {}),
}

RESULTS = {             # variables a department system returns -> (zh label, en label)
    "creditCode": ("统一社会信用代码", "credit code"),
    "marketRegistrationNo": ("注册号", "registration no."),
    "sealIds": ("电子印章", "e-seals"),
    "taxUKeyNo": ("税务UKey", "tax UKey"),
    "socialSecurityNo": ("社保登记号", "social-security no."),
    "fundAccountNo": ("公积金账号", "housing-fund account"),
    "bankReservationId": ("预约号", "reservation"),
    "bankName": ("开户行", "bank"),
    "bankAccountNo": ("账号", "account no."),
    "eLicenceId": ("电子营业执照", "e-licence"),
    "realEstateReceiptNo": ("不动产登记回执", "real-estate receipt"),
    "notificationChannel": ("方式", "channel"),
    "notificationId": ("通知编号", "notice id"),
}


@dataclass
class Entry:
    at: datetime
    zh: str
    en: str


@dataclass
class CaseRecord:
    """What the server holds about one case, read back after the demo drove it."""
    title: tuple[str, str]
    case_id: str
    business_key: str
    state: str
    started: datetime
    ended: datetime | None
    entries: list[Entry]
    clocks: list[dict]
    variables: dict = field(default_factory=dict)

    @property
    def acceptance_day(self) -> date:
        """Day 0 of the working-day count: the day the first legal clock started (受理当日不计)."""
        starts = [parse_time(c["started"]) for c in self.clocks if c.get("started")]
        return min(starts).date() if starts else self.started.date()


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


# --- the working-day calendar -----------------------------------------------------------

class WorkingCalendar:
    """China's official calendar as the server has it (GET /api/v1/calendar/days): weekends
    off, holidays and adjusted working days (调休) as listed."""

    def __init__(self, days: Iterable[dict]) -> None:
        self.days = {date.fromisoformat(d["date"]): d for d in days}

    def is_working(self, day: date) -> bool:
        listed = self.days.get(day)
        return listed["working"] if listed else day.weekday() < 5

    def working_days_after(self, start: date, day: date) -> int:
        """Working days after `start` up to and including `day` (the start day is not counted)."""
        count, current = 0, start
        while current < day:
            current += timedelta(days=1)
            count += self.is_working(current)
        return count

    def describe(self, day: date) -> tuple[str, str]:
        """'2025-09-28 周日（调休上班）', 'Sun 2025-09-28 (adjusted working day)'."""
        zh = f"{day.isoformat()} 周{WEEKDAYS_ZH[day.weekday()]}"
        en = f"{WEEKDAYS_EN[day.weekday()]} {day.isoformat()}"
        listed = self.days.get(day)
        if listed:
            name = listed["name"].split("（")[0]
            zh += f"（{name}）"
            en += " (adjusted working day)" if listed["working"] else f" (holiday: {name})"
        elif day.weekday() >= 5:
            zh, en = zh + "（休息日）", en + " (weekend)"
        return zh, en


# --- reading a case back ----------------------------------------------------------------

Who = Callable[[str | None], tuple[str, str]]


def department(group: str | None) -> tuple[str, str]:
    if group is None:
        return "—", "—"
    return DEPARTMENTS.get(group, (group, group))


def limit_text(limit: dict | str) -> tuple[str, str]:
    """{"value": 5.0, "unit": "workdays"} or "5 workdays" -> ("5个工作日", "5 working days")."""
    if isinstance(limit, str):
        value, unit = limit.split()
        limit = {"value": float(value), "unit": unit}
    value = f"{limit['value']:g}"
    zh_unit, en_unit = {"workdays": ("个工作日", "working day"), "workhours": ("个工作小时", "working hour"),
                        "days": ("个自然日", "calendar day")}.get(limit["unit"], (limit["unit"], limit["unit"]))
    return f"{value}{zh_unit}", f"{value} {en_unit}" + ("" if limit["value"] == 1 else "s")


def clock_name(clock: dict) -> tuple[str, str]:
    stage_zh, stage_en = STAGES.get(clock["stage"], (clock["stage"], clock["stage"]))
    if clock["stage"] in ("review", "special", "verification") and clock.get("department"):
        dept_zh, dept_en = department(clock["department"])
        return f"{dept_zh}{stage_zh}", f"{dept_en} {stage_en}"
    return stage_zh, stage_en


def summarise_form(values: dict) -> tuple[str, str]:
    zh, en = [], []
    for key, (label_zh, label_en, options) in FIELDS.items():
        if key not in values or values[key] in (None, ""):
            continue
        value = values[key]
        if options:
            shown = options.get(value, (str(value), str(value)))
            if shown is None:
                continue
            zh.append(f"{label_zh}：{shown[0]}")
            en.append(f"{label_en}: {shown[1]}")
        else:
            text = str(value).replace("\n", "、")
            zh.append(f"{label_zh}：「{text}」")
            en.append(f"{label_en}: “{text}”")
    return "；".join(zh), "; ".join(en)


def summarise_results(values: dict) -> tuple[str, str]:
    zh, en = [], []
    for key, (label_zh, label_en) in RESULTS.items():
        if key not in values:
            continue
        value = values[key]
        if key == "sealIds":
            seals = value if isinstance(value, list) else json.loads(value)
            zh.append(f"{label_zh} {len(seals)} 枚")
            en.append(f"{len(seals)} {label_en}")
        else:
            zh.append(f"{label_zh} {value}")
            en.append(f"{label_en} {value}")
    return "，".join(zh), ", ".join(en)


class _Reader:
    """Turns a dossier's audit events into timeline entries."""

    def __init__(self, dossier: dict, who: Who, zone: tzinfo) -> None:
        self.who = who
        self.zone = zone
        self.clocks = dossier["legalClocks"]
        self.steps = dossier["steps"]
        self.events = dossier["auditTrail"]["events"]
        self.started_clocks: set[str] = set()

    def local(self, value: str) -> datetime:
        return parse_time(value).astimezone(self.zone)

    def step(self, activity_id: str | None, at: datetime | None = None, name: str | None = None) -> tuple[str, str]:
        """The step's name in the diagram: a called process may use the caller's ids (Task_notify,
        End_done), so the step that ended closest to `at` is the one meant."""
        if name is None:
            named = [s for s in self.steps if s["activityId"] == activity_id and s.get("name")]
            if named and at is not None:
                def distance(step):
                    moment = step.get("endTime") or step.get("startTime")
                    return abs((self.local(moment) - at).total_seconds())
                named.sort(key=distance)
            name = named[0]["name"] if named else None
        zh = name or activity_id or "—"
        en = STEPS_EN.get(activity_id or "", (activity_id or "—").replace("_", " "))
        return zh, en

    def when(self, value: str) -> str:
        return self.local(value).strftime("%Y-%m-%d %H:%M:%S")

    def clock_at(self, stage: str, at: datetime, department_: str | None = None) -> dict | None:
        """The clock of `stage` (and department) running at `at`."""
        for clock in self.clocks:
            if clock["stage"] != stage or (department_ and clock.get("department") != department_):
                continue
            started = self.local(clock["started"])
            stopped = self.local(clock["stopped"]) if clock.get("stopped") else None
            if started <= at + timedelta(seconds=1) and (stopped is None or at <= stopped + timedelta(seconds=1)):
                return clock
        return None

    def paused_clock(self, stage: str, at: datetime, edge: str) -> dict | None:
        """The clock whose pause began (edge 'from') or ended (edge 'to') at `at`."""
        for clock in self.clocks:
            if clock["stage"] != stage:
                continue
            for pause in clock.get("pauses") or []:
                if pause.get(edge) and abs((self.local(pause[edge]) - at).total_seconds()) < 1.5:
                    return clock
        return None

    def entries(self) -> list[Entry]:
        out: list[Entry] = []
        starts: list[tuple[datetime, dict]] = []
        for index, event in enumerate(self.events):
            at = self.local(event["at"])
            kind, data = event["kind"], event.get("data") or {}
            if kind != "LegalClockStarted" and starts:
                out.append(self.clock_starts(starts))
                starts = []
            if kind == "LegalClockStarted":
                starts.append((at, event))
                continue
            following = self.events[index + 1] if index + 1 < len(self.events) else None
            entry = self.entry(kind, at, event, data, following)
            if entry is not None:
                out.append(entry)
        if starts:
            out.append(self.clock_starts(starts))
        return out

    def entry(self, kind: str, at: datetime, event: dict, data: dict, following: dict | None) -> Entry | None:
        activity = event.get("activityId")
        actor_zh, actor_en = self.who(event.get("actor"))
        if kind == "ProcessInstanceStarted":
            step_zh, step_en = self.step("StartEvent_apply", at)
            key = data.get("businessKey")
            return Entry(at, f"{actor_zh}｜{step_zh}：立案，业务号 {key}",
                         f"{actor_en} | {step_en}: case opened, business key {key}")
        if kind == "TaskCompleted":
            step_zh, step_en = self.step(activity, at, data.get("name"))
            form_zh, form_en = summarise_form(data.get("variables") or {})
            return Entry(at, f"{actor_zh}｜{step_zh}" + (f"：{form_zh}" if form_zh else ""),
                         f"{actor_en} | {step_en}" + (f": {form_en}" if form_en else ""))
        if kind == "ExternalTaskCompleted":
            step_zh, step_en = self.step(activity, at)
            system_zh, system_en = SYSTEMS.get(data.get("topic"), (data.get("topic"), data.get("topic")))
            result_zh, result_en = summarise_results(data.get("variables") or {})
            via = f"worker {data.get('workerId')}"
            return Entry(at, f"{system_zh}（{via}）｜{step_zh}" + (f"：{result_zh}" if result_zh else ""),
                         f"{system_en} ({via}) | {step_en}" + (f": {result_en}" if result_en else ""))
        if kind == "ExternalTaskBpmnError":
            step_zh, step_en = self.step(activity, at)
            code = data.get("errorCode")
            return Entry(at, f"{actor_zh}｜{step_zh}：退回（{code}）", f"{actor_en} | {step_en}: refused ({code})")
        if kind == "MessageCorrelated":
            step_zh, step_en = self.step(activity, at)
            result_zh, result_en = summarise_results(data.get("variables") or {})
            name = data.get("messageName")
            return Entry(at, f"消息 {name}（由 {actor_zh} 送达）｜{step_zh}" + (f"：{result_zh}" if result_zh else ""),
                         f"message {name} (delivered by {actor_en}) | {step_en}"
                         + (f": {result_en}" if result_en else ""))
        if kind == "TimerFired":
            if following and following["kind"].startswith("Legal:") and following.get("activityId") == activity:
                return None         # the legal event right after it says what the timer meant
            step_zh, step_en = self.step(activity, at)
            return Entry(at, f"定时器｜{step_zh}", f"timer | {step_en}")
        if kind == "LegalClockPaused":
            clock = self.paused_clock(data.get("stage"), at, "from")
            name_zh, name_en = clock_name(clock) if clock else STAGES.get(data.get("stage"), ("?", "?"))
            reason = data.get("reason") or "—"
            return Entry(at, f"⏸ {name_zh}时限暂停计时（{reason}），暂停期间不计入时限",
                         f"⏸ {name_en} clock paused ({reason}); the time until it resumes does not count")
        if kind == "LegalClockResumed":
            clock = self.paused_clock(data.get("stage"), at, "to")
            name_zh, name_en = clock_name(clock) if clock else STAGES.get(data.get("stage"), ("?", "?"))
            when = self.when(data["deadline"])
            return Entry(at, f"▶ {name_zh}时限恢复计时，截止顺延至 {when}",
                         f"▶ {name_en} clock resumed, deadline moved to {when}")
        if kind.startswith("Legal:"):
            return self.legal(kind[len("Legal:"):], at, data)
        if kind in ("ExternalTaskFailed", "IncidentCreated"):
            message = data.get("errorMessage") or data.get("incidentMessage") or ""
            step_zh, step_en = self.step(activity, at)
            return Entry(at, f"✗ {step_zh}：{kind} {message}", f"✗ {step_en}: {kind} {message}")
        return None     # claims, assignments: the completion line names the officer

    def legal(self, kind: str, at: datetime, data: dict) -> Entry | None:
        clock = self.clock_at(data.get("stage"), at, data.get("department"))
        name_zh, name_en = clock_name(clock) if clock else STAGES.get(data.get("stage"), (data.get("stage"),) * 2)
        if kind == "tacit_approval":
            limit_zh, limit_en = limit_text(data["limit"]) if data.get("limit") else ("", "")
            when = self.when(data["deadline"]) if data.get("deadline") else "?"
            dept_zh, dept_en = department(data.get("department"))
            return Entry(at, f"⏰ 超时默许：{dept_zh}未在法定时限 {limit_zh}（截止 {when}）内作出决定，"
                             f"视为同意，记入该部门超时默许",
                         f"⏰ tacit approval: {dept_en} did not decide within its legal limit of {limit_en} "
                         f"(deadline {when}); deemed approved and recorded against the department")
        if kind == "yellow":
            warned = self.when(clock["warningAt"]) if clock and clock.get("warningAt") else "?"
            due = self.when(clock["deadline"]) if clock and clock.get("deadline") else "?"
            return Entry(at, f"⚠ 黄牌预警（催办）：{name_zh}临近时限（预警点 {warned}，截止 {due}）",
                         f"⚠ yellow card (reminder): the {name_en} limit is running out "
                         f"(warning point {warned}, deadline {due})")
        if kind == "red":
            return Entry(at, f"🟥 红牌：{name_zh}时限届满，转督办", f"🟥 red card: {name_en} limit ran out, escalated")
        if kind == "decided":
            if data.get("stage") == "review":
                return None     # the officer's decision line says it
            return Entry(at, f"✓ {name_zh}在时限内办结", f"✓ {name_en} decided within its limit")
        if kind == "overdue_decided":
            return Entry(at, f"✗ {name_zh}超过时限办结", f"✗ {name_en} decided after its limit ran out")
        return Entry(at, f"{name_zh}：{kind}", f"{name_en}: {kind}")

    def clock_starts(self, starts: list[tuple[datetime, dict]]) -> Entry:
        """Clocks started by one step, on one line: which limit, for whom, until when.

        The audit events do not name departments; the case's clocks started at that moment by
        those elements do.  When they are exactly as many as the events, the step started them
        all and the line names each one's department; otherwise (another step started clocks of
        the same kind in the same second) it names none rather than guess."""
        def started_by(clock, at, event):
            data = event["data"]
            return (clock["stage"] == data["stage"] and clock.get("activityId") == event.get("activityId")
                    and limit_text(clock["limit"]) == limit_text(data["limit"])
                    and abs((self.local(clock["started"]) - at).total_seconds()) < 1.5)
        pool = [c for c in self.clocks if c["id"] not in self.started_clocks
                and any(started_by(c, at, event) for at, event in starts)]
        certain = len(pool) == len(starts)
        zh, en = [], []
        for at, event in starts:
            data = event["data"]
            clock = next((c for c in pool if started_by(c, at, event)), None)
            if clock is not None:
                pool.remove(clock)
                self.started_clocks.add(clock["id"])
            name_zh, name_en = (clock_name(clock) if certain and clock
                                else STAGES.get(data["stage"], (data["stage"],) * 2))
            kind_zh, kind_en = ("承诺", "promised") if data.get("kind") == "promised" else ("法定", "legal")
            limit_zh, limit_en = limit_text(data["limit"])
            when = self.when(data["deadline"])
            zh.append(f"{name_zh}（{kind_zh}）{limit_zh}，至 {when}")
            en.append(f"{name_en} ({kind_en}) {limit_en}, until {when}")
        return Entry(starts[0][0], "⏱ 时限起算：" + "；".join(zh), "⏱ clocks started: " + "; ".join(en))


def read_case(api, case_id: str, title: tuple[str, str], who: Who, zone: tzinfo) -> CaseRecord:
    """The case as the server recorded it: dossier (audit trail, steps, clocks) and variables."""
    dossier = api.get(f"/api/v1/process-instance/{case_id}/dossier")
    reader = _Reader(dossier, who, zone)
    instance = dossier["processInstance"]
    entries = reader.entries()
    if instance.get("endTime"):
        ended = reader.local(instance["endTime"])
        end_zh, end_en = reader.step(instance.get("endActivityId"), ended)
        entries.append(Entry(ended, f"■ 流程结束：{end_zh}", f"■ case ended: {end_en}"))
    variables = {}
    for name, row in dossier["variables"].items():
        value = row.get("value")
        if row.get("type") == "Json" and isinstance(value, str):
            value = json.loads(value)
        variables[name] = value
    return CaseRecord(title=title, case_id=case_id, business_key=instance.get("businessKey"),
                      state=instance.get("state"), started=reader.local(instance["startTime"]),
                      ended=reader.local(instance["endTime"]) if instance.get("endTime") else None,
                      entries=entries, clocks=reader.clocks, variables=variables)


# --- printing -----------------------------------------------------------------------------

def render(record: CaseRecord, calendar: WorkingCalendar, lang: str, zone: tzinfo) -> list[str]:
    """The timeline grouped by day (with its working-day number since acceptance), then the clocks."""
    zh, en = lang in ("zh", "both"), lang in ("en", "both")
    day0 = record.acceptance_day
    lines = []
    first_zh, first_en = calendar.describe(day0)
    if zh:
        lines.append(f"  时间线（受理日 {first_zh}；按国家工作日历计，含调休，受理当日为第 0 日）")
    if en:
        lines.append(f"  Timeline (accepted {first_en}; working days on China's official calendar, "
                     f"adjusted working days included, day 0 = the day of acceptance)")
    current: date | None = None
    for entry in sorted(record.entries, key=lambda e: e.at):
        day = entry.at.date()
        if day != current:
            current = day
            lines.append("")
            lines += _day_heading(calendar, day0, day, zh, en)
        clock = entry.at.strftime("%H:%M:%S")
        if zh:
            lines.append(f"    {clock}  {entry.zh}")
        if en:
            lines.append(f"    {clock}  {entry.en}" if not zh else f"              {entry.en}")
    lines.append("")
    lines += _clock_table(record, calendar, day0, zh, en, zone)
    return lines


def _day_heading(calendar: WorkingCalendar, day0: date, day: date, zh: bool, en: bool) -> list[str]:
    day_zh, day_en = calendar.describe(day)
    number = calendar.working_days_after(day0, day) if day >= day0 else 0
    if day == day0:
        count_zh, count_en = "第 0 日（受理当日，不计入时限）", "day 0 (day of acceptance, not counted)"
    elif calendar.is_working(day):
        count_zh, count_en = f"第 {number} 个工作日", f"working day {number}"
    else:
        count_zh, count_en = f"非工作日（此前已计 {number} 个工作日）", f"not a working day ({number} counted so far)"
    out = []
    if zh:
        out.append(f"  ▌{day_zh} · {count_zh}")
    if en:
        out.append(f"  ▌{day_en} · {count_en}")
    return out


def _clock_table(record: CaseRecord, calendar: WorkingCalendar, day0: date, zh: bool, en: bool,
                 zone: tzinfo) -> list[str]:
    lines = []
    if zh:
        lines.append("  时限（法定/承诺）一览")
    if en:
        lines.append("  Legal and promised limits")
    for clock in sorted(record.clocks, key=lambda c: (c["started"], c["stage"])):
        name_zh, name_en = clock_name(clock)
        limit_zh, limit_en = limit_text(clock["limit"])
        kind_zh, kind_en = ("承诺", "promised") if clock["kind"] == "promised" else ("法定", "legal")
        text_zh = f"{name_zh}（{kind_zh} {limit_zh}）"
        text_en = f"{name_en} ({kind_en}, {limit_en})"
        for pause in clock.get("pauses") or []:
            start = parse_time(pause["from"]).astimezone(zone).strftime("%m-%d %H:%M")
            end = parse_time(pause["to"]).astimezone(zone).strftime("%m-%d %H:%M") if pause.get("to") else "…"
            text_zh += f"，暂停 {start} → {end}（{pause.get('reason') or ''}）"
            text_en += f", paused {start} → {end} ({pause.get('reason') or ''})"
        if clock.get("deadline"):
            deadline = parse_time(clock["deadline"]).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
            text_zh += f"，截止 {deadline}"
            text_en += f", deadline {deadline}"
        if clock.get("stopped"):
            stopped = parse_time(clock["stopped"]).astimezone(zone)
            number = calendar.working_days_after(day0, stopped.date())
            outcome_zh, outcome_en = {"decided": ("办结", "decided"), "tacit_approval": ("超时默许", "tacit approval"),
                                      "withdrawn": ("撤回", "withdrawn")}.get(clock.get("outcome"),
                                                                             (clock.get("outcome"),) * 2)
            text_zh += f"，{outcome_zh}于受理后第 {number} 个工作日"
            text_en += f", {outcome_en} on working day {number}"
        else:
            text_zh += "，仍在计时"
            text_en += ", still running"
        status_zh = {"green": "绿", "yellow": "黄", "red": "红"}.get(clock.get("status"), clock.get("status"))
        if zh:
            lines.append(f"    [{status_zh}] {text_zh}")
        if en:
            lines.append(f"    [{clock.get('status')}] {text_en}")
    return lines
