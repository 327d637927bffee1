"""Every event's activity type is Camunda 7's (its ActivityTypes): what history queries
filter by (`GET /history/activity-instance?activityType=boundaryError`) and what Cockpit
and Camunda's clients show."""
from __future__ import annotations

from engine.projections import activity_type
from engine.workflows import parse_resources
from tests.security.models import HEAD

EVENTS = HEAD.format(key="events") + """
  <bpmn:process id="events" isExecutable="true">
    <bpmn:startEvent id="S" />
    <bpmn:sequenceFlow id="F1" sourceRef="S" targetRef="Notify" />
    <bpmn:intermediateThrowEvent id="Notify"><bpmn:signalEventDefinition signalRef="Sig" /></bpmn:intermediateThrowEvent>
    <bpmn:sequenceFlow id="F2" sourceRef="Notify" targetRef="Send" />
    <bpmn:intermediateThrowEvent id="Send"><bpmn:messageEventDefinition messageRef="Msg" /></bpmn:intermediateThrowEvent>
    <bpmn:sequenceFlow id="F3" sourceRef="Send" targetRef="Pass" />
    <bpmn:intermediateThrowEvent id="Pass" />
    <bpmn:sequenceFlow id="F4" sourceRef="Pass" targetRef="Wait" />
    <bpmn:intermediateCatchEvent id="Wait"><bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration>
      </bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="F5" sourceRef="Wait" targetRef="Reply" />
    <bpmn:intermediateCatchEvent id="Reply"><bpmn:messageEventDefinition messageRef="Msg" /></bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="F6" sourceRef="Reply" targetRef="Policy" />
    <bpmn:intermediateCatchEvent id="Policy"><bpmn:signalEventDefinition signalRef="Sig" /></bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="F7" sourceRef="Policy" targetRef="Call" />
    <bpmn:serviceTask id="Call" camunda:type="external" camunda:topic="t" />
    <bpmn:boundaryEvent id="Refused" attachedToRef="Call"><bpmn:errorEventDefinition errorRef="Err" />
      </bpmn:boundaryEvent>
    <bpmn:boundaryEvent id="Late" attachedToRef="Call"><bpmn:timerEventDefinition>
      <bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>
    <bpmn:boundaryEvent id="Asked" attachedToRef="Call"><bpmn:messageEventDefinition messageRef="Msg" />
      </bpmn:boundaryEvent>
    <bpmn:boundaryEvent id="Changed" attachedToRef="Call"><bpmn:signalEventDefinition signalRef="Sig" />
      </bpmn:boundaryEvent>
    <bpmn:boundaryEvent id="Raised" attachedToRef="Call"><bpmn:escalationEventDefinition escalationRef="Esc" />
      </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="F8" sourceRef="Call" targetRef="E" />
    <bpmn:sequenceFlow id="F9" sourceRef="Refused" targetRef="Failed" />
    <bpmn:sequenceFlow id="F10" sourceRef="Late" targetRef="Stop" />
    <bpmn:sequenceFlow id="F11" sourceRef="Asked" targetRef="Answered" />
    <bpmn:sequenceFlow id="F12" sourceRef="Changed" targetRef="Announced" />
    <bpmn:sequenceFlow id="F13" sourceRef="Raised" targetRef="E" />
    <bpmn:endEvent id="E" />
    <bpmn:endEvent id="Failed"><bpmn:errorEventDefinition errorRef="Err" /></bpmn:endEvent>
    <bpmn:endEvent id="Stop"><bpmn:terminateEventDefinition /></bpmn:endEvent>
    <bpmn:endEvent id="Answered"><bpmn:messageEventDefinition messageRef="Msg" /></bpmn:endEvent>
    <bpmn:endEvent id="Announced"><bpmn:signalEventDefinition signalRef="Sig" /></bpmn:endEvent>
  </bpmn:process>
  <bpmn:process id="by_message" isExecutable="true">
    <bpmn:startEvent id="SM"><bpmn:messageEventDefinition messageRef="Msg" /></bpmn:startEvent>
    <bpmn:sequenceFlow id="G1" sourceRef="SM" targetRef="EM" />
    <bpmn:endEvent id="EM" />
  </bpmn:process>
  <bpmn:process id="by_signal" isExecutable="true">
    <bpmn:startEvent id="SS"><bpmn:signalEventDefinition signalRef="Sig" /></bpmn:startEvent>
    <bpmn:sequenceFlow id="H1" sourceRef="SS" targetRef="ES" />
    <bpmn:endEvent id="ES" />
  </bpmn:process>
  <bpmn:process id="by_timer" isExecutable="true">
    <bpmn:startEvent id="ST"><bpmn:timerEventDefinition><bpmn:timeCycle>R/PT1H</bpmn:timeCycle>
      </bpmn:timerEventDefinition></bpmn:startEvent>
    <bpmn:sequenceFlow id="K1" sourceRef="ST" targetRef="ET" />
    <bpmn:endEvent id="ET" />
  </bpmn:process>
  <bpmn:message id="Msg" name="Reply" />
  <bpmn:signal id="Sig" name="PolicyChanged" />
  <bpmn:error id="Err" errorCode="REFUSED" />
  <bpmn:escalation id="Esc" escalationCode="LATE" />
</bpmn:definitions>
"""

CAMUNDA = {
    "S": "startEvent", "SM": "messageStartEvent", "SS": "signalStartEvent", "ST": "startTimerEvent",
    "Notify": "intermediateSignalThrow", "Send": "intermediateMessageThrowEvent", "Pass": "intermediateNoneThrowEvent",
    "Wait": "intermediateTimer", "Reply": "intermediateMessageCatch", "Policy": "intermediateSignalCatch",
    "Call": "serviceTask", "Refused": "boundaryError", "Late": "boundaryTimer", "Asked": "boundaryMessage",
    "Changed": "boundarySignal", "Raised": "boundaryEscalation",
    "E": "noneEndEvent", "EM": "noneEndEvent", "ES": "noneEndEvent", "ET": "noneEndEvent", "Failed": "errorEndEvent",
    "Stop": "terminateEndEvent", "Answered": "messageEndEvent", "Announced": "signalEndEvent",
}


def test_every_event_has_camundas_activity_type():
    parser = parse_resources([("events.bpmn", EVENTS.encode())])
    found = {}
    for key in ("events", "by_message", "by_signal", "by_timer"):
        for spec in parser.get_spec(key).task_specs.values():
            if spec.bpmn_id in CAMUNDA:
                found[spec.bpmn_id] = activity_type(spec)
    assert found == CAMUNDA
