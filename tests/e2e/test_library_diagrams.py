"""The library's diagrams open and read well in Camunda Modeler: complete diagram interchange
(every flow node a shape, every sequence flow an edge whose ends touch its nodes), no shapes on
top of each other, Chinese names and stable English ids, a form on every user task and start
event, and every form and topic it names exists."""
from __future__ import annotations

import json
import re

import pytest
from lxml import etree

from tests.conftest import ROOT

NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL", "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
      "dc": "http://www.omg.org/spec/DD/20100524/DC", "di": "http://www.omg.org/spec/DD/20100524/DI",
      "camunda": "http://camunda.org/schema/1.0/bpmn"}
CAMUNDA = "{http://camunda.org/schema/1.0/bpmn}"
DIAGRAMS = sorted((ROOT / "bpmn").glob("*.bpmn"))
NODES = ("startEvent", "endEvent", "intermediateThrowEvent", "intermediateCatchEvent", "boundaryEvent",
         "userTask", "serviceTask", "task", "callActivity", "subProcess", "exclusiveGateway", "parallelGateway",
         "inclusiveGateway", "eventBasedGateway")
TOPICS = {"market.registration", "police.seal", "tax.invoice", "hrss.social_security", "housing_fund.registration",
          "bank.account_reservation", "licence.issue", "realestate.push", "notify.applicant"}
HAN = re.compile(r"[\u4e00-\u9fff]")


def parse(path):
    return etree.parse(str(path)).getroot()


def bounds(shape):
    b = shape.find("dc:Bounds", NS)
    return tuple(float(b.get(k)) for k in ("x", "y", "width", "height"))


def touches(point, box, slack=2.0):
    x, y = point
    bx, by, w, h = box
    inside = bx - slack <= x <= bx + w + slack and by - slack <= y <= by + h + slack
    on_edge = (abs(x - bx) <= slack or abs(x - bx - w) <= slack or abs(y - by) <= slack or abs(y - by - h) <= slack)
    return inside and on_edge


@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: p.name)
def test_every_element_is_drawn_and_every_flow_connects_its_shapes(path):
    root = parse(path)
    shapes = {s.get("bpmnElement"): s for s in root.iterfind(".//bpmndi:BPMNShape", NS)}
    edges = {e.get("bpmnElement"): e for e in root.iterfind(".//bpmndi:BPMNEdge", NS)}
    nodes = [n for tag in NODES for n in root.iterfind(f".//bpmn:{tag}", NS)]
    assert {n.get("id") for n in nodes} == set(shapes), "shapes and flow nodes differ"
    flows = root.findall(".//bpmn:sequenceFlow", NS)
    assert {f.get("id") for f in flows} == set(edges), "edges and sequence flows differ"
    for flow in flows:
        points = [(float(p.get("x")), float(p.get("y"))) for p in edges[flow.get("id")].findall("di:waypoint", NS)]
        assert len(points) >= 2
        for a, b in zip(points, points[1:]):
            assert a[0] == b[0] or a[1] == b[1], f"{flow.get('id')}: segments are horizontal or vertical"
        source, target = bounds(shapes[flow.get("sourceRef")]), bounds(shapes[flow.get("targetRef")])
        assert touches(points[0], source), f"{flow.get('id')} does not start at {flow.get('sourceRef')}"
        assert touches(points[-1], target), f"{flow.get('id')} does not end at {flow.get('targetRef')}"


@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: p.name)
def test_no_two_shapes_overlap_and_everything_sits_inside_its_subprocess(path):
    root = parse(path)
    shapes = {s.get("bpmnElement"): bounds(s) for s in root.iterfind(".//bpmndi:BPMNShape", NS)}
    scope = {}
    for node in root.iter():
        if isinstance(node.tag, str) and node.get("id") in shapes:
            parent = node.getparent()
            scope[node.get("id")] = parent.get("id") if etree.QName(parent).localname == "subProcess" else None
    solid = [i for i in shapes if etree.QName(root.xpath(f"//*[@id='{i}']")[0]).localname
             not in ("subProcess", "boundaryEvent")]
    for i, a in enumerate(solid):
        ax, ay, aw, ah = shapes[a]
        assert ax >= 0 and ay >= 0
        if scope[a]:
            sx, sy, sw, sh = shapes[scope[a]]
            assert sx < ax and ax + aw < sx + sw and sy < ay and ay + ah < sy + sh, f"{a} sticks out of {scope[a]}"
        for b in solid[i + 1:]:
            bx, by, bw, bh = shapes[b]
            assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay, f"{a} overlaps {b}"


@pytest.mark.parametrize("path", DIAGRAMS, ids=lambda p: p.name)
def test_names_are_chinese_ids_english_and_every_human_step_has_a_form(path):
    root = parse(path)
    forms = {json.loads(p.read_text(encoding="utf-8"))["id"] for p in (ROOT / "forms").glob("*.form")}
    for node in [n for tag in NODES for n in root.iterfind(f".//bpmn:{tag}", NS)]:
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", node.get("id"))
        tag = etree.QName(node).localname
        if tag in ("userTask", "serviceTask", "task", "callActivity", "subProcess"):
            assert HAN.search(node.get("name") or ""), f"{node.get('id')} needs a Chinese name"
        if tag == "userTask" or (tag == "startEvent" and etree.QName(node.getparent()).localname == "process"):
            assert node.get(f"{CAMUNDA}formRef") in forms, f"{node.get('id')} has no deployed form"
        if tag == "serviceTask":
            assert node.get(f"{CAMUNDA}topic") in TOPICS
    for message in root.iterfind("bpmn:message", NS):
        assert message.get("name") == "bank.account_opened"


def test_forms_are_in_chinese_with_english_keys():
    for path in (ROOT / "forms").glob("*.form"):
        form = json.loads(path.read_text(encoding="utf-8"))
        assert path.stem == form["id"] and len(form["id"]) <= 22, path.name
        stack = list(form["components"])
        while stack:
            component = stack.pop()
            stack.extend(component.get("components", []))
            if component.get("key"):
                assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_.]*", component["key"])
                label = component.get("label") or component.get("dateLabel") or ""
                assert HAN.search(label), f"{path.name}: {component['key']} needs a Chinese label"


def promised_error_codes() -> dict:
    """topic -> the BPMN error codes workers/connectors.toml raises for it."""
    from workers import config as connector_config
    loaded = connector_config.load(connector_config.DEFAULT_PATH, env={})
    return {name: {rule.bpmn_error for rule in topic.errors if rule.bpmn_error}
            for name, topic in loaded.topics.items()}


def caught_codes(root, task) -> set:
    """The error codes the error boundary events on `task`, or on a subprocess around it, catch
    (None: one without errorRef, which catches every code)."""
    codes = {e.get("id"): e.get("errorCode") for e in root.iterfind("bpmn:error", NS)}
    scopes, node = [], task
    while etree.QName(node).localname != "process":
        if etree.QName(node).localname in ("serviceTask", "subProcess"):
            scopes.append(node.get("id"))
        node = node.getparent()
    caught = set()
    for boundary in root.iterfind(".//bpmn:boundaryEvent", NS):
        definition = boundary.find("bpmn:errorEventDefinition", NS)
        if definition is not None and boundary.get("attachedToRef") in scopes:
            caught.add(codes.get(definition.get("errorRef")))
    return caught


def test_every_error_code_the_connectors_raise_is_caught_wherever_its_topic_runs():
    """A code nothing catches is refused by the engine and becomes an incident: every code a
    topic's connector raises must have a boundary event on every task of that topic."""
    tasks = {}
    for path in DIAGRAMS:
        root = parse(path)
        for task in root.iterfind(".//bpmn:serviceTask", NS):
            tasks.setdefault(task.get(f"{CAMUNDA}topic"), []).append((path.name, root, task))
    for topic, codes in promised_error_codes().items():
        assert topic in tasks or not codes, f"{topic} raises {codes} but no diagram has a task of that topic"
        for name, root, task in tasks.get(topic, []):
            caught = caught_codes(root, task)
            missing = codes - caught if None not in caught else set()
            assert not missing, f"{name}: {task.get('id')} ({topic}) does not catch {sorted(missing)}"


def test_the_readmes_topic_table_promises_the_error_codes_the_connectors_raise():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    promised = {}
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"`[a-z_]+\.[a-z_]+`", cells[0]):
            promised[cells[0].strip("`")] = set(re.findall(r"`([A-Z][A-Z_]+)`", cells[4]))
    assert promised == promised_error_codes()
