"""camunda:inputOutput parameters read as Camunda 7 reads them: `${expr}` alone is the
value with its type, text with `${...}` in it is that text with each value put in (a
composite expression), other text is itself."""
from __future__ import annotations

import pytest

from tests.conftest import typed
from tests.security.models import HEAD, io_mapping

PI = "/engine-rest/process-instance"


def rule_step(key: str, inputs=(), outputs=()) -> str:
    """start → R (a bpmn:task with `inputs` and `outputs`) → T (fgw) → end: a rule step."""
    params = "".join(f'<camunda:inputParameter name="{n}">{v}</camunda:inputParameter>' for n, v in inputs)
    params += "".join(f'<camunda:outputParameter name="{n}">{v}</camunda:outputParameter>' for n, v in outputs)
    return HEAD.format(key=key) + f"""
  <bpmn:process id="{key}" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="R" />
    <bpmn:task id="R" name="规则"><bpmn:extensionElements><camunda:inputOutput>{params}</camunda:inputOutput>
    </bpmn:extensionElements></bpmn:task>
    <bpmn:sequenceFlow id="F2" sourceRef="R" targetRef="T" />
    <bpmn:userTask id="T" name="审查" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="F3" sourceRef="T" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>
"""


def variables(client, case: str) -> dict:
    r = client.get(f"{PI}/{case}/variables")
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_an_input_parameter_with_an_expression_in_its_text_is_the_text_filled_in(client):
    """`Dear ${name}` was stored as written, `${a}-${b}` refused at deploy."""
    model = rule_step("letter", inputs=[("greeting", "Dear ${name}"), ("ref", "${region}-${seq}")],
                      outputs=[("letter", "${greeting}"), ("reference", "${ref}"), ("closing", "Regards, #{name}"),
                               ("count", " ${seq} "), ("plain", "as written"), ("nothing", "${none}"),
                               ("flags", "${urgent}/${late}/[${none}]")])
    r = client.deploy(extra={"letter.bpmn": model})
    assert r.status_code == 200, r.get_data(as_text=True)[:400]
    case = client.start("letter", typed(name="Alice", region="sz", seq=7, none=None, urgent=True, late=False))["id"]
    found = variables(client, case)
    assert found["letter"] == {"type": "String", "value": "Dear Alice", "valueInfo": {}}
    assert found["reference"]["value"] == "sz-7" and found["closing"]["value"] == "Regards, Alice"
    assert found["count"] == {"type": "Integer", "value": 7, "valueInfo": {}}        # alone: the value, typed
    assert found["plain"]["value"] == "as written" and found["nothing"]["value"] is None
    assert found["flags"]["value"] == "true/false/[]"              # as JUEL writes them, not Python's True
    assert "greeting" not in found and "ref" not in found                            # inputs stay local


def test_an_input_parameter_reads_the_ones_before_it(client):
    """Camunda 7 sets a task's input parameters in order, each seeing those before it (the
    library's rule steps: `cfg`, then `matched` over `cfg`); one named like a case variable
    reads the case's value, and the one after it reads the local."""
    model = rule_step("chain", inputs=[("base", "${n + 1}"), ("twice", "${base * 2}"), ("n", "${n * 10}"),
                                       ("after", "${n + twice}")],
                      outputs=[("result", "${after}")])
    assert client.deploy(extra={"chain.bpmn": model}).status_code == 200
    case = client.start("chain", typed(n=1))["id"]
    found = variables(client, case)
    assert found["result"]["value"] == 14 and found["n"]["value"] == 1


def test_output_parameters_fill_their_text_with_what_the_task_was_completed_with(client):
    model = io_mapping("signed", inputs=[("office", "${region}办")],
                       outputs=[("summary", "${decision}（${office}，${officer}）"), ("decision", "${decision}")])
    assert client.deploy(extra={"signed.bpmn": model}).status_code == 200
    case = client.start("signed", typed(region="苏州"))["id"]
    [task] = client.tasks(processInstanceId=case)
    r = client.complete(task["id"], typed(decision="approve", officer="fgw1"))
    assert r.status_code == 204, r.get_json()
    r = client.get("/engine-rest/history/variable-instance", query_string={"processInstanceId": case})
    assert r.status_code == 200, r.get_json()
    found = {v["name"]: v["value"] for v in r.get_json()}
    assert found["summary"] == "approve（苏州办，fgw1）" and found["decision"] == "approve"
    assert "office" not in found and "officer" not in found      # with outputs, only they reach the case


def test_a_failing_expression_in_a_parameter_s_text_is_a_400_naming_the_mapping(client):
    model = io_mapping("unknown_name", outputs=[("summary", "by ${officer}")])
    assert client.deploy(extra={"unknown_name.bpmn": model}).status_code == 200
    case = client.start("unknown_name")["id"]
    [task] = client.tasks(processInstanceId=case)
    r = client.complete(task["id"])
    assert r.status_code == 400, r.get_json()
    message = r.get_json()["message"]
    assert "output mapping of T" in message and "officer" in message, message
    assert client.tasks(processInstanceId=case) == [task]                              # nothing changed


@pytest.mark.parametrize("kind", ["inputParameter", "outputParameter"])
@pytest.mark.parametrize("text, said", [("Dear ${name", "never closed"), ("${a}-${b +}", "syntax error")])
def test_a_broken_expression_in_a_parameter_s_text_is_refused_at_deploy(client, kind, text, said):
    model = io_mapping("broken_io", **{"inputs" if kind == "inputParameter" else "outputs": [("greeting", text)]})
    r = client.deploy(extra={"broken_io.bpmn": model})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["broken_io.bpmn"]["errors"]
    assert problem["mainElementId"] == "T" and f"camunda:{kind} 'greeting'" in problem["message"], problem
    assert said in problem["message"], problem


def test_a_list_parameter_is_still_refused_naming_what_is_supported(client):
    model = io_mapping("listed", inputs=[("depts", "<camunda:list><camunda:value>fgw</camunda:value></camunda:list>")])
    r = client.deploy(extra={"listed.bpmn": model})
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    [problem] = r.get_json()["details"]["listed.bpmn"]["errors"]
    assert "camunda:inputParameter 'depts'" in problem["message"] and "no lists" in problem["message"], problem


def shadowing_review(parallel: bool) -> str:
    """start → 审查 (a user task whose input parameters `opinion` and `score` are named like
    case variables) → 复核 → end; `parallel`: 审查 beside 会签 between a split and a join."""
    inputs = ('<bpmn:extensionElements><camunda:inputOutput>'
              '<camunda:inputParameter name="opinion">部门意见</camunda:inputParameter>'
              '<camunda:inputParameter name="score">${90}</camunda:inputParameter>'
              '</camunda:inputOutput></bpmn:extensionElements>')
    review = f'<bpmn:userTask id="Review" name="审查" camunda:candidateGroups="fgw">{inputs}</bpmn:userTask>'
    if parallel:
        middle = ('<bpmn:parallelGateway id="Split" /><bpmn:parallelGateway id="Join" />'
                  '<bpmn:userTask id="Cosign" name="会签" camunda:candidateGroups="fgw" />'
                  '<bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Split" />'
                  '<bpmn:sequenceFlow id="F2" sourceRef="Split" targetRef="Review" />'
                  '<bpmn:sequenceFlow id="F3" sourceRef="Split" targetRef="Cosign" />'
                  '<bpmn:sequenceFlow id="F4" sourceRef="Review" targetRef="Join" />'
                  '<bpmn:sequenceFlow id="F5" sourceRef="Cosign" targetRef="Join" />'
                  '<bpmn:sequenceFlow id="F6" sourceRef="Join" targetRef="Recheck" />')
    else:
        middle = ('<bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Review" />'
                  '<bpmn:sequenceFlow id="F6" sourceRef="Review" targetRef="Recheck" />')
    return HEAD.format(key="shadowing") + f"""
  <bpmn:process id="shadowing" isExecutable="true">
    <bpmn:startEvent id="S" />{review}{middle}
    <bpmn:userTask id="Recheck" name="复核" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="F7" sourceRef="Recheck" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
</bpmn:definitions>
"""


@pytest.mark.parametrize("order", [None, ("Review", "Cosign"), ("Cosign", "Review")])
def test_an_input_parameter_named_like_a_case_variable_leaves_the_case_variable_as_it_was(client, order):
    """Camunda 7: the input parameter is the task's own variable while it runs; the case's
    variable of that name keeps its value and type, during the task and after it."""
    assert client.deploy(extra={"shadowing.bpmn": shadowing_review(order is not None)}).status_code == 200
    case = client.start("shadowing", {**typed(opinion="x"), "score": {"type": "Long", "value": 7}})["id"]
    found = variables(client, case)
    assert (found["opinion"]["value"], found["score"]) == ("x", {"type": "Long", "value": 7, "valueInfo": {}})
    for step in order or ("Review",):
        [task] = [t for t in client.tasks(processInstanceId=case) if t["taskDefinitionKey"] == step]
        assert client.complete(task["id"]).status_code == 204
    [task] = client.tasks(processInstanceId=case)
    assert task["taskDefinitionKey"] == "Recheck"
    found = variables(client, case)
    assert found["opinion"] == {"type": "String", "value": "x", "valueInfo": {}}
    assert found["score"] == {"type": "Long", "value": 7, "valueInfo": {}}
