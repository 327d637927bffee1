"""Multi-instances that cases stored by an earlier version left waiting for ever.

Before da152e4 (engine/specs.py connect_multi_instances) a spec parsed anew was not
connected to its multi-instances: an instance created before a restart completed and
its multi-instance never heard it (SpiffWorkflow merges an instance from the instances'
`completed_event`).  Such a case is stored with the instance COMPLETED and absent from
its multi-instance's `internal_data["merged"]`; a construction permit's parallel review
stood still after its last department, with no task and no incident.

Here the multi-instance hears them late, as it would have then: every command that
restores a case from its stored state merges them first (runtime.open_instance), and a
case that waits on nothing else, so that no command would ever come, is opened by the
server when it starts (`resume_stuck`).  Never in a read: a read takes no lock and writes
nothing, and must show the case as it is stored.
"""
from __future__ import annotations

import logging

from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask, ParallelMultiInstanceTask
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import and_, exists, select
from sqlalchemy.orm import aliased

from . import audit, runtime
from .errors import BadRequest, Conflict, EngineError, NotFound
from .identity import SYSTEM
from .models import ActivityInstance, ProcessInstance, SystemAuditEvent
from .workflows import open_tasks

log = logging.getLogger(__name__)

RESUMED = "MultiInstanceResumed"        # the audit event of a multi-instance that heard its instances late
# the system audit event of a start-up pass that left no case standing: later starts skip the pass
CHECKED = "MultiInstancesChecked"


def unheard(workflow) -> list[tuple]:
    """(multi-instance task, the instances it did not hear, in the order they completed)
    for each waiting multi-instance that has some; only reads the workflow."""
    waiting = [task for task in open_tasks(workflow)
               if task._state == TaskState.STARTED and isinstance(task.task_spec, LoopTask)]
    return [(body, instances) for body in waiting if (instances := _unheard(body))]


def merge(unheard_instances: list[tuple]) -> list[tuple]:
    """Merge the instances `unheard` found into their multi-instances, as SpiffWorkflow
    would have merged each at its completion; returns (multi-instance task, ids of the
    instances merged) for each one.  It stops where a heard multi-instance would have
    ended: at the instance after which its completionCondition holds (one that ended
    later is left unmerged, as a heard multi-instance would have cancelled it), and for
    the sequential kind at its last instance (it adds the next one on the merge, as it
    does).  The parallel kind counts its instances done by their state, so it is READY
    from the first late merge on: the others are merged still."""
    moved = []
    for body, instances in unheard_instances:
        spec, merged = body.task_spec, []
        for instance in instances:
            spec.merge_child(instance.workflow, instance)
            merged.append(str(instance.id))
            if body._state != TaskState.STARTED and (not isinstance(spec, ParallelMultiInstanceTask)
                                                     or spec.check_completion_condition(body)):
                break
        moved.append((body, merged))
    return moved


def _unheard(body) -> list:
    spec, merged = body.task_spec, body.internal_data.get("merged", ())
    instances = [child for child in body.children if child.task_spec.name == spec.task_spec
                 and child._state == TaskState.COMPLETED and str(child.id) not in merged]
    return sorted(instances, key=lambda child: child.last_state_change)     # stable: ties in creation order


# --- the cases that wait on nothing else ---------------------------------------------

def _stuck_cases(session) -> list[str]:
    """The running cases whose multi-instance is open in the activity history while none
    of its instances is.  A heard multi-instance always has one open until it ends (the
    sequential kind adds the next in the command that ends one), so this one did not hear
    its last instance; one that still has an open instance is merged by the command that
    ends it.  One query at start-up, over the activity history's multi-instance rows."""
    body, instance = aliased(ActivityInstance), aliased(ActivityInstance)
    return list(session.execute(
        select(body.instance_id).distinct()
        .join(ProcessInstance, and_(ProcessInstance.id == body.instance_id, ProcessInstance.state == runtime.ACTIVE))
        .where(body.activity_type == "multiInstanceBody", body.end_time.is_(None),
               ~exists().where(instance.instance_id == body.instance_id,
                               instance.parent_activity_instance_id == body.id, instance.end_time.is_(None)))
        .order_by(body.instance_id)).scalars())


def resume_stuck(engine) -> int:
    """Open each running case that stands at a multi-instance that did not hear its
    instances, merge them and run it on, each case in its own command and transaction
    (its row lock, the version check, projections and audit as any command); returns how
    many moved.  Run by every server process as it starts: one that finds a case locked
    or already moved leaves it, and a failing case is logged and left as it was.

    The query reads the activity history's open rows, which grows with the database, and
    a version with the connection in place stores no such case: so once a pass has left
    none behind (none found, or each moved), a `MultiInstancesChecked` system audit event
    says so and later starts skip the pass.  A database without a running case is not
    marked (a new one, say): there the pass costs one look at the running cases."""
    with engine.uow(write=False) as uow:
        session = uow.session
        if session.execute(select(exists().where(SystemAuditEvent.kind == CHECKED))).scalar():
            return 0
        if not session.execute(select(exists().where(ProcessInstance.state == runtime.ACTIVE))).scalar():
            return 0
        cases = _stuck_cases(session)
    moved, left = 0, 0
    for instance_id in cases:
        with engine.uow() as uow:
            try:
                command = runtime.open_instance(uow, instance_id, SYSTEM, lock="skip")
                if not any(event[0] == RESUMED for event in command.events):
                    # another server process moved it, or not stuck after all; or its merge failed (logged)
                    left += bool(unheard(command.workflow))
                    continue
                runtime.save(command)
                uow.commit()
                moved += 1
            except NotFound:
                continue                    # ended meanwhile
            except (Conflict, BadRequest):
                left += 1                   # busy with another command: the next start looks again
            except EngineError as err:
                left += 1
                log.warning("process instance %s stands at a multi-instance that did not hear its instances, "
                            "and running it on failed: %s", instance_id, err.message)
            except Exception:               # noqa: BLE001 - one case must not stop the server's start
                left += 1
                log.exception("process instance %s: resuming its multi-instance failed", instance_id)
    if moved:
        log.info("%d case(s) stored by an earlier version went on past a multi-instance", moved)
    if not left:
        with engine.uow() as uow:
            audit.record_system(uow.session, SYSTEM.user_id, CHECKED, {"moved": moved})
            uow.commit()
    return moved
