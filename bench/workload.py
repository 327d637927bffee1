"""The models and the data every bench uses, so all layers run exactly the same thing.

REVIEW: a five-department parallel review (并联审查) in the style of
examples/quickstart/parallel_review.bpmn: a parallel split into five user tasks (one
candidate group each), a join, and an exclusive gateway on the five decisions.  No
forms, so the engine's form validation is not what is measured (REVIEW_FORMS adds
them, with camunda:inputOutput as in the quickstart).
LOOP: one user task repeated `rounds` times (sequential multi-instance), to grow one instance.
"""
from __future__ import annotations

DEPARTMENTS = ("fgw", "zrzy", "zjj", "sthj", "xf")     # 发改, 自然资源, 住建, 生态环境, 消防
PASSWORD = "pw"
ADMIN_PASSWORD = "bench-admin"

_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
         '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
         'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
         'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="Definitions_bench" '
         'targetNamespace="http://bpmn.io/schema/bpmn">\n')


def _legal_clock(dept: str) -> tuple[str, list, list]:
    """A department's task as bpmn/department_review.bpmn draws it: its own legal clock
    (5 working days) started when the task opens and stopped when it completes, a yellow
    card at 80 % of it (non-interrupting) and tacit approval at its end (interrupting, with
    the department's decision set to approve); the task and the tacit approval meet at an
    exclusive gateway before the join."""
    props = ('<bpmn:extensionElements><camunda:properties>'
             f'<camunda:property name="legalClock.start" value="{dept}" />'
             '<camunda:property name="legalClock.limit" value="5wd" />'
             f'<camunda:property name="legalClock.stop" value="{dept}" />'
             '</camunda:properties></bpmn:extensionElements>')
    boundaries = [
        f'<bpmn:boundaryEvent id="Yellow_{dept}" attachedToRef="Task_review_{dept}" cancelActivity="false">'
        '<bpmn:extensionElements><camunda:properties><camunda:property name="legalClock.event" value="yellow" />'
        f'<camunda:property name="legalClock.stage" value="{dept}" /></camunda:properties></bpmn:extensionElements>'
        '<bpmn:timerEventDefinition><bpmn:timeDate xsi:type="bpmn:tFormalExpression">'
        f'${{legal_warning("{dept}")}}</bpmn:timeDate></bpmn:timerEventDefinition></bpmn:boundaryEvent>'
        f'<bpmn:endEvent id="Warned_{dept}" />',
        f'<bpmn:boundaryEvent id="Tacit_{dept}" attachedToRef="Task_review_{dept}">'
        '<bpmn:extensionElements><camunda:properties>'
        '<camunda:property name="legalClock.event" value="tacitApproval" />'
        f'<camunda:property name="legalClock.stage" value="{dept}" />'
        f'<camunda:property name="tacitApproval.variable" value="{dept}Decision" />'
        '</camunda:properties></bpmn:extensionElements>'
        '<bpmn:timerEventDefinition><bpmn:timeDate xsi:type="bpmn:tFormalExpression">'
        f'${{legal_deadline("{dept}")}}</bpmn:timeDate></bpmn:timerEventDefinition></bpmn:boundaryEvent>']
    boundaries.append(f'<bpmn:exclusiveGateway id="Merge_{dept}" />')
    flows = [f'<bpmn:sequenceFlow id="Flow_yellow_{dept}" sourceRef="Yellow_{dept}" targetRef="Warned_{dept}" />',
             f'<bpmn:sequenceFlow id="Flow_tacit_{dept}" sourceRef="Tacit_{dept}" targetRef="Merge_{dept}" />',
             f'<bpmn:sequenceFlow id="Flow_merged_{dept}" sourceRef="Merge_{dept}" targetRef="Gateway_join" />']
    return props, boundaries, flows


def _review_model(key: str, forms: bool, warned: bool = False, legal: bool = False) -> str:
    """The five-department review; with `warned`, each department's task carries a
    non-interrupting boundary timer (P10D) to an end event, as the reform processes'
    yellow-card warnings do: every start writes five timers, every completion drops one;
    with `legal`, each task runs a legal clock of its own (_legal_clock)."""
    tasks, flows = [], []
    for dept in DEPARTMENTS:
        props = ""
        if legal:
            props, boundaries, legal_flows = _legal_clock(dept)
            tasks += boundaries
            flows += legal_flows
        if warned:
            tasks.append(f'<bpmn:boundaryEvent id="Warn_{dept}" attachedToRef="Task_review_{dept}" '
                         'cancelActivity="false"><bpmn:timerEventDefinition><bpmn:timeDuration>P10D'
                         '</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>'
                         f'<bpmn:endEvent id="Warned_{dept}" />')
            flows.append(f'<bpmn:sequenceFlow id="Flow_warn_{dept}" sourceRef="Warn_{dept}" '
                         f'targetRef="Warned_{dept}" />')
        form = ' camunda:formRef="department_review" camunda:formRefBinding="latest"' if forms else ""
        io = (f'<bpmn:extensionElements><camunda:inputOutput>'
              f'<camunda:outputParameter name="{dept}Decision">${{decision}}</camunda:outputParameter>'
              f'<camunda:outputParameter name="{dept}Opinion">${{opinion}}</camunda:outputParameter>'
              f'</camunda:inputOutput></bpmn:extensionElements>') if forms else props
        tasks.append(f'<bpmn:userTask id="Task_review_{dept}" name="{dept} review" '
                     f'camunda:candidateGroups="{dept}"{form}>{io}</bpmn:userTask>')
        flows.append(f'<bpmn:sequenceFlow id="Flow_to_{dept}" sourceRef="Gateway_split" targetRef="Task_review_{dept}" />')
        done = f"Merge_{dept}" if legal else "Gateway_join"
        flows.append(f'<bpmn:sequenceFlow id="Flow_{dept}_done" sourceRef="Task_review_{dept}" targetRef="{done}" />')
    condition = " and ".join(f'{d}Decision == "approve"' for d in DEPARTMENTS)
    return (_HEAD + f'<bpmn:process id="{key}" name="Five-department parallel review" isExecutable="true">\n'
            '<bpmn:startEvent id="StartEvent_apply" />\n'
            '<bpmn:parallelGateway id="Gateway_split" />\n' + "\n".join(tasks) + "\n"
            '<bpmn:parallelGateway id="Gateway_join" />\n'
            '<bpmn:exclusiveGateway id="Gateway_decide" default="Flow_rejected" />\n'
            '<bpmn:endEvent id="End_approved" />\n<bpmn:endEvent id="End_rejected" />\n'
            '<bpmn:sequenceFlow id="Flow_to_split" sourceRef="StartEvent_apply" targetRef="Gateway_split" />\n'
            + "\n".join(flows) + "\n"
            '<bpmn:sequenceFlow id="Flow_to_decide" sourceRef="Gateway_join" targetRef="Gateway_decide" />\n'
            '<bpmn:sequenceFlow id="Flow_approved" sourceRef="Gateway_decide" targetRef="End_approved">'
            f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{condition}</bpmn:conditionExpression>'
            '</bpmn:sequenceFlow>\n'
            '<bpmn:sequenceFlow id="Flow_rejected" sourceRef="Gateway_decide" targetRef="End_rejected" />\n'
            '</bpmn:process>\n</bpmn:definitions>\n')


REVIEW_KEY, REVIEW_FORMS_KEY, LOOP_KEY = "bench_review", "bench_review_forms", "bench_loop"
REVIEW_WARNED_KEY = "bench_review_warned"
REVIEW = _review_model(REVIEW_KEY, forms=False)
REVIEW_FORMS = _review_model(REVIEW_FORMS_KEY, forms=True)
REVIEW_WARNED = _review_model(REVIEW_WARNED_KEY, forms=False, warned=True)
REVIEW_LEGAL_KEY = "bench_review_legal"
REVIEW_LEGAL = _review_model(REVIEW_LEGAL_KEY, forms=False, legal=True)

# A sequential multi-instance (Camunda's loop of one task): SpiffWorkflow keeps its rounds
# side by side under the multi-instance task.  A loop drawn with gateways nests every
# round one level deeper, and SpiffWorkflow 3.2.0's task iterator stops at depth 1000:
# such a loop silently stops after ~333 rounds, so it cannot reach 500 tasks.
LOOP = (_HEAD + f'<bpmn:process id="{LOOP_KEY}" isExecutable="true">\n'
        '<bpmn:startEvent id="S" />\n'
        '<bpmn:userTask id="Task_round" name="round" camunda:candidateGroups="fgw">'
        '<bpmn:multiInstanceLoopCharacteristics isSequential="true">'
        '<bpmn:loopCardinality xsi:type="bpmn:tFormalExpression">${rounds}</bpmn:loopCardinality>'
        '</bpmn:multiInstanceLoopCharacteristics></bpmn:userTask>\n'
        '<bpmn:endEvent id="E" />\n'
        '<bpmn:sequenceFlow id="F_start" sourceRef="S" targetRef="Task_round" />\n'
        '<bpmn:sequenceFlow id="F_done" sourceRef="Task_round" targetRef="E" />\n'
        '</bpmn:process>\n</bpmn:definitions>\n')


def decision(dept: str) -> dict:
    """What department `dept` submits on the plain model (the gateway reads it)."""
    return {f"{dept}Decision": "approve", f"{dept}Opinion": "材料齐全，同意"}


FORM_DECISION = {"decision": "approve", "opinion": "材料齐全，同意"}


def dept_of(task_definition_key: str) -> str:
    return task_definition_key.rsplit("_", 1)[-1]


# --- setting a database up through the engine (fast; no HTTP) -----------------------------

def prepare_database(database_url: str, forms: bool = True, extra: dict[str, str] | None = None):
    """Migrate, create admin, departments and officers, deploy the models (and `extra`:
    more BPMN models by file name).

    Returns the process-definition ids by key."""
    from app import ensure_admin
    from engine import deployments, identity
    from engine.config import ROOT, Settings
    from engine.context import Engine
    from engine.db import migrate

    migrate(database_url)
    engine = Engine(Settings(database_url=database_url, admin_password=ADMIN_PASSWORD, timers_enabled=False))
    try:
        ensure_admin(engine)
        with engine.uow() as uow:
            for dept in DEPARTMENTS:
                identity.create_group(uow.session, dept, dept, actor=None)
                identity.create_user(uow.session, f"{dept}1", PASSWORD, actor=None)
            uow.session.flush()
            for dept in DEPARTMENTS:
                identity.add_member(uow.session, dept, f"{dept}1", actor=None)
            uow.commit()
        uploads = [deployments.Upload("bench_review.bpmn", REVIEW.encode()),
                   deployments.Upload("bench_review_warned.bpmn", REVIEW_WARNED.encode()),
                   deployments.Upload("bench_review_legal.bpmn", REVIEW_LEGAL.encode()),
                   deployments.Upload("bench_loop.bpmn", LOOP.encode())]
        uploads += [deployments.Upload(name, model.encode()) for name, model in (extra or {}).items()]
        if forms:
            uploads += [deployments.Upload("bench_review_forms.bpmn", REVIEW_FORMS.encode()),
                        deployments.Upload("department_review.form",
                                           (ROOT / "forms" / "department_review.form").read_bytes())]
        with engine.uow() as uow:
            result = deployments.deploy(uow, uploads, identity.SYSTEM, name="bench")
            uow.commit()
        return {d.key: d.id for d in result.process_definitions}
    finally:
        engine.close()

