"""A policy change (政策调整) and a fee change (收费标准调整) broadcast while the materials
of many cases arrive (材料补齐) and officers complete their reviews, all at the same
moment, from threads released together (tests/conftest.py, at_once).

POST /signal and POST /message with `all` lock every case they reach in one transaction,
in the order of the cases' ids (engine/signals.py, engine/messages.py), so on PostgreSQL
they queue behind one another instead of deadlocking; a completion locks its one case.
On SQLite the writers queue anyway: there the tests show only that nothing is lost."""
from __future__ import annotations

from collections import Counter

from tests.api.test_signals import SIGNAL, at, audit_kinds, boundary, deploy, system, variables_of  # noqa: F401
from tests.conftest import at_once, typed
from tests.security.models import HEAD

MESSAGE = "/engine-rest/message"
POLICY, FEES, MATERIALS = ("signal", "PolicyChanged"), ("signal", "FeesChanged"), ("message", "MaterialsArrived")
ROUNDS = 3


def waiting_for_each(*events):
    """A model builder: start → a parallel split; each branch waits for one event (a signal
    or a message) → the task After_<its name> (fgw) → the join → end."""
    def build(key):
        branches = "".join(f"""
    <bpmn:sequenceFlow id="To_{name}" sourceRef="Split" targetRef="On_{name}" />
    <bpmn:intermediateCatchEvent id="On_{name}">
      <bpmn:{kind}EventDefinition id="ED_{name}" {kind}Ref="{kind}_{name}" />
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="Took_{name}" sourceRef="On_{name}" targetRef="After_{name}" />
    <bpmn:userTask id="After_{name}" camunda:candidateGroups="fgw" />
    <bpmn:sequenceFlow id="Done_{name}" sourceRef="After_{name}" targetRef="Join" />""" for kind, name in events)
        declared = "".join(f'  <bpmn:{kind} id="{kind}_{name}" name="{name}" />\n' for kind, name in events)
        return HEAD.format(key=key) + f"""
  <bpmn:process id="{key}" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Split" />
    <bpmn:parallelGateway id="Split" />{branches}
    <bpmn:parallelGateway id="Join" />
    <bpmn:sequenceFlow id="F2" sourceRef="Join" targetRef="E" />
    <bpmn:endEvent id="E" />
  </bpmn:process>
""" + declared + "</bpmn:definitions>\n"
    return build


# Each event reaches the cases of 3 of the 4 models, and any two events share 2 models' cases.
WAITING = {"every_change": (POLICY, FEES, MATERIALS), "rules_only": (POLICY, FEES),
           "fees_and_materials": (FEES, MATERIALS), "policy_and_materials": (POLICY, MATERIALS)}
CASES_PER_MODEL = 8
SENT = {POLICY: lambda n: {"policyNo": f"国发〔2025〕{n}号"}, FEES: lambda n: {"feeScale": n},
        MATERIALS: lambda n: {"materialsRound": n}}                 # the variables each event carries in round n
AUDITED_AS = {"signal": "SignalReceived", "message": "MessageCorrelated"}


def announce(system, event, variables: dict):
    """POST /signal, or POST /message to all the cases waiting for it."""
    kind, name = event
    if kind == "signal":
        return system.post(SIGNAL, json={"name": name, "variables": typed(**variables)})
    return system.post(MESSAGE, json={"messageName": name, "all": True, "processVariables": typed(**variables)})


def test_two_broadcasts_and_a_message_to_all_at_once_reach_every_case_once_and_none_deadlocks(client, system):
    """A deadlock needs two of the requests to lock shared cases in crossing orders at the
    same moment; a few rounds on fresh cases give it its chances."""
    deploy(client, **{key: waiting_for_each(*events) for key, events in WAITING.items()})
    expected_tasks = Counter()
    for n in range(ROUNDS):
        cases = {client.start(key)["id"]: events for _ in range(CASES_PER_MODEL) for key, events in WAITING.items()}
        answers = at_once([lambda event=event: (event[1], announce(system, event, SENT[event](n)))
                           for event in SENT])
        assert {name: r.status_code for name, r in answers} == {name: 204 for _, name in SENT}, \
            [(name, r.status_code, r.get_data(as_text=True)) for name, r in answers]

        # each case took each event it waited for once, and the cases of earlier rounds took none
        expected_tasks += Counter((case, f"After_{name}") for case, events in cases.items() for _, name in events)
        assert Counter((t["processInstanceId"], t["taskDefinitionKey"]) for t in client.tasks()) == expected_tasks
        for case, events in cases.items():
            assert variables_of(client, case) == {k: v for event in events for k, v in SENT[event](n).items()}
            kinds = Counter(audit_kinds(client, case))             # and its audit chain is whole
            assert kinds == Counter(["ProcessInstanceStarted"] + [AUDITED_AS[kind] for kind, _ in events])


def test_a_broadcast_racing_the_completions_of_the_reviews_it_interrupts_leaves_each_case_as_its_winner_did(
        client, system):
    """Two officers work through the reviews from the last case id down while the
    broadcast locks the cases from the first up, so they meet on a case somewhere in
    between.  Each review is either completed first (the case ends; the signal passes
    it by) or interrupted first (the completion is a 409; the case is at the re-review)."""
    deploy(client, rereview=boundary)
    li, zhang = client.create_user("li", ["fgw"]), client.create_user("zhang", ["fgw"])
    for _ in range(ROUNDS):
        cases = [client.start("rereview")["id"] for _ in range(20)]
        reviews = {t["processInstanceId"]: t["id"] for t in client.tasks(taskDefinitionKey="Review")}
        backwards = sorted(cases, reverse=True)

        def work_through(officer, share):
            return lambda: [(case, officer.complete(reviews[case])) for case in share]
        done = at_once([lambda: [("signal", system.post(SIGNAL, json={"name": "PolicyChanged"}))],
                        work_through(li, backwards[0::2]), work_through(zhang, backwards[1::2])])
        answers = dict(answer for answers_of_one_thread in done for answer in answers_of_one_thread)
        assert answers["signal"].status_code == 204, answers["signal"].get_data(as_text=True)
        for case in cases:
            completion = answers[case]
            assert completion.status_code in (204, 409), completion.get_data(as_text=True)
            if completion.status_code == 204:
                assert client.get(f"/engine-rest/history/process-instance/{case}").get_json()["state"] == "COMPLETED"
                assert audit_kinds(client, case) == ["ProcessInstanceStarted", "TaskCompleted"]
            else:
                assert completion.get_json()["type"] == "OptimisticLockingException", completion.get_json()
                assert at(client, case) == ["Rereview"]
                assert audit_kinds(client, case) == ["ProcessInstanceStarted", "SignalReceived"]
