"""The tamper-evident audit trail (全程留痕): `python app.py audit verify` finds any edited,
inserted or deleted row and names the chain and the event; the case dossier (卷宗) carries
the model's checksum, every step, the legal clocks and the verified chain."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest
from sqlalchemy import delete, select, update

import app as server
from engine.audit import event_hash
from engine.config import ROOT
from engine.models import AuditChainHead, AuditEvent, ProcessInstance, SystemAuditEvent
from tests.conftest import FIXTURES, typed

TACIT = FIXTURES / "tacit_review.bpmn"


def verify(monkeypatch, capsys, database_url) -> tuple[int, str]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    code = server.main(["audit", "verify"])
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.fixture
def decided_case(client):
    """A review (tacit_review.bpmn, 3 working days) claimed and decided by 发改 officer fgw1."""
    client.create_user("fgw1", ["fgw"])
    assert client.deploy(TACIT).status_code == 200
    case = client.start("tacit_review", typed(limit="3wd", applicantName="苏州某某科技有限公司"), "SZ-2025-0900")["id"]
    fgw1 = client.as_user("fgw1")
    [task] = fgw1.tasks()
    assert fgw1.post(f"/engine-rest/task/{task['id']}/claim", json={"userId": "fgw1"}).status_code == 204
    assert fgw1.complete(task["id"], typed(decision="approve", opinion="材料齐全，同意")).status_code == 204
    return case


def tamper(engine, statement) -> None:
    with engine.db.begin() as conn:
        assert conn.execute(statement).rowcount >= 1


def test_an_untouched_trail_verifies_and_the_command_exits_0(client, engine, decided_case, database_url):
    env = {**os.environ, "DATABASE_URL": database_url}
    done = subprocess.run([sys.executable, "app.py", "audit", "verify"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "audit trail intact" in done.stdout
    with engine.db.begin() as conn:                     # a real edit, then the real command again
        conn.execute(update(AuditEvent).where(AuditEvent.instance_id == decided_case, AuditEvent.seq == 2)
                     .values(payload={"variables": {"decision": "reject"}}))
    done = subprocess.run([sys.executable, "app.py", "audit", "verify"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1
    assert f"process instance {decided_case}: TAMPERED at sequence 2" in done.stderr


def sequences(engine, case) -> dict:
    """kind -> sequence number of the case's events (the last of each kind), and "last"."""
    with engine.db.begin() as conn:
        rows = conn.execute(select(AuditEvent.kind, AuditEvent.seq).where(AuditEvent.instance_id == case)
                            .order_by(AuditEvent.seq)).all()
    return {**{kind: seq for kind, seq in rows}, "last": rows[-1].seq}


@pytest.mark.parametrize("change, at, words", [
    ("edit the officer's decision", "TaskCompleted", "edited"),
    ("edit who acted", "TaskClaimed", "edited"),
    ("delete the claim", "TaskClaimed", "missing (deleted)"),
    ("delete the last event", "last", "were deleted (the head says"),
    ("insert a forged event", "forged", "added behind the head"),
    ("relink an event", "TaskCompleted", "link to the previous event"),
    ("delete the case row", None, "process instance row was deleted"),
])
def test_any_edited_inserted_or_deleted_case_event_is_named_by_case_and_sequence(
        client, engine, decided_case, database_url, monkeypatch, capsys, change, at, words):
    assert verify(monkeypatch, capsys, database_url)[0] == 0
    seqs = sequences(engine, decided_case)
    seqs["forged"] = seqs["last"] + 1
    event = (AuditEvent.instance_id == decided_case)
    if change == "edit the officer's decision":
        tamper(engine, update(AuditEvent).where(event, AuditEvent.seq == seqs[at]).values(
            payload={"variables": {"decision": "reject", "opinion": "材料齐全，同意"}, "name": "部门审查"}))
    elif change == "edit who acted":
        tamper(engine, update(AuditEvent).where(event, AuditEvent.seq == seqs[at]).values(actor="fgw2"))
    elif change.startswith("delete the") and at:
        tamper(engine, delete(AuditEvent).where(event, AuditEvent.seq == seqs[at]))
    elif change == "insert a forged event":
        with engine.db.begin() as conn:
            last = conn.execute(select(AuditEvent).where(event, AuditEvent.seq == seqs["last"])).first()
            forged = event_hash(last.hash, seqs["forged"], last.at, "admin", "TaskCompleted", None, None, {})
            conn.execute(AuditEvent.__table__.insert().values(   # a well-formed event: only the head betrays it
                instance_id=decided_case, seq=seqs["forged"], at=last.at, actor="admin", kind="TaskCompleted",
                payload={}, prev_hash=last.hash, hash=forged))
    elif change == "relink an event":
        tamper(engine, update(AuditEvent).where(event, AuditEvent.seq == seqs[at]).values(prev_hash="f" * 64))
    else:
        tamper(engine, delete(ProcessInstance).where(ProcessInstance.id == decided_case))
    code, output = verify(monkeypatch, capsys, database_url)
    assert code == 1, output
    assert f"process instance {decided_case}: TAMPERED at sequence {seqs.get(at)}" in output, output
    assert words in output, output


@pytest.mark.parametrize("change", ["edit", "delete the last", "delete one in the middle"])
def test_the_system_chain_of_admin_changes_and_refusals_is_verified_too(
        client, engine, database_url, monkeypatch, capsys, change):
    client.create_user("fgw1", ["fgw"])
    assert client.as_user("fgw1").post("/engine-rest/group/create", json={"id": "x"}).status_code == 403
    assert verify(monkeypatch, capsys, database_url)[0] == 0
    with engine.db.begin() as conn:
        seqs = conn.execute(select(SystemAuditEvent.seq).order_by(SystemAuditEvent.seq)).scalars().all()
    denial = seqs[-1]
    if change == "edit":                                  # hide who tried
        tamper(engine, update(SystemAuditEvent).where(SystemAuditEvent.seq == denial).values(actor="admin"))
    elif change == "delete the last":
        tamper(engine, delete(SystemAuditEvent).where(SystemAuditEvent.seq == denial))
    else:
        tamper(engine, delete(SystemAuditEvent).where(SystemAuditEvent.seq == seqs[1]))
    code, output = verify(monkeypatch, capsys, database_url)
    assert code == 1 and "system: TAMPERED at sequence" in output, output


def test_a_case_removed_with_its_deployment_is_accounted_for(client, engine, decided_case, database_url,
                                                            monkeypatch, capsys):
    deployment = client.get("/engine-rest/deployment").get_json()[0]["id"]
    r = client.delete(f"/engine-rest/deployment/{deployment}", query_string={"cascade": "true"})
    assert r.status_code == 204
    code, output = verify(monkeypatch, capsys, database_url)
    assert code == 0, output
    with engine.db.begin() as conn:                      # rewriting history to hide the deletion is caught
        conn.execute(delete(SystemAuditEvent).where(SystemAuditEvent.kind == "DeploymentDeleted"))
        conn.execute(update(AuditChainHead).values(seq=AuditChainHead.seq - 1))
    code, output = verify(monkeypatch, capsys, database_url)
    assert code == 1 and decided_case in output


# --- the dossier ---------------------------------------------------------------------

def test_the_dossier_has_the_model_checksum_every_step_the_legal_clocks_and_the_verified_chain(
        client, engine, decided_case):
    client.create_user("reviewer", ["auditors"])
    r = client.as_user("reviewer").get(f"/api/v1/process-instance/{decided_case}/dossier")
    assert r.status_code == 200, r.get_json()
    dossier = r.get_json()
    assert dossier["processInstance"]["businessKey"] == "SZ-2025-0900"
    assert dossier["processInstance"]["state"] == "COMPLETED" and dossier["processInstance"]["startUserId"] == "admin"
    model = dossier["model"]
    assert model["key"] == "tacit_review" and model["version"] == 1 and model["deployedBy"] == "admin"
    assert model["sha256"] == hashlib.sha256(TACIT.read_bytes()).hexdigest()
    review = next(s for s in dossier["steps"] if s["activityId"] == "Task_review")
    assert review["actor"] == "fgw1" and review["assignee"] == "fgw1"
    assert review["data"] == {"decision": "approve", "opinion": "材料齐全，同意"}
    assert review["startTime"] and review["endTime"]
    assert [e["kind"] for e in review["events"]] == ["TaskClaimed", "TaskCompleted"]
    [clock] = dossier["legalClocks"]
    assert clock["stage"] == "review" and clock["outcome"] == "decided" and clock["limit"]["value"] == 3
    trail = dossier["auditTrail"]
    assert trail["verification"] == {"chain": f"process instance {decided_case}", "processInstanceId": decided_case,
                                     "events": len(trail["events"]), "valid": True, "sequence": None, "problem": None}
    kinds = [e["kind"] for e in trail["events"]]
    assert kinds[0] == "ProcessInstanceStarted" and kinds.index("TaskClaimed") < kinds.index("TaskCompleted")
    assert [e["sequence"] for e in trail["events"]] == list(range(1, len(kinds) + 1))
    assert all(e["previousHash"] == p["hash"] for p, e in zip(trail["events"], trail["events"][1:]))
    assert trail["head"] == trail["events"][-1]["hash"]
    assert dossier["variables"]["applicantName"]["value"] == "苏州某某科技有限公司"
    assert dossier["generated"]["by"] == "reviewer"

    completed = kinds.index("TaskCompleted") + 1
    tamper(engine, update(AuditEvent).where(AuditEvent.instance_id == decided_case, AuditEvent.seq == completed)
           .values(actor="fgw2"))
    verdict = client.get(f"/api/v1/process-instance/{decided_case}/dossier").get_json()["auditTrail"]["verification"]
    assert verdict["valid"] is False and verdict["sequence"] == completed and "edited" in verdict["problem"]


def test_the_dossier_is_for_case_file_reviewers_and_administrators_only(client, decided_case):
    for user, groups in (("fgw2", ["fgw"]), ("zhang", ["applicants"]), ("designer", ["designers"])):
        r = client.create_user(user, groups).get(f"/api/v1/process-instance/{decided_case}/dossier")
        assert r.status_code == 403 and "卷宗评查" in r.get_json()["message"]
    assert client.as_user("fgw1").get(f"/api/v1/process-instance/{decided_case}/dossier").status_code == 403
    assert client.get("/api/v1/process-instance/no-such-case/dossier").status_code == 404
