"""The worker runtime against a fake engine over real HTTP: completion with typed variables,
retries with backoff, BPMN errors, lock extension, auth, and graceful shutdown."""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone

import pytest

from workers import BpmnError, Failure, RetryPolicy, Typed, Worker

from .fake_engine import FakeEngine

FAST = RetryPolicy(retries=3, initial_ms=20, factor=2.0)


def make_worker(fake, **kw) -> Worker:
    kw.setdefault("async_response_timeout", 200)
    kw.setdefault("retry", FAST)
    kw.setdefault("shutdown_grace", 2.0)
    return Worker(fake.url, auth=("worker", "pw"), worker_id=kw.pop("worker_id", "w1"), **kw)


@pytest.fixture
def running():
    workers = []

    def start(worker: Worker) -> Worker:
        workers.append(worker.start())
        return worker
    yield start
    for worker in workers:
        worker.stop(timeout=5, now=True)


def test_handler_result_completes_the_task_with_typed_variables(fake_engine, running):
    task_id = fake_engine.add_task("market.registration", {
        "applicantName": {"value": "苏州某某科技有限公司", "type": "String"},
        "capital": {"value": 500000, "type": "Long"},
        "scope": {"value": json.dumps(["软件开发", "技术服务"]), "type": "Json"},
        "unrelated": {"value": "not fetched", "type": "String"}})
    seen = {}
    worker = make_worker(fake_engine)

    @worker.subscribe("market.registration", variables=["applicantName", "capital", "scope"])
    def register(task):
        seen.update(task.variables)
        return {"creditCode": "914403001922038216", "approved": True, "seals": 4, "big": 2**40,
                "fee": 0.0, "detail": {"window": "综合窗口"}, "registeredAt": datetime(2025, 10, 9, 2, tzinfo=timezone.utc),
                "explicit": Typed(7, "Short")}

    running(worker)
    assert fake_engine.wait_for(lambda: fake_engine.tasks[task_id]["state"] == "completed")
    assert seen == {"applicantName": "苏州某某科技有限公司", "capital": 500000, "scope": ["软件开发", "技术服务"]}
    result = fake_engine.tasks[task_id]["result"]
    assert {k: v["type"] for k, v in result.items()} == {
        "creditCode": "String", "approved": "Boolean", "seals": "Integer", "big": "Long", "fee": "Double",
        "detail": "Json", "registeredAt": "Date", "explicit": "Short"}
    assert json.loads(result["detail"]["value"]) == {"window": "综合窗口"}
    assert result["registeredAt"]["value"] == "2025-10-09T10:00:00.000+0800"
    fetch = fake_engine.calls_to("fetchAndLock")[0][1]
    assert fetch["workerId"] == "w1" and fetch["usePriority"] is True and fetch["asyncResponseTimeout"] == 200
    assert fetch["topics"] == [{"topicName": "market.registration", "lockDuration": 30000,
                                "variables": ["applicantName", "capital", "scope"]}]


def test_failing_handler_counts_retries_down_with_growing_retry_timeout_until_incident(fake_engine, running):
    task_id = fake_engine.add_task("tax.invoice")
    attempts = []
    worker = make_worker(fake_engine)

    @worker.subscribe("tax.invoice")
    def invoice(task):
        attempts.append(task.retries)
        raise ConnectionError("tax bureau gateway reset the connection")

    running(worker)
    assert fake_engine.wait_for(lambda: fake_engine.tasks[task_id]["state"] == "incident")
    failures = [body for _, body in fake_engine.calls_to("failure")]
    assert [f["retries"] for f in failures] == [3, 2, 1, 0]
    assert [f["retryTimeout"] for f in failures] == [20, 40, 80, 160]
    assert attempts == [None, 3, 2, 1]          # Camunda sends retries null before the first failure
    assert failures[0]["errorMessage"] == "tax bureau gateway reset the connection"
    assert "ConnectionError" in failures[0]["errorDetails"] and "Traceback" in failures[0]["errorDetails"]
    time.sleep(0.3)
    assert len(attempts) == 4                   # an incident is not fetched again


def test_backoff_is_capped_and_policy_overrides_per_topic():
    policy = RetryPolicy(retries=10, initial_ms=1000, factor=3.0, max_ms=60_000)
    assert [policy.next(r) for r in (None, 10, 9, 8, 7)] == [
        (10, 1000), (9, 3000), (8, 9000), (7, 27000), (6, 60000)]
    assert RetryPolicy(retries=2).next(1) == (0, 4000)
    assert RetryPolicy(retries=2).next(0) == (0, 4000)          # never below zero
    assert RetryPolicy(retries=2).next(9) == (8, 1000)          # an operator raised retries


def test_failure_with_retries_zero_opens_an_incident_at_once(fake_engine, running):
    task_id = fake_engine.add_task("police.seal")
    worker = make_worker(fake_engine)
    worker.subscribe("police.seal", handler=lambda task: (_ for _ in ()).throw(
        Failure("seal system rejected the request: 400 malformed", details="body: {...}", retries=0)))
    running(worker)
    assert fake_engine.wait_for(lambda: fake_engine.tasks[task_id]["state"] == "incident")
    (_, body), = fake_engine.calls_to("failure")
    assert body["retries"] == 0 and body["errorDetails"] == "body: {...}"
    assert body["errorMessage"] == "seal system rejected the request: 400 malformed"


def test_bpmn_error_is_reported_with_code_message_and_variables(fake_engine, running):
    task_id = fake_engine.add_task("market.registration")
    worker = make_worker(fake_engine)

    @worker.subscribe("market.registration")
    def register(task):
        raise BpmnError("MARKET_NAME_TAKEN", "企业名称已被占用", {"rejectReason": "重名", "similar": ["A", "B"]})

    running(worker)
    assert fake_engine.wait_for(lambda: fake_engine.tasks[task_id]["state"] == "bpmnError")
    body = fake_engine.tasks[task_id]["result"]
    assert body["errorCode"] == "MARKET_NAME_TAKEN" and body["errorMessage"] == "企业名称已被占用"
    assert body["variables"]["rejectReason"] == {"value": "重名", "type": "String", "valueInfo": {}}
    assert body["variables"]["similar"]["type"] == "Json"
    assert not fake_engine.calls_to("failure")


def test_handler_returning_something_else_than_a_dict_is_an_incident_at_once(fake_engine, running):
    task_id = fake_engine.add_task("notify.applicant")
    worker = make_worker(fake_engine)           # 3 retries: not spent on a result that cannot change
    worker.subscribe("notify.applicant", handler=lambda task: "sent")
    running(worker)
    assert fake_engine.wait_for(lambda: fake_engine.tasks[task_id]["state"] == "incident")
    (_, body), = fake_engine.calls_to("failure")
    assert body["retries"] == 0 and "for topic 'notify.applicant' returned a str ('sent')" in body["errorMessage"]


def test_a_handler_slower_than_its_lock_keeps_the_lock_by_extending_it(fake_engine, running):
    task_id = fake_engine.add_task("bank.account_reservation")
    worker = make_worker(fake_engine, lock_duration=300)

    @worker.subscribe("bank.account_reservation")
    def slow(task):
        time.sleep(1.0)                      # more than three lock durations
        return {"bankReservationId": "R1"}

    running(worker)
    assert fake_engine.wait_for(lambda: fake_engine.tasks[task_id]["state"] == "completed")
    extends = fake_engine.calls_to("extendLock")
    assert len(extends) >= 3
    assert all(body == {"workerId": "w1", "newDuration": 300} for _, body in extends)


def test_without_extension_the_fake_would_refuse_a_late_completion(fake_engine):
    """The check above is honest: a completion after the lock ran out is refused."""
    import requests
    task_id = fake_engine.add_task("t")
    requests.post(fake_engine.url + "/external-task/fetchAndLock", json={
        "workerId": "w1", "maxTasks": 1, "topics": [{"topicName": "t", "lockDuration": 50}]})
    time.sleep(0.1)
    r = requests.post(fake_engine.url + f"/external-task/{task_id}/complete", json={"workerId": "w1"})
    assert r.status_code == 400


def test_more_tasks_than_slots_wait_for_a_free_slot(fake_engine, running):
    ids = [fake_engine.add_task("licence.issue") for _ in range(5)]
    active, peak, lock = [0], [0], threading.Lock()
    worker = make_worker(fake_engine, max_tasks=2)

    @worker.subscribe("licence.issue")
    def issue(task):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        return {"eLicenceId": task.id}

    running(worker)
    assert fake_engine.wait_for(lambda: all(fake_engine.tasks[i]["state"] == "completed" for i in ids))
    assert peak[0] == 2
    assert all(body["maxTasks"] <= 2 for _, body in fake_engine.calls_to("fetchAndLock"))


def test_stop_lets_a_running_handler_finish_and_fetches_nothing_more(fake_engine):
    task_id = fake_engine.add_task("hrss.social_security")
    started, release = threading.Event(), threading.Event()
    worker = make_worker(fake_engine)

    @worker.subscribe("hrss.social_security")
    def register(task):
        started.set()
        release.wait(5)
        return {"socialSecurityNo": "SS-1"}

    worker.start()
    assert started.wait(5)
    fetches = len(fake_engine.calls_to("fetchAndLock"))
    worker.stop(wait=False)
    time.sleep(0.1)
    release.set()
    worker.stop(timeout=5)
    assert fake_engine.tasks[task_id]["state"] == "completed"
    assert not fake_engine.calls_to("unlock")
    assert len(fake_engine.calls_to("fetchAndLock")) <= fetches + 1
    time.sleep(0.3)         # let the server give up the poll the stop cut (asyncResponseTimeout 200 ms)
    later = fake_engine.add_task("hrss.social_security")
    time.sleep(0.3)
    assert fake_engine.tasks[later]["owner"] is None


def test_stop_unlocks_tasks_not_started_and_handlers_that_overrun_the_grace(fake_engine):
    ids = [fake_engine.add_task("housing_fund.registration") for _ in range(3)]
    started, release = threading.Event(), threading.Event()
    worker = make_worker(fake_engine, threads=1, max_tasks=3, shutdown_grace=0.3)

    @worker.subscribe("housing_fund.registration")
    def register(task):
        started.set()
        release.wait(5)
        return {"fundAccountNo": "F-1"}

    worker.start()
    assert started.wait(5)
    assert fake_engine.wait_for(lambda: worker.in_flight == 3)
    t0 = time.monotonic()
    worker.stop(timeout=5)
    assert time.monotonic() - t0 < 1.5
    assert sorted(task_id for task_id, _ in fake_engine.calls_to("unlock")) == sorted(ids)
    assert all(fake_engine.tasks[i]["owner"] is None and fake_engine.tasks[i]["state"] == "open" for i in ids)
    release.set()
    time.sleep(0.2)
    assert not fake_engine.calls_to("complete")       # the overrunning result was dropped


def test_stop_now_cuts_a_long_poll_at_once(fake_engine):
    worker = make_worker(fake_engine, async_response_timeout=20_000)
    worker.subscribe("realestate.push", handler=lambda task: {})
    worker.start()
    assert fake_engine.wait_for(lambda: fake_engine.calls_to("fetchAndLock"))
    time.sleep(0.1)
    t0 = time.monotonic()
    worker.stop(timeout=5, now=True)
    assert time.monotonic() - t0 < 1.0


def test_a_graceful_stop_hands_back_what_the_last_poll_returns(fake_engine):
    """The server cannot see that a cut poll's client is gone, so a graceful stop lets the
    poll end and unlocks what it brings instead of leaving it locked for a worker that left."""
    worker = make_worker(fake_engine, async_response_timeout=2_000)
    calls = []
    worker.subscribe("realestate.push", handler=lambda task: calls.append(task) or {})
    worker.start()
    assert fake_engine.wait_for(lambda: fake_engine.calls_to("fetchAndLock"))
    time.sleep(0.1)
    worker.stop(wait=False)
    task_id = fake_engine.add_task("realestate.push")
    worker.stop(timeout=5)
    assert [t for t, _ in fake_engine.calls_to("unlock")] == [task_id]
    assert fake_engine.tasks[task_id]["owner"] is None and not calls


def test_a_graceful_stop_cuts_the_poll_when_the_grace_runs_out(fake_engine):
    worker = make_worker(fake_engine, async_response_timeout=20_000, shutdown_grace=0.3)
    worker.subscribe("realestate.push", handler=lambda task: {})
    worker.start()
    assert fake_engine.wait_for(lambda: fake_engine.calls_to("fetchAndLock"))
    t0 = time.monotonic()
    worker.stop(timeout=5)
    assert 0.25 < time.monotonic() - t0 < 1.0


def test_a_long_poll_wakes_up_when_a_task_arrives(fake_engine, running):
    worker = make_worker(fake_engine, async_response_timeout=10_000)
    done = threading.Event()
    worker.subscribe("notify.applicant", handler=lambda task: done.set() or {})
    running(worker)
    assert fake_engine.wait_for(lambda: fake_engine.calls_to("fetchAndLock"))
    t0 = time.monotonic()
    fake_engine.add_task("notify.applicant")
    assert done.wait(2)
    assert time.monotonic() - t0 < 0.5


def test_engine_unavailable_at_start_is_retried_with_backoff(fake_engine, running):
    fake_engine.fail_fetches = 2
    task_id = fake_engine.add_task("notify.applicant")
    worker = make_worker(fake_engine)
    worker.subscribe("notify.applicant", handler=lambda task: {"notificationId": "N1"})
    t0 = time.monotonic()
    running(worker)
    assert fake_engine.wait_for(lambda: fake_engine.tasks[task_id]["state"] == "completed")
    assert time.monotonic() - t0 >= 1.4           # waited 0.5 s, then 1 s
    assert len(fake_engine.calls_to("fetchAndLock")) >= 3


@pytest.mark.parametrize("auth, header", [
    (("worker1", "s3cret"), "Basic d29ya2VyMTpzM2NyZXQ="),
    ("apr_token123", "Bearer apr_token123"),
])
def test_credentials_are_sent_as_basic_or_bearer(serve, auth, header):
    fake = FakeEngine(auth_header=header)
    fake.url = serve(fake.app).url + "/engine-rest"
    task_id = fake.add_task("police.seal")
    worker = Worker(fake.url, auth=auth, worker_id="w1", async_response_timeout=100)
    worker.subscribe("police.seal", handler=lambda task: {"sealIds": ["S1"]})
    worker.start()
    try:
        assert fake.wait_for(lambda: fake.tasks[task_id]["state"] == "completed")
    finally:
        worker.stop(timeout=5)


def test_wrong_credentials_fetch_nothing(serve, caplog):
    fake = FakeEngine(auth_header="Bearer right")
    fake.url = serve(fake.app).url + "/engine-rest"
    task_id = fake.add_task("police.seal")
    worker = Worker(fake.url, auth="wrong", worker_id="w1", async_response_timeout=100)
    worker.subscribe("police.seal", handler=lambda task: {})
    worker.start()
    time.sleep(0.3)
    worker.stop(timeout=5)
    assert fake.tasks[task_id]["owner"] is None
    assert any("401" in r.getMessage() for r in caplog.records)


def test_a_long_poll_answered_at_once_and_empty_is_not_repeated_at_once(fake_engine, running):
    fake_engine.no_waiting = True                   # the server had no thread to wait on
    worker = make_worker(fake_engine, async_response_timeout=2_000)
    worker.subscribe("market.registration")(lambda task: {})
    running(worker)
    time.sleep(1.5)
    fetches = sum(1 for call in fake_engine.calls if call[0] == "fetchAndLock")
    assert 1 <= fetches <= 4, f"{fetches} fetches in 1.5 s"


@pytest.mark.parametrize("answers, completes", [
    ([(500, False)], 2),            # the engine failed before it completed: the second try completes
    ([(500, True)], 2),             # it completed and the answer was lost: the second try's 404 says so
    ([(409, False), (409, False)], 3),      # the case changed at the same time: the engine asks for a retry
])
def test_a_completion_answered_500_or_409_is_sent_again_not_dropped_until_the_lock_runs_out(
        fake_engine, running, answers, completes):
    task_id = fake_engine.add_task("tax.invoice")
    fake_engine.trouble["complete"] = list(answers)
    worker = make_worker(fake_engine)
    worker.subscribe("tax.invoice", handler=lambda task: {"invoiceQuota": 25})
    running(worker)
    assert fake_engine.wait_for(lambda: len(fake_engine.calls_to("complete")) == completes)
    worker.stop(timeout=5)
    assert fake_engine.tasks[task_id]["state"] == "completed"
    assert len(fake_engine.calls_to("complete")) == completes and not fake_engine.calls_to("failure")
    assert [sent for sent, _ in fake_engine.calls_to("complete")] == [task_id] * completes


def test_a_completion_the_engine_keeps_answering_500_is_given_up_after_five_tries(fake_engine, running, caplog):
    task_id = fake_engine.add_task("tax.invoice")
    fake_engine.trouble["complete"] = [(500, False)] * 10
    worker = make_worker(fake_engine, lock_duration=60_000)
    worker.subscribe("tax.invoice", handler=lambda task: {"invoiceQuota": 25})
    running(worker)
    assert fake_engine.wait_for(lambda: "giving up" in caplog.text, timeout=10)
    worker.stop(timeout=5)
    assert len(fake_engine.calls_to("complete")) == 5 and not fake_engine.calls_to("failure")
    assert fake_engine.tasks[task_id]["state"] == "open"       # offered again when its lock runs out


@pytest.mark.parametrize("answers, state, unlocked", [
    ([(500, False)] * 10, "open", True),    # the stop's one more try fails too: handed back for another worker
    ([(503, False)] * 100, "open", True),   # unreachable: without the stop, sent again while the lock holds
    ([(500, False)], "completed", False),   # the one more try lands: the task is done, nothing handed back
])
def test_a_stop_during_a_resends_backoff_sends_the_outcome_once_more_at_once_and_hands_back_what_did_not_land(
        fake_engine, answers, state, unlocked):
    """The stop is answered by one more try, not by the remaining four after 0.2 + 0.4 + 0.8 +
    1.6 s of backoff (a 500), nor by tries every 5 s for as long as the lock is extended (503)."""
    task_id = fake_engine.add_task("tax.invoice")
    fake_engine.trouble["complete"] = list(answers)
    worker = make_worker(fake_engine, lock_duration=60_000)
    handled = []
    worker.subscribe("tax.invoice", handler=lambda task: handled.append(task.id) or {"invoiceQuota": 25})
    worker.start()
    assert fake_engine.wait_for(lambda: fake_engine.calls_to("complete"))
    worker.stop(timeout=30)
    assert len(fake_engine.calls_to("complete")) == 2 and not fake_engine.calls_to("failure")
    assert fake_engine.tasks[task_id]["state"] == state
    # (the poll in flight may fetch the unlocked task once more: the stopping worker unlocks it again)
    assert bool(fake_engine.calls_to("unlock")) is unlocked and handled == [task_id]
    if unlocked:
        assert fake_engine.tasks[task_id]["owner"] is None        # the next worker fetches it at once
