"""The legal-clock properties a designer writes (legalClock.*, tacitApproval.*,
statistics.mark) are checked at deploy, every problem of a file at once, with file, line,
element and property: a literal mistake deployed and failed (or did nothing) only when a
case reached it, and such a case could not be moved on."""
from __future__ import annotations

from tests.conftest import FIXTURES, typed

HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="D_{key}" targetNamespace="t">\n')


def element(kind: str, element_id: str, props: dict, inner: str = "", attrs: str = "") -> str:
    rows = "".join(f'<camunda:property name="{name}" value="{value}" />' for name, value in props.items())
    extension = f"<bpmn:extensionElements><camunda:properties>{rows}</camunda:properties></bpmn:extensionElements>"
    return f'<bpmn:{kind} id="{element_id}"{attrs}>{extension if props else ""}{inner}</bpmn:{kind}>\n'


def process(key: str, *elements: str, calls: str | None = None) -> str:
    """S → each element in turn → E (the elements' ids are T1, T2, ...)."""
    ids = ["S", *(f"T{i}" for i in range(1, len(elements) + 1)), "E"]
    flows = "".join(f'<bpmn:sequenceFlow id="F{i}" sourceRef="{a}" targetRef="{b}" />\n'
                    for i, (a, b) in enumerate(zip(ids, ids[1:])))
    return (HEAD.format(key=key) + f'<bpmn:process id="{key}" isExecutable="true">\n<bpmn:startEvent id="S" />\n'
            + "".join(elements) + '<bpmn:endEvent id="E" />\n' + flows + "</bpmn:process>\n</bpmn:definitions>\n")


def task(number: int, **props) -> str:
    return element("task", f"T{number}", {k.replace("_", "."): v for k, v in props.items()})


def errors(response, resource: str) -> list[dict]:
    assert response.status_code == 400, response.get_json()
    return response.get_json()["details"][resource]["errors"]


def test_every_literal_mistake_of_the_probe_is_refused_at_once_with_its_line_element_and_the_accepted_forms(client):
    source = process(
        "mistakes",
        task(1, legalClock_start="case", legalClock_limit="5个工作日", legalClock_kind="statutory",
             legalClock_calendar="SZ", legalClock_yellow="80%"),
        task(2, legalClock_stop="reveiw"),
        task(3, legalClock_start="review", legalClock_limit="3wd", legalClock_limt="5wd"),
        task(4, statistics_mark="commitmnet", legalClock_event="tacit", legalClock_stage="review"),
        task(5, legalClock_start="decision"),
        task(6, legalClock_stop="review", legalClock_outcome="撤回 申请"),
        task(7, legalClock_start="${stage}", legalClock_limit="3wd"))
    problems = errors(client.deploy(extra={"mistakes.bpmn": source}), "mistakes.bpmn")
    by_element: dict = {}
    for problem in problems:
        assert problem["line"] > 0 and problem["mainElementId"], problem
        by_element.setdefault(problem["mainElementId"], []).append(problem["message"])
    t1 = " | ".join(by_element["T1"])
    assert "legalClock.limit '5个工作日'" in t1 and '"3wd"' in t1, t1
    assert "legalClock.kind 'statutory'" in t1 and "legal, promised" in t1, t1
    assert "legalClock.calendar 'SZ'" in t1 and "CN" in t1, t1
    assert "legalClock.yellow '80%'" in t1 and "0.8" in t1, t1
    [t2] = by_element["T2"]
    assert "legalClock.stop 'reveiw'" in t2 and "case, decision, review" in t2, t2
    [t3] = by_element["T3"]
    assert "legalClock.limt" in t3 and "legalClock.limit" in t3, t3
    t4 = " | ".join(by_element["T4"])
    assert "statistics.mark 'commitmnet'" in t4 and "commitment, deficiency" in t4, t4
    assert "legalClock.event 'tacit'" in t4 and "tacitApproval, yellow, red" in t4, t4
    [t5] = by_element["T5"]
    assert "legalClock.start 'decision'" in t5 and "legalClock.limit" in t5, t5
    [t6] = by_element["T6"]
    assert "legalClock.outcome '撤回 申请'" in t6 and "withdrawn" in t6, t6
    [t7] = by_element["T7"]
    assert "legalClock.start '${stage}'" in t7 and "not evaluated" in t7, t7
    assert client.get("/engine-rest/process-definition").get_json() == []


def test_expressions_are_left_to_the_case_and_a_known_calendar_is_accepted(client):
    r = client.post("/api/v1/calendars", json={"id": "SZ", "name": "苏州", "base": "CN"})
    assert r.status_code == 201, r.get_json()
    source = process(
        "expressions",
        task(1, legalClock_start="case", legalClock_limit="${limit}", legalClock_calendar="SZ",
             legalClock_yellow="0.75", legalClock_kind="promised", legalClock_department="${dept}"),
        task(2, legalClock_stop="case", legalClock_outcome="${&#34;withdrawn&#34; if gave_up else &#34;decided&#34;}"))
    r = client.deploy(extra={"expressions.bpmn": source})
    assert r.status_code == 200, r.get_json()
    case = client.start("expressions", typed(limit="3wd", dept="fgw", gave_up=False))["id"]
    [clock] = client.get(f"/api/v1/process-instance/{case}/legal-clocks").get_json()
    assert (clock["stage"], clock["department"], clock["outcome"]) == ("case", "fgw", "decided"), clock


def test_a_stop_in_a_sibling_subprocess_never_finds_the_clock_and_is_refused(client):
    """A stop finds the clocks of its own (sub)process and the ones around it."""
    def subprocess(number: int, letter: str, props: dict) -> str:
        inner = (f'<bpmn:startEvent id="{letter}0" /><bpmn:sequenceFlow id="{letter}1" sourceRef="{letter}0" '
                 f'targetRef="{letter}2" />{element("task", f"{letter}2", props)}<bpmn:sequenceFlow id="{letter}3" '
                 f'sourceRef="{letter}2" targetRef="{letter}4" /><bpmn:endEvent id="{letter}4" />')
        return element("subProcess", f"T{number}", {}, inner)

    sub_a = subprocess(1, "A", {"legalClock.start": "review", "legalClock.limit": "3wd"})
    sub_b = subprocess(2, "B", {"legalClock.stop": "review"})
    [problem] = errors(client.deploy(extra={"siblings.bpmn": process("siblings", sub_a, sub_b)}), "siblings.bpmn")
    assert problem["mainElementId"] == "B2" and "legalClock.stop 'review'" in problem["message"], problem


def test_a_called_process_may_stop_a_clock_its_caller_starts_when_they_are_deployed_together(client):
    child = process("child_stop", task(1, legalClock_stop="case"))
    parent = process("parent_start", task(1, legalClock_start="case", legalClock_limit="10wd"),
                     element("callActivity", "T2", {}, attrs=' calledElement="child_stop"'))
    problems = errors(client.deploy(extra={"child.bpmn": child}), "child.bpmn")
    assert "legalClock.stop 'case'" in problems[0]["message"] and "call" in problems[0]["message"], problems
    r = client.deploy(extra={"child.bpmn": child, "parent.bpmn": parent})
    assert r.status_code == 200, r.get_json()
    r = client.deploy(extra={"child.bpmn": child.replace('id="E"', 'id="E2"').replace('"E"', '"E2"')})
    assert r.status_code == 200, r.get_json()               # a new version: its deployed caller starts it


def test_the_library_and_the_fixtures_pass_the_checks(client):
    r = client.deploy(FIXTURES / "tacit_review.bpmn", FIXTURES / "mi_review.bpmn")
    assert r.status_code == 200, r.get_json()


def test_a_review_whose_clock_no_element_starts_is_refused_for_its_stop_its_timers_and_their_stages(client):
    """tacit_review without its legalClock.start (and with its limit left behind): it
    deployed, and each case failed at the review (legal_deadline() of no clock)."""
    start = '<camunda:property name="legalClock.start" value="review" />'
    source = (FIXTURES / "tacit_review.bpmn").read_text().replace(start, "")
    problems = errors(client.deploy(extra={"no_clock.bpmn": source}), "no_clock.bpmn")
    found = sorted((p["mainElementId"], p["message"].split(":")[0]) for p in problems)
    assert found == [("End_decided", "legalClock.stop 'review'"),
                     ("Task_correct", "legalClock.pause 'review'"),
                     ("Task_review", "legalClock.limit '${limit}' needs legalClock.start on the same element"),
                     ("Timer_tacit", "legalClock.stage 'review'"), ("Timer_tacit", "legal_deadline('review')"),
                     ("Timer_yellow", "legalClock.stage 'review'"), ("Timer_yellow", "legal_warning('review')")], found
