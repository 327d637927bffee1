"""Timers, the working-day calendar and legal clocks, through the HTTP API with the
test clock moved (no sleeps: the scheduler is woken by the clock move; we wait for it)."""
from __future__ import annotations

import json
import time

import pytest

from tests.conftest import FIXTURES, Client, typed

TACIT = FIXTURES / "tacit_review.bpmn"


@pytest.fixture
def settings(settings):
    settings.test_clock = True
    return settings


def set_clock(client: Client, now: str) -> None:
    r = client.put("/api/v1/test/clock", json={"now": now})
    assert r.status_code == 200, r.get_json()


def eventually(check, timeout=10.0):
    """The scheduler fires in its own thread: wait (bounded) for its commit."""
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > end:
            return value
        time.sleep(0.05)


def clocks(client, instance_id):
    r = client.get(f"/api/v1/process-instance/{instance_id}/legal-clocks")
    assert r.status_code == 200, r.get_json()
    return {c["stage"]: c for c in r.get_json()}


def state(client, instance_id):
    return client.get(f"/engine-rest/history/process-instance/{instance_id}").get_json()["state"]


def start_review(client, limit="3wd", business_key=None):
    assert client.deploy(TACIT).status_code == 200
    return client.start("tacit_review", typed(limit=limit), business_key=business_key)["id"]


def test_add_working_days_crosses_the_adjusted_sunday_and_national_day(client):
    r = client.get("/api/v1/calendar/add-working-days", query_string={"start": "2025-09-26", "days": 3})
    assert r.status_code == 200, r.get_json()
    assert r.get_json() == {"date": "2025-09-30", "deadline": "2025-09-30T23:59:59+08:00", "provisional": False}
    r = client.get("/api/v1/calendar/add-working-days", query_string={"start": "2025-09-26", "days": 4})
    assert r.get_json()["date"] == "2025-10-09"          # Sunday 28th works, 1-8 October off, 11th works


def test_a_hall_lists_and_copies_calendars_at_the_documented_path(client):
    """GET and POST /api/v1/calendars (the README's paths; the routes answered at
    /api/v1/calendar/s before): a county hall's copy of CN takes its own typhoon day."""
    r = client.get("/api/v1/calendars")
    assert r.status_code == 200, r.get_data(as_text=True)[:200]
    assert [c["id"] for c in r.get_json()] == ["CN"]
    r = client.post("/api/v1/calendars", json={"id": "CN-hainan", "name": "海南省", "base": "CN"})
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["id"] == "CN-hainan"
    assert [c["id"] for c in client.get("/api/v1/calendars").get_json()] == ["CN", "CN-hainan"]
    r = client.put("/api/v1/calendar/days/2025-09-29", query_string={"calendar": "CN-hainan"},
                   json={"working": False, "name": "台风停工"})
    assert r.status_code == 200, r.get_json()
    due = {cal: client.get("/api/v1/calendar/add-working-days", query_string={
        "start": "2025-09-26", "days": 3, "calendar": cal}).get_json()["date"] for cal in ("CN", "CN-hainan")}
    assert due == {"CN": "2025-09-30", "CN-hainan": "2025-10-09"}      # named in the query: CN unchanged
    r = client.put("/api/v1/calendar/days/2025-09-30", query_string={"calendar": "CN"},
                   json={"working": False, "calendar": "CN-hainan"})
    assert r.status_code == 400 and "two calendars" in r.get_json()["message"], r.get_json()
    r = client.put("/api/v1/calendar/days/2025-09-30", json={"working": False, "calendar": "CN-hainan"})
    assert r.status_code == 200, r.get_json()
    due = {cal: client.get("/api/v1/calendar/add-working-days", query_string={
        "start": "2025-09-26", "days": 3, "calendar": cal}).get_json()["date"] for cal in ("CN", "CN-hainan")}
    assert due == {"CN": "2025-09-30", "CN-hainan": "2025-10-10"}      # named in the body
    assert client.get("/api/v1/calendar/s").status_code == 404


def test_unpublished_year_is_provisional_until_imported(client):
    r = client.get("/api/v1/calendar/add-working-days", query_string={"start": "2031-01-30", "days": 5})
    assert r.status_code == 200
    assert r.get_json()["provisional"] is True
    body = {"year": 2031, "days": [{"date": "2031-02-03", "working": False, "name": "春节"}]}
    r = client.post("/api/v1/calendar/import", json=body)
    assert r.status_code == 200, r.get_json()
    r = client.get("/api/v1/calendar/add-working-days", query_string={"start": "2031-01-30", "days": 5})
    # Fri 31, [Mon 3 Feb off], Tue 4, Wed 5, Thu 6, Fri 7
    assert r.get_json() == {"date": "2031-02-07", "deadline": "2031-02-07T23:59:59+08:00", "provisional": False}


def test_bad_calendar_requests_are_clear_400s_and_404s(client):
    r = client.get("/api/v1/calendar/add-working-days", query_string={"start": "2025-09-26", "days": 3,
                                                                       "calendar": "nowhere"})
    assert r.status_code == 404 and "nowhere" in r.get_json()["message"]
    r = client.get("/api/v1/calendar/add-working-days", query_string={"start": "2025-09-26", "days": -1})
    assert r.status_code == 400 and "days" in r.get_json()["message"]
    r = client.get("/api/v1/calendar/add-working-days", query_string={"start": "2025-09-26", "days": 100000})
    assert r.status_code == 400
    r = client.get("/api/v1/calendar/add-working-days", query_string={"start": "someday", "days": 3})
    assert r.status_code == 400 and "someday" in r.get_json()["message"]
    r = client.put("/api/v1/calendar/days/2025-13-01", json={"working": True})
    assert r.status_code == 400


def test_override_a_day_moves_open_deadlines(client):
    set_clock(client, "2025-09-26T10:00:00+08:00")
    instance = start_review(client)
    assert clocks(client, instance)["review"]["deadline"] == "2025-09-30T23:59:59+08:00"
    r = client.put("/api/v1/calendar/days/2025-09-29", json={"working": False, "name": "台风停工"})
    assert r.status_code == 200 and r.get_json()["working"] is False
    clock = clocks(client, instance)["review"]
    assert clock["deadline"] == "2025-10-09T23:59:59+08:00"
    task = client.tasks(processInstanceId=instance)[0]
    assert task["due"].startswith("2025-10-09T23:59:59")
    r = client.put("/api/v1/calendar/days/2025-09-29", json={"working": True}, headers={})
    assert clocks(client, instance)["review"]["deadline"] == "2025-09-30T23:59:59+08:00"


def test_silent_review_is_tacitly_approved_at_the_end_of_the_third_working_day(client):
    officer = client.create_user("fgw1", groups=["fgw"])
    set_clock(client, "2025-09-26T10:00:00+08:00")             # Friday
    instance = start_review(client, business_key="SZ-TACIT-1")
    task = client.tasks(processInstanceId=instance)[0]
    assert task["due"].startswith("2025-09-30T23:59:59")        # the legal deadline is the task's due
    assert officer.post(f"/engine-rest/task/{task['id']}/claim", json={"userId": "fgw1"}).status_code == 204
    review = clocks(client, instance)["review"]
    assert review["status"] == "green" and review["limit"] == {"value": 3.0, "unit": "workdays"}

    set_clock(client, "2025-09-30T23:58:00+08:00")              # a minute before: yellow, not yet approved
    assert eventually(lambda: clocks(client, instance)["review"]["status"] == "yellow")
    assert state(client, instance) == "ACTIVE"

    set_clock(client, "2025-10-01T00:00:01+08:00")
    assert eventually(lambda: state(client, instance) == "COMPLETED")
    review = clocks(client, instance)["review"]
    assert review["outcome"] == "tacit_approval" and review["department"] == "fgw"
    ended = client.get("/engine-rest/history/activity-instance",
                       query_string={"processInstanceId": instance, "activityId": "End_tacit"}).get_json()
    assert len(ended) == 1
    variables = client.get("/engine-rest/history/variable-instance",
                           query_string={"processInstanceId": instance}).get_json()
    values = {v["name"]: v["value"] for v in variables}
    assert values["decision"] == "approve"
    values["tacitApproval"] = json.loads(values["tacitApproval"])        # a Json variable travels as text
    assert values["tacitApproval"]["department"] == "fgw" and values["tacitApproval"]["assignee"] == "fgw1"
    assert values["tacitApproval"]["limit"] == "3 workdays"

    stats = client.get("/api/v1/statistics", query_string={"processDefinitionKey": "tacit_review"}).get_json()
    assert stats["totals"]["tacitApprovals"] == 1 and stats["totals"]["warnings"] == 1
    assert stats["groups"][0]["department"] == "fgw" and stats["totals"]["tacitApprovalRate"] == 1.0


def test_what_the_server_did_on_its_own_is_audited_with_the_actor_system(client):
    """Start-up (the administrator's password), the timers, the warning and the tacit
    approval name the actor `system`; the first was null, and a step the engine passed
    on its own was `engine` in the dossier."""
    client.create_user("fgw1", groups=["fgw"])
    set_clock(client, "2025-09-26T10:00:00+08:00")
    instance = start_review(client)
    set_clock(client, "2025-10-01T00:00:01+08:00")
    assert eventually(lambda: state(client, instance) == "COMPLETED")

    started = client.get("/api/v1/audit/system-events", query_string={"kind": "AdminPasswordSet"}).get_json()
    assert [(e["actor"], e["data"]) for e in started] == [("system", {"userId": "admin", "from": "ADMIN_PASSWORD"})]
    dossier = client.get(f"/api/v1/process-instance/{instance}/dossier").get_json()
    events = [(e["kind"], e["actor"]) for e in dossier["auditTrail"]["events"]]
    assert events[:2] == [("ProcessInstanceStarted", "admin"), ("LegalClockStarted", "admin")], events
    by_the_server = events[2:]                            # one firing may carry both timers that fell due
    assert {kind for kind, _ in by_the_server} == {"TimerFired", "Legal:yellow", "Legal:tacit_approval"}, events
    assert {actor for _, actor in by_the_server} == {"system"}, events
    steps = {s["activityId"]: s["actor"] for s in dossier["steps"]}
    assert steps["Timer_tacit"] == steps["End_tacit"] == "system", steps
    assert dossier["auditTrail"]["verification"]["valid"] is True


def test_yellow_fires_at_eighty_percent_of_office_time(client):
    set_clock(client, "2025-09-26T10:00:00+08:00")
    instance = start_review(client)
    # counted as the deadline is, Friday (the day of acceptance) not: the worked Sunday, Monday
    # and Tuesday, 21 office hours; 80 % = 16.8 h → Tuesday 09:00 + 2.8 h = 11:48
    assert clocks(client, instance)["review"]["warningAt"] == "2025-09-30T11:48:00+08:00"
    set_clock(client, "2025-09-30T11:40:00+08:00")
    time.sleep(0.3)
    assert clocks(client, instance)["review"]["status"] == "green"
    stats = client.get("/api/v1/statistics").get_json()
    assert stats["totals"]["warnings"] == 0
    set_clock(client, "2025-09-30T11:49:00+08:00")
    assert eventually(lambda: client.get("/api/v1/statistics").get_json()["totals"]["warnings"] == 1)
    assert state(client, instance) == "ACTIVE"                  # a warning does not end the review


def test_a_five_working_day_limit_turns_yellow_at_the_end_of_its_fourth_working_day(client):
    """The day of acceptance is not counted, in the warning and the time remaining as in the
    deadline: accepted Thursday 25 September 2025, the five working days are Friday, the
    worked Sunday, Monday, Tuesday and Thursday 9 October (after National Day); 80 % is
    the end of Tuesday's office hours, and on Thursday five whole days of office time remain."""
    set_clock(client, "2025-09-25T10:00:00+08:00")
    instance = start_review(client, limit="5wd")
    review = clocks(client, instance)["review"]
    assert review["deadline"] == "2025-10-09T23:59:59+08:00"
    assert review["warningAt"] == "2025-09-30T17:30:00+08:00"
    assert (review["remainingWorkingDays"], review["remainingWorkingSeconds"]) == (5, 5 * 7 * 3600)
    set_clock(client, "2025-09-26T12:00:00+08:00")              # Friday noon: three office hours used
    review = clocks(client, instance)["review"]
    assert (review["remainingWorkingDays"], review["remainingWorkingSeconds"]) == (4, 32 * 3600)


@pytest.mark.parametrize("accepted, last_day", [
    ("2025-10-20T10:00:00+08:00", "2025-11-10"),     # day 20 is Sunday 9 November: Monday
    ("2025-09-11T10:00:00+08:00", "2025-10-09"),     # day 20 is 1 October: after National Day
    ("2025-09-21T10:00:00+08:00", "2025-10-11"),     # day 20 is Saturday 11 October, worked (调休): kept
    ("2025-11-04T10:00:00+08:00", "2025-11-24"),     # day 20 is a Monday: kept
])
def test_a_natural_day_limit_whose_last_day_is_a_day_off_ends_on_the_next_working_day(client, accepted, last_day):
    """民法典 第二百零三条: a period whose last day is a statutory day off ends on the day after it."""
    set_clock(client, accepted)
    instance = start_review(client, limit="20d")
    review = clocks(client, instance)["review"]
    assert review["deadline"] == f"{last_day}T23:59:59+08:00", review
    [task] = client.tasks(processInstanceId=instance)
    assert task["due"].startswith(f"{last_day}T23:59:59")


def test_correction_pauses_the_clock_and_moves_the_tacit_deadline(client):
    client.create_user("fgw1", groups=["fgw"])
    client.create_user("applicant1", groups=["applicants"])
    set_clock(client, "2025-11-03T10:00:00+08:00")              # Monday
    instance = start_review(client)
    assert clocks(client, instance)["review"]["deadline"] == "2025-11-06T23:59:59+08:00"
    set_clock(client, "2025-11-04T10:00:00+08:00")              # Tuesday: send back for correction
    task = client.tasks(processInstanceId=instance)[0]
    assert client.complete(task["id"], typed(decision="correction")).status_code == 204
    review = clocks(client, instance)["review"]
    assert review["paused"] is True and review["deadline"] is None
    set_clock(client, "2025-11-06T10:00:00+08:00")              # Thursday: corrected (2 working days paused)
    time.sleep(0.3)
    assert state(client, instance) == "ACTIVE"                  # nothing fires while paused
    correct = client.tasks(processInstanceId=instance, taskDefinitionKey="Task_correct")[0]
    assert client.complete(correct["id"]).status_code == 204
    review = clocks(client, instance)["review"]
    assert review["paused"] is False and review["deadline"] == "2025-11-10T23:59:59+08:00"
    assert review["pauses"][0]["reason"] == "申请人补正"
    assert client.tasks(processInstanceId=instance)[0]["due"].startswith("2025-11-10T23:59:59")
    set_clock(client, "2025-11-07T23:59:59+08:00")              # the old deadline has passed: still open
    time.sleep(0.3)
    assert state(client, instance) == "ACTIVE"
    set_clock(client, "2025-11-11T00:00:01+08:00")
    assert eventually(lambda: state(client, instance) == "COMPLETED")
    assert clocks(client, instance)["review"]["outcome"] == "tacit_approval"


def test_pause_and_resume_by_api_move_a_waiting_timer(client):
    set_clock(client, "2025-11-03T10:00:00+08:00")
    instance = start_review(client)
    r = client.post(f"/api/v1/process-instance/{instance}/legal-clocks/review/pause", json={"reason": "现场核查"})
    assert r.status_code == 200 and r.get_json()["paused"] is True
    assert client.post(f"/api/v1/process-instance/{instance}/legal-clocks/review/pause", json={}).status_code == 400
    set_clock(client, "2025-11-07T10:00:00+08:00")              # past the original deadline, paused
    time.sleep(0.3)
    assert state(client, instance) == "ACTIVE"
    r = client.post(f"/api/v1/process-instance/{instance}/legal-clocks/review/resume")
    assert r.status_code == 200, r.get_json()
    # paused Mon 3rd → Fri 7th: 4 working days (Tue-Fri); Thu 6th + 4 = Fri 7, Mon 10, Tue 11, Wed 12
    assert r.get_json()["deadline"] == "2025-11-12T23:59:59+08:00"
    assert client.post(f"/api/v1/process-instance/{instance}/legal-clocks/nope/resume").status_code == 404


def test_decision_in_time_stops_the_clock_and_counts(client):
    set_clock(client, "2025-11-03T10:00:00+08:00")
    instance = start_review(client)
    task = client.tasks(processInstanceId=instance)[0]
    assert client.complete(task["id"], typed(decision="approve")).status_code == 204
    review = clocks(client, instance)["review"]
    assert review["outcome"] == "decided" and review["status"] == "green"
    totals = client.get("/api/v1/statistics").get_json()["totals"]
    assert totals["decided"] == 1 and totals["tacitApprovals"] == 0 and totals["tacitApprovalRate"] == 0.0


STOP = '<camunda:property name="legalClock.stop" value="review" />'


def with_outcome(expression: str) -> str:
    """tacit_review whose end stops the clock with legalClock.outcome = `expression`."""
    value = expression.replace('"', "&#34;")
    return TACIT.read_text().replace(STOP, f'{STOP}<camunda:property name="legalClock.outcome" value="{value}" />')


def test_an_outcome_expression_ends_a_withdrawn_case_without_a_decision(client):
    source = with_outcome('${"withdrawn" if decision == "withdraw" else "decided"}')
    assert client.deploy(extra={"outcome.bpmn": source}).status_code == 200
    set_clock(client, "2025-11-03T10:00:00+08:00")
    withdrawn, decided = (client.start("tacit_review", typed(limit="3wd"))["id"] for _ in range(2))
    for instance, decision in ((withdrawn, "withdraw"), (decided, "approve")):
        [task] = client.tasks(processInstanceId=instance)
        assert client.complete(task["id"], typed(decision=decision)).status_code == 204
    assert clocks(client, withdrawn)["review"]["outcome"] == "withdrawn"
    assert clocks(client, decided)["review"]["outcome"] == "decided"
    totals = client.get("/api/v1/statistics").get_json()["totals"]
    assert totals["decided"] == 1 and totals["open"] == 0


def test_withdrawn_revoked_and_cancelled_clocks_are_counted_apart_and_leave_the_working_days_to_the_decided(client):
    source = with_outcome('${decision if decision in ("withdrawn", "revoked", "lapsed") else "decided"}')
    assert client.deploy(extra={"outcome.bpmn": source}).status_code == 200
    set_clock(client, "2025-11-03T10:00:00+08:00")                # Monday
    decided, withdrawn, revoked, lapsed, deleted = (client.start("tacit_review", typed(limit="3wd"))["id"]
                                                    for _ in range(5))
    set_clock(client, "2025-11-05T10:00:00+08:00")                # Tuesday and Wednesday's first hour: 1.14
    [task] = client.tasks(processInstanceId=decided)
    assert client.complete(task["id"], typed(decision="approve")).status_code == 204
    set_clock(client, "2025-11-06T10:00:00+08:00")                # a working day later: 2.14
    for instance, decision in ((withdrawn, "withdrawn"), (revoked, "revoked"), (lapsed, "lapsed")):
        [task] = client.tasks(processInstanceId=instance)
        assert client.complete(task["id"], typed(decision=decision)).status_code == 204
    assert client.delete(f"/engine-rest/process-instance/{deleted}").status_code == 204
    assert clocks(client, deleted)["review"]["outcome"] == "cancelled"

    figures = client.get("/api/v1/statistics").get_json()
    for row in (figures["totals"], *figures["groups"], *figures["stages"]):
        assert (row["clocks"], row["decided"], row["withdrawn"], row["revoked"], row["cancelled"],
                row["otherOutcomes"], row["open"]) == (5, 1, 1, 1, 1, 1, 0), row
        # the working days a decision took, not those of the cases that ended without one
        assert row["avgWorkingDays"] == row["p90WorkingDays"] == 1.14, row


def test_a_case_is_withdrawn_only_by_a_withdrawn_or_revoked_clock_not_by_a_notice_that_was_published(client):
    """A 20-day notice (公示) stopped `published` ended with the case as it should: the
    case is completed.  It counted as withdrawn, as every clock of the top-level process
    that stopped without `decided` did."""
    source = with_outcome('${decision if decision in ("published", "withdrawn", "revoked") else "decided"}')
    assert client.deploy(extra={"outcome.bpmn": source}).status_code == 200
    set_clock(client, "2025-11-03T10:00:00+08:00")
    cases = {decision: client.start("tacit_review", typed(limit="3wd"))["id"]
             for decision in ("approve", "published", "withdrawn", "revoked")}
    set_clock(client, "2025-11-05T10:00:00+08:00")
    for decision, instance in cases.items():
        [task] = client.tasks(processInstanceId=instance)
        assert client.complete(task["id"], typed(decision=decision)).status_code == 204
    assert clocks(client, cases["published"])["review"]["outcome"] == "published"

    [process] = review_statistics(client)["processes"]
    assert (process["cases"], process["completed"], process["withdrawn"]) == (4, 2, 2), process
    assert process["completionRate"] == 0.5 and process["endToEndAvgWorkingDays"] == 1.14, process


def test_an_outcome_that_is_no_word_is_a_400_naming_the_element_and_changes_nothing(client):
    assert client.deploy(extra={"outcome.bpmn": with_outcome("${decision}")}).status_code == 200
    instance = client.start("tacit_review", typed(limit="3wd"))["id"]
    [task] = client.tasks(processInstanceId=instance)
    r = client.complete(task["id"], typed(decision="撤回 申请"))
    assert r.status_code == 400, r.get_json()
    assert "End_decided: legalClock.outcome must give a word" in r.get_json()["message"]
    assert "'撤回 申请'" in r.get_json()["message"]
    assert [t["id"] for t in client.tasks(processInstanceId=instance)] == [task["id"]]
    assert clocks(client, instance)["review"]["stopped"] is None


def test_a_deleted_case_s_running_clock_ends_cancelled_not_open_for_good(client):
    set_clock(client, "2025-11-03T10:00:00+08:00")
    instance = start_review(client)
    assert client.delete(f"/engine-rest/process-instance/{instance}").status_code == 204
    review = clocks(client, instance)["review"]
    assert review["outcome"] == "cancelled" and review["stopped"] is not None
    totals = client.get("/api/v1/statistics").get_json()["totals"]
    assert totals["open"] == 0 and totals["decided"] == 0


def test_working_hour_limits(client):
    set_clock(client, "2025-09-26T16:00:00+08:00")              # Friday afternoon
    instance = start_review(client, limit="150min")
    # 1.5 h on Friday until 17:30, the last hour on Sunday the 28th (an adjusted working day)
    assert clocks(client, instance)["review"]["deadline"] == "2025-09-28T10:00:00+08:00"


@pytest.mark.parametrize("limit", ["-3", "0", "999999", "three days"])
def test_a_bad_limit_is_a_clear_400_and_starts_nothing(client, limit):
    assert client.deploy(TACIT).status_code == 200
    r = client.post("/engine-rest/process-definition/key/tacit_review/start", json={"variables": typed(limit=limit)})
    assert r.status_code == 400, r.get_json()
    assert "legalClock" in r.get_json()["message"] and "Task_review" in r.get_json()["message"]
    assert client.get("/engine-rest/process-instance").get_json() == []


def test_a_clock_answers_to_the_department_the_task_is_offered_to_when_its_groups_are_text_with_expressions(client):
    """The task went to `fgw-sz` while its clock named the department `${bureau}-${region}`."""
    source = TACIT.read_text().replace('camunda:candidateGroups="fgw"', 'camunda:candidateGroups="${bureau}-${region}"', 1)
    assert client.deploy(extra={"regional.bpmn": source}).status_code == 200
    case = client.start("tacit_review", typed(limit="3wd", bureau="fgw", region="sz"))["id"]
    [task] = client.tasks(processInstanceId=case)
    assert task["candidateGroups"] == ["fgw-sz"] and clocks(client, case)["review"]["department"] == "fgw-sz"


def test_a_timer_on_a_clock_not_started_yet_is_refused_naming_the_function_it_calls(client):
    """The clock is started by the correction task, after the review its timers wait on: the
    model deploys (an element of the process starts it), the case fails at the review.  The
    message named legal_deadline() for a timer that called legal_warning()."""
    start = '<camunda:property name="legalClock.start" value="review" />'
    limit = '<camunda:property name="legalClock.limit" value="${limit}" />'
    source = (TACIT.read_text().replace(start, "").replace(limit, "")
              .replace('<camunda:property name="legalClock.pause" value="review" />', start + limit)
              .replace('legal_deadline("review")', 'legal_warning("review")'))
    assert client.deploy(extra={"late_clock.bpmn": source}).status_code == 200
    r = client.post("/engine-rest/process-definition/key/tacit_review/start", json={"variables": typed(limit="3")})
    assert r.status_code == 400, r.get_json()
    message = r.get_json()["message"]
    assert "legal_warning('review') but no legal clock 'review' was started" in message, message
    assert "legal_deadline" not in message, message


def test_statistics_are_admin_or_own_department(client):
    officer = client.create_user("zjj1", groups=["zjj"])
    r = officer.get("/api/v1/statistics")
    assert r.status_code == 403 and "supervisors (group 'supervisors')" in r.get_json()["message"], r.get_json()
    assert officer.get("/api/v1/statistics", query_string={"department": "zjj"}).status_code == 200
    assert officer.get("/api/v1/statistics", query_string={"department": "fgw"}).status_code == 403


def review_statistics(client, **query):
    r = client.get("/api/v1/statistics", query_string={"processDefinitionKey": "tacit_review", **query})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_a_review_tacitly_approved_at_its_deadline_used_exactly_its_three_working_days(client):
    """The day of acceptance is not counted (README), in the working days a clock used as
    in its deadline: Friday 10:00 is not counted, the worked Sunday, Monday and Tuesday
    are; it used 3 of 3, not 3 and the six office hours left on Friday."""
    set_clock(client, "2025-09-26T10:00:00+08:00")             # Friday
    instance = start_review(client)
    set_clock(client, "2025-10-01T00:00:01+08:00")
    assert eventually(lambda: state(client, instance) == "COMPLETED")
    figures = review_statistics(client)
    [review] = figures["stages"]
    assert review["tacitApprovals"] == 1 and review["avgWorkingDays"] == 3.0 and review["p90WorkingDays"] == 3.0
    [case] = figures["processes"]                               # the case ended with the review
    assert case["endToEndAvgWorkingDays"] == 3.0 and case["endToEndP90WorkingDays"] == 3.0


def test_a_period_counts_the_clocks_started_in_it_with_their_own_events_in_every_section(client):
    """startedAfter/startedBefore select the clocks (and cases) started in the period; a
    tacit approval counts with its clock, not in the period it fired in."""
    set_clock(client, "2025-11-03T10:00:00+08:00")             # Monday: 3 working days to Thursday's end
    early = start_review(client)
    set_clock(client, "2025-11-07T00:00:01+08:00")
    assert eventually(lambda: state(client, early) == "COMPLETED")
    set_clock(client, "2025-11-10T10:00:00+08:00")
    late = client.start("tacit_review", typed(limit="3wd"))["id"]

    after = review_statistics(client, startedAfter="2025-11-07T00:00:00.000+0800")
    assert after["totals"]["clocks"] == 1 and after["totals"]["open"] == 1
    assert after["totals"]["tacitApprovals"] == 0 and after["totals"]["tacitApprovalRate"] is None
    [group] = after["groups"]
    [stage] = after["stages"]
    [process] = after["processes"]
    assert (group["clocks"], group["tacitApprovals"]) == (stage["clocks"], stage["tacitApprovals"]) == (1, 0)
    assert process["cases"] == 1 and process["running"] == 1

    before = review_statistics(client, startedBefore="2025-11-07T00:00:00.000+0800")
    assert before["totals"]["clocks"] == 1 and before["totals"]["tacitApprovals"] == 1
    assert before["totals"]["warnings"] == 1 and before["totals"]["tacitApprovalRate"] == 1.0
    [group] = before["groups"]
    [stage] = before["stages"]
    [process] = before["processes"]
    assert (group["tacitApprovals"], stage["tacitApprovals"], process["cases"], process["completed"]) == (1, 1, 1, 1)
    assert clocks(client, late)["review"]["outcome"] is None


def test_a_paused_clock_has_no_warning_time_and_does_not_turn_yellow_while_paused(client):
    set_clock(client, "2025-11-03T10:00:00+08:00")             # Monday: 3 working days to Thursday's end
    instance = start_review(client)
    assert clocks(client, instance)["review"]["warningAt"] == "2025-11-06T11:48:00+08:00"
    set_clock(client, "2025-11-04T10:00:00+08:00")
    r = client.post(f"/api/v1/process-instance/{instance}/legal-clocks/review/pause", json={"reason": "现场核查"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["warningAt"] is None and r.get_json()["deadline"] is None
    set_clock(client, "2025-11-07T10:00:00+08:00")              # past the warning time it had
    review = clocks(client, instance)["review"]
    assert review["paused"] is True and review["warningAt"] is None and review["status"] == "green"
    r = client.post(f"/api/v1/process-instance/{instance}/legal-clocks/review/resume")
    assert r.status_code == 200, r.get_json()
    # paused Tuesday to Friday, 3 working days (Wednesday to Friday): due Tuesday 11th, and yellow
    # those 3 days later too, when 2.4 of the 3 working days are used: Tuesday 4th, Monday 10th
    # and 0.4 of Tuesday 11th (2.8 office hours)
    assert r.get_json()["deadline"] == "2025-11-11T23:59:59+08:00"
    assert r.get_json()["warningAt"] == "2025-11-11T11:48:00+08:00" and r.get_json()["status"] == "green"
    set_clock(client, "2025-11-11T11:49:00+08:00")
    assert eventually(lambda: review_statistics(client)["totals"]["warnings"] == 1)
    [warned] = client.get("/engine-rest/history/activity-instance", query_string={
        "processInstanceId": instance, "activityId": "Timer_yellow"}).get_json()
    assert warned["endTime"] > "2025-11-11T11"                  # at the warning time it has now, not while paused
    [task] = client.tasks(processInstanceId=instance)
    assert client.complete(task["id"], typed(decision="approve")).status_code == 204
    # decided a minute after the warning: 2.4 working days and a minute used, counted as the
    # warning is (the acceptance day and the three paused working days not counted)
    [review] = review_statistics(client)["stages"]
    assert review["decided"] == 1 and review["avgWorkingDays"] == 2.4


class TestSupervisorsGroupIsConfigured:
    @pytest.fixture
    def settings(self, settings):
        settings.test_clock = True
        settings.supervisors_group = "duban"
        return settings

    def test_the_configured_group_reads_every_department_and_the_default_name_is_a_department(self, client):
        set_clock(client, "2025-11-03T10:00:00+08:00")
        instance = start_review(client)
        duban = client.create_user("duban1", groups=["duban"])
        plain = client.create_user("supervisors1", groups=["supervisors"])
        r = duban.get("/api/v1/statistics")
        assert r.status_code == 200 and r.get_json()["totals"]["clocks"] == 1, r.get_json()
        assert [t["processInstanceId"] for t in duban.tasks()] == [instance]
        assert duban.get(f"/api/v1/process-instance/{instance}/legal-clocks").status_code == 200
        r = plain.get("/api/v1/statistics")
        assert r.status_code == 403 and "group 'duban'" in r.get_json()["message"], r.get_json()
        assert plain.tasks() == []
        assert plain.get(f"/api/v1/process-instance/{instance}/legal-clocks").status_code == 403

    def test_the_group_is_read_from_the_environment(self):
        from engine.config import Settings
        assert Settings.from_env({"APPROVALS_SUPERVISORS_GROUP": " duban "}).supervisors_group == "duban"
        assert Settings.from_env({"APPROVALS_SUPERVISORS_GROUP": ""}).supervisors_group == "supervisors"
        assert Settings.from_env({}).supervisors_group == "supervisors"
        for public in ("applicants", "external-workers"):          # a typo must not open every queue
            with pytest.raises(SystemExit, match="cannot be the supervisors"):
                Settings.from_env({"APPROVALS_SUPERVISORS_GROUP": public})

    def test_a_supervisor_cannot_test_the_cases_variables_through_the_task_list(self, client):
        """They may not read a case's variables; every department's tasks filtered by a
        variable's value would tell it, one `_like` at a time (an ID number's digits)."""
        set_clock(client, "2025-11-03T10:00:00+08:00")
        instance = start_review(client)
        duban = client.create_user("duban1", groups=["duban"])
        assert duban.get(f"/engine-rest/process-instance/{instance}/variables").status_code == 403
        assert [t["processInstanceId"] for t in duban.tasks()] == [instance]          # the queue: read
        for probe in ("limit_eq_3wd", "limit_like_3%", "limit_neq_9"):
            assert duban.tasks(processVariables=probe) == [], probe
            body = {"processVariables": [{"name": "limit", "operator": "eq", "value": "3wd"}]}
            assert duban.post("/engine-rest/task", json=body).get_json() == []
        assert [t["processInstanceId"] for t in client.tasks(processVariables="limit_eq_3wd")] == [instance]


TIMER_START = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="D" targetNamespace="t">
  <bpmn:process id="daily_check" name="每日督查" isExecutable="true">
    <bpmn:startEvent id="Start_timer" name="每天">
      <bpmn:timerEventDefinition id="TD"><bpmn:timeCycle xsi:type="bpmn:tFormalExpression">{cycle}</bpmn:timeCycle></bpmn:timerEventDefinition>
    </bpmn:startEvent>
    <bpmn:sequenceFlow id="F1" sourceRef="Start_timer" targetRef="T" />
    <bpmn:userTask id="T" name="督查" camunda:candidateGroups="supervision" />
    <bpmn:sequenceFlow id="F2" sourceRef="T" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>
"""


def started_by_timer(client):
    return client.get("/engine-rest/process-instance", query_string={"processDefinitionKey": "daily_check"}).get_json()


def test_a_timer_start_event_starts_cases_on_its_cycle_and_a_new_version_replaces_it(client):
    set_clock(client, "2025-09-26T08:00:00+08:00")
    r = client.deploy(extra={"daily.bpmn": TIMER_START.format(cycle="R2/2025-09-26T09:00:00+08:00/P1D")})
    assert r.status_code == 200, r.get_json()
    assert started_by_timer(client) == []
    set_clock(client, "2025-09-26T09:00:01+08:00")
    assert eventually(lambda: len(started_by_timer(client)) == 1)
    assert len(client.tasks(taskDefinitionKey="T")) == 1
    set_clock(client, "2025-09-27T09:00:01+08:00")
    assert eventually(lambda: len(started_by_timer(client)) == 2)
    set_clock(client, "2025-09-30T09:00:01+08:00")          # R2: two cycles and no more
    time.sleep(0.3)
    assert len(started_by_timer(client)) == 2

    r = client.deploy(extra={"daily.bpmn": TIMER_START.format(cycle="R/2025-10-01T09:00:00+08:00/P1D")})
    assert r.status_code == 200
    set_clock(client, "2025-10-01T09:00:01+08:00")
    assert eventually(lambda: len(started_by_timer(client)) == 3)
    versions = {i["definitionId"].split(":")[1] for i in started_by_timer(client)}
    assert versions == {"1", "2"}


def test_an_unparseable_timer_is_refused_at_deploy(client):
    r = client.deploy(extra={"daily.bpmn": TIMER_START.format(cycle="every day at nine")})
    assert r.status_code == 400
    assert "Start_timer" in r.get_json()["message"] or "TD" in r.get_json()["message"]
    assert client.get("/engine-rest/process-definition").get_json() == []


EVENT_GATEWAY = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="D" targetNamespace="t">
  <bpmn:message id="Msg" name="materials.received" />
  <bpmn:process id="await_materials" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Wait" />
    <bpmn:intermediateCatchEvent id="Wait" name="冷静期">
      <bpmn:timerEventDefinition><bpmn:timeDuration xsi:type="bpmn:tFormalExpression">PT2H</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="F2" sourceRef="Wait" targetRef="G" />
    <bpmn:eventBasedGateway id="G" />
    <bpmn:sequenceFlow id="F3" sourceRef="G" targetRef="Received" />
    <bpmn:sequenceFlow id="F4" sourceRef="G" targetRef="Lapsed" />
    <bpmn:intermediateCatchEvent id="Received"><bpmn:messageEventDefinition messageRef="Msg" /></bpmn:intermediateCatchEvent>
    <bpmn:intermediateCatchEvent id="Lapsed" name="补正期满">
      <bpmn:timerEventDefinition><bpmn:timeDate xsi:type="bpmn:tFormalExpression">${workdays(5)}</bpmn:timeDate></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="F5" sourceRef="Received" targetRef="E1" />
    <bpmn:sequenceFlow id="F6" sourceRef="Lapsed" targetRef="E2" />
    <bpmn:endEvent id="E1" />
    <bpmn:endEvent id="E2" name="撤回" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_intermediate_timer_then_event_gateway_timer_in_working_days(client):
    set_clock(client, "2025-09-26T10:00:00+08:00")                  # Friday
    assert client.deploy(extra={"await.bpmn": EVENT_GATEWAY}).status_code == 200
    instance = client.start("await_materials")["id"]
    set_clock(client, "2025-09-26T12:00:05+08:00")                  # the 2 h wait is over
    assert eventually(lambda: any(a["activityId"] == "Wait" and a["endTime"] for a in client.get(
        "/engine-rest/history/activity-instance", query_string={"processInstanceId": instance}).get_json()))
    # workdays(5) from Friday 12:00: Sun 28, Mon 29, Tue 30, Thu 9 Oct, Fri 10 Oct (National Day off)
    set_clock(client, "2025-10-10T23:59:00+08:00")
    time.sleep(0.3)
    assert state(client, instance) == "ACTIVE"
    set_clock(client, "2025-10-11T00:00:01+08:00")
    assert eventually(lambda: state(client, instance) == "COMPLETED")
    ended = {a["activityId"] for a in client.get("/engine-rest/history/activity-instance",
                                                  query_string={"processInstanceId": instance}).get_json()}
    assert "E2" in ended and "E1" not in ended


def test_a_case_s_clocks_are_read_by_who_takes_part_in_it(client, monkeypatch):
    """GET .../legal-clocks (engine/legal_service.py): the case and its clocks as plain
    rows on a bare connection, each calendar looked up once, sent as rendered: the answer
    is what the schema would dump.  An administrator and an officer of one department read
    in turn (their statements differ in shape), an officer of another department is
    refused, an unknown case is a 404."""
    from api.legal import LegalClockSchema
    from engine.calendars import CalendarStore
    set_clock(client, "2025-11-03T10:00:00+08:00")
    instance = start_review(client)
    r = client.post(f"/api/v1/process-instance/{instance}/legal-clocks", json={"stage": "intake", "limit": "30d"})
    assert r.status_code == 201, r.get_json()
    fgw, zjj = client.create_user("fgw1", ["fgw"]), client.create_user("zjj1", ["zjj"])
    looked_up = []
    original = CalendarStore.get
    monkeypatch.setattr(CalendarStore, "get", lambda self, db, calendar_id=None:
                        looked_up.append(calendar_id) or original(self, db, calendar_id))
    for reader in (client, fgw, client, fgw):
        r = reader.get(f"/api/v1/process-instance/{instance}/legal-clocks")
        assert r.status_code == 200, r.get_json()
        body = r.get_json()
        assert LegalClockSchema(many=True).dump(body) == body
        by_stage = {c["stage"]: c for c in body}
        assert set(by_stage) == {"review", "intake"}
        assert by_stage["review"]["remainingWorkingDays"] == 3 and by_stage["review"]["department"] == "fgw"
        intake = by_stage["intake"]
        assert intake["deadline"] == "2025-12-03T23:59:59+08:00" and intake["limit"] == {"value": 30.0, "unit": "days"}
        assert 29 * 86400 < intake["remainingSeconds"] <= 30 * 86400 + 14 * 3600 and "remainingWorkingDays" not in intake
    assert looked_up == ["CN"] * 4                       # one lookup per read, not one per clock
    r = zjj.get(f"/api/v1/process-instance/{instance}/legal-clocks")
    assert r.status_code == 403 and "takes no part" in r.get_json()["message"]
    r = fgw.get("/api/v1/process-instance/no-such-case/legal-clocks")
    assert r.status_code == 404 and "no-such-case" in r.get_json()["message"]


def test_a_task_under_two_clocks_is_due_at_the_earlier_running_deadline(client):
    """A task that starts two clocks (legalClock.start = "review,total") is due at the
    earliest deadline of those running (engine/legal.py task_due, ClockSet.write): one
    paused leaves the other's; resumed later than the other's, the other's still."""
    source = TACIT.read_text().replace('name="legalClock.start" value="review"',
                                       'name="legalClock.start" value="review,total"')
    assert client.deploy(extra={"two_clocks.bpmn": source}).status_code == 200
    set_clock(client, "2025-11-03T10:00:00+08:00")
    instance = client.start("tacit_review", typed(limit="3wd"))["id"]
    [task] = client.tasks(processInstanceId=instance)
    both = clocks(client, instance)
    assert both["review"]["deadline"] == both["total"]["deadline"] == "2025-11-06T23:59:59+08:00"
    assert task["due"].startswith("2025-11-06T23:59:59")

    def due():
        return client.get(f"/engine-rest/task/{task['id']}").get_json()["due"]

    r = client.post(f"/api/v1/process-instance/{instance}/legal-clocks/review/pause", json={"reason": "现场核查"})
    assert r.status_code == 200, r.get_json()
    assert due().startswith("2025-11-06T23:59:59")            # review paused: total's deadline
    set_clock(client, "2025-11-05T10:00:00+08:00")
    r = client.post(f"/api/v1/process-instance/{instance}/legal-clocks/review/resume")
    assert r.status_code == 200 and r.get_json()["deadline"] == "2025-11-10T23:59:59+08:00", r.get_json()
    assert due().startswith("2025-11-06T23:59:59")            # still total's, the earlier


CUT_OFF = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:camunda="http://camunda.org/schema/1.0/bpmn" id="D" targetNamespace="t">
  <bpmn:message id="M" name="withdraw" />
  <bpmn:process id="cut_off" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Sub" />
    <bpmn:subProcess id="Sub">
      <bpmn:startEvent id="SS" />
      <bpmn:sequenceFlow id="G1" sourceRef="SS" targetRef="Task_accept" />
      <bpmn:userTask id="Task_accept" camunda:candidateGroups="window">
        <bpmn:extensionElements><camunda:properties>
          <camunda:property name="legalClock.start" value="review" />
          <camunda:property name="legalClock.limit" value="3wd" />
        </camunda:properties></bpmn:extensionElements>
      </bpmn:userTask>
      <bpmn:sequenceFlow id="G2" sourceRef="Task_accept" targetRef="Task_review" />
      <bpmn:userTask id="Task_review" camunda:candidateGroups="fgw" />
      <bpmn:sequenceFlow id="G3" sourceRef="Task_review" targetRef="Task_decide" />
      <bpmn:userTask id="Task_decide" camunda:candidateGroups="fgw">
        <bpmn:extensionElements><camunda:properties>
          <camunda:property name="legalClock.stop" value="review" />
        </camunda:properties></bpmn:extensionElements>
      </bpmn:userTask>
      <bpmn:sequenceFlow id="G4" sourceRef="Task_decide" targetRef="SE" />
      <bpmn:endEvent id="SE" />
    </bpmn:subProcess>
    <bpmn:boundaryEvent id="Withdrawn" attachedToRef="Sub"><bpmn:messageEventDefinition messageRef="M" /></bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="F2" sourceRef="Sub" targetRef="E" />
    <bpmn:sequenceFlow id="F3" sourceRef="Withdrawn" targetRef="Task_after" />
    <bpmn:userTask id="Task_after" camunda:candidateGroups="window" />
    <bpmn:sequenceFlow id="F4" sourceRef="Task_after" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_a_clock_whose_subprocess_an_interrupting_event_cut_off_ends_cancelled_at_once(client):
    """No clock hook runs in the command where the boundary event cuts the subprocess off:
    the clock stood open (and later overdue) until some other command read the clocks."""
    set_clock(client, "2025-11-03T10:00:00+08:00")
    assert client.deploy(extra={"cut_off.bpmn": CUT_OFF}).status_code == 200
    instance = client.start("cut_off")["id"]
    [accept] = client.tasks(processInstanceId=instance)
    assert client.complete(accept["id"]).status_code == 204
    assert clocks(client, instance)["review"]["stopped"] is None
    set_clock(client, "2025-11-04T10:00:00+08:00")
    r = client.post("/engine-rest/message", json={"messageName": "withdraw", "processInstanceId": instance})
    assert r.status_code in (200, 204), r.get_json()
    assert [t["taskDefinitionKey"] for t in client.tasks(processInstanceId=instance)] == ["Task_after"]
    review = clocks(client, instance)["review"]
    assert review["outcome"] == "cancelled" and review["stopped"].startswith("2025-11-04T10:00"), review
