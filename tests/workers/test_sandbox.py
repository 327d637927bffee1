"""The department-system sandbox over HTTP: idempotency, issued codes, failure and latency
injection, department tokens, and the bank's asynchronous callback."""
from __future__ import annotations

import threading
import time

import pytest
import requests

from workers import credit_code
from workers.config import AuthConfig, SandboxConfig
from workers.sandbox import create_sandbox

TOKEN = "dept-token"


@pytest.fixture
def sandbox(serve, fake_engine):
    def start(**options):
        options.setdefault("token", TOKEN)
        options.setdefault("callback_delay_s", 0.05)
        options.setdefault("engine_url", fake_engine.url)
        options.setdefault("engine_auth", AuthConfig("bearer", token="apr_bank"))
        app = create_sandbox(SandboxConfig(**options), seed=7)
        served = serve(app)
        served.sandbox = app.extensions["sandbox"]
        return served
    return start


def post(served, path, body, key="key-1", token=TOKEN):
    headers = {"Authorization": f"Bearer {token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return requests.post(served.url + path, json=body, headers=headers, timeout=5)


REGISTRATION = {"enterpriseName": "苏州某某科技有限公司", "regionCode": "320506"}


def test_registration_issues_a_valid_credit_code_for_the_region(sandbox):
    served = sandbox()
    answer = post(served, "/market/registrations", REGISTRATION)
    assert answer.status_code == 201
    code = answer.json()["creditCode"]
    assert credit_code.problem(code) is None and code[2:8] == "320506"


def test_the_same_idempotency_key_gets_the_same_answer_and_no_second_effect(sandbox):
    served = sandbox()
    first = post(served, "/market/registrations", REGISTRATION, key="ext-task-1")
    again = post(served, "/market/registrations", REGISTRATION, key="ext-task-1")
    other = post(served, "/market/registrations", REGISTRATION, key="ext-task-2")
    assert again.status_code == first.status_code == 201 and again.json() == first.json()
    assert other.json()["creditCode"] != first.json()["creditCode"]
    stats = requests.get(served.url + "/_sandbox/stats").json()
    assert stats["effects"] == {"/market/registrations": 2} and stats["replays"] == 1


def test_concurrent_duplicates_have_one_effect(sandbox):
    served = sandbox(latency_ms=(20, 20))
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(
        post(served, "/police/seals", {"creditCode": credit_code.issue("x")}, key="same").json()))
        for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 8 and all(a == answers[0] for a in answers)
    assert served.sandbox.stats()["effects"] == {"/police/seals": 1}


def test_a_key_reused_for_a_different_request_is_refused(sandbox):
    served = sandbox()
    post(served, "/market/registrations", REGISTRATION, key="k")
    reused = post(served, "/market/registrations", {**REGISTRATION, "enterpriseName": "另一家公司"}, key="k")
    assert reused.status_code == 422 and reused.json()["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_a_request_without_idempotency_key_or_token_is_refused(sandbox):
    served = sandbox()
    assert post(served, "/market/registrations", REGISTRATION, key=None).json()["code"] == "IDEMPOTENCY_KEY_REQUIRED"
    refused = post(served, "/market/registrations", REGISTRATION, token="wrong")
    assert refused.status_code == 401 and refused.json()["code"] == "UNAUTHORIZED"
    assert served.sandbox.stats()["effects"] == {}


def test_business_refusals_a_demo_can_trigger(sandbox):
    served = sandbox()
    taken = post(served, "/market/registrations", {"enterpriseName": "苏州重名科技有限公司"})
    assert taken.status_code == 409 and taken.json()["code"] == "NAME_TAKEN"
    bad_code = post(served, "/tax/invoice-applications", {"creditCode": "91320500MA1XXXXX0X"}, key="k2")
    assert bad_code.status_code == 422 and bad_code.json()["code"] == "INVALID_CREDIT_CODE"
    missing = post(served, "/realestate/acceptance-opinions", {"caseNo": "JG-1"}, key="k3")
    assert missing.status_code == 400 and "opinion" in missing.json()["message"]


def test_every_department_answers(sandbox):
    served = sandbox()
    code = credit_code.issue("seed")
    base = {"creditCode": code, "enterpriseName": "苏州某某科技有限公司", "holderName": "苏州某某科技有限公司"}
    expected = {"/police/seals": "sealIds", "/tax/invoice-applications": "ukey", "/hrss/employer-registrations":
                "socialSecurityNo", "/housing-fund/employer-accounts": "fundAccountNo",
                "/bank/account-reservations": "reservationId", "/licence/licences": "licenceId",
                "/realestate/acceptance-opinions": "receiptNo", "/notify/messages": "notificationId"}
    extra = {"/bank/account-reservations": {"businessKey": "SZ-1"},
             "/realestate/acceptance-opinions": {"caseNo": "JG-1", "opinion": {"result": "合格"}},
             "/notify/messages": {"phone": "13800000000"}}
    for i, (path, field) in enumerate(expected.items()):
        answer = post(served, path, {**base, **extra.get(path, {})}, key=f"k{i}")
        assert answer.status_code in (201, 202), (path, answer.json())
        assert field in answer.json(), path
    assert len(post(served, "/police/seals", base, key="k0").json()["sealIds"]) == 4


def test_injected_failures_answer_503_before_any_effect(sandbox):
    served = sandbox(failure_rate=1.0)
    for i in range(5):
        answer = post(served, "/hrss/employer-registrations", {"creditCode": credit_code.issue("s")}, key=f"k{i}")
        assert answer.status_code == 503 and answer.json()["code"] == "UNAVAILABLE"
    stats = served.sandbox.stats()
    assert stats["effects"] == {} and stats["injectedFailures"] == 5


def test_the_failure_rate_is_the_share_of_failed_requests(sandbox):
    served = sandbox(failure_rate=0.3)
    statuses = [served.sandbox.handle("/notify/messages", f"k{i}", {"phone": "1"})[0] for i in range(400)]
    share = statuses.count(503) / len(statuses)
    assert 0.22 < share < 0.38
    assert statuses.count(201) == 400 - statuses.count(503)


def test_latency_is_added_to_every_answer(sandbox):
    served = sandbox(latency_ms=(150, 150))
    t0 = time.monotonic()
    post(served, "/notify/messages", {"phone": "13800000000"})
    assert time.monotonic() - t0 >= 0.15


def test_the_bank_calls_the_engine_back_once_per_reservation(sandbox, fake_engine):
    served = sandbox()
    body = {"creditCode": credit_code.issue("b"), "enterpriseName": "苏州某某科技有限公司", "businessKey": "SZ-2025-7"}
    accepted = post(served, "/bank/account-reservations", body, key="ext-9")
    assert accepted.status_code == 202 and accepted.json()["status"] == "ACCEPTED"
    post(served, "/bank/account-reservations", body, key="ext-9")            # a redelivered task
    assert fake_engine.wait_for(lambda: fake_engine.messages, timeout=3)
    time.sleep(0.2)
    [message] = fake_engine.messages
    reservation = accepted.json()["reservationId"]
    assert message["messageName"] == "bank.account_opened" and message["businessKey"] == "SZ-2025-7"
    assert message["messageId"] == f"bank.account_opened:{reservation}"
    assert message["processVariables"]["bankReservationId"] == {"value": reservation, "type": "String",
                                                                "valueInfo": {}}
    assert message["processVariables"]["bankAccountNo"]["value"].startswith("6222")
    assert message["authorization"] == "Bearer apr_bank"


def test_the_bank_calls_back_again_while_the_case_is_not_waiting_yet(sandbox, fake_engine):
    fake_engine.unmatched_messages = 2
    served = sandbox()
    post(served, "/bank/account-reservations", {"creditCode": credit_code.issue("c"), "businessKey": "SZ-8"})
    assert fake_engine.wait_for(lambda: fake_engine.messages, timeout=5)
    # the engine has the message before the sandbox's delivery thread records the outcome
    assert fake_engine.wait_for(lambda: served.sandbox.stats()["callbacks"][0]["status"] != "pending", timeout=5)
    [callback] = served.sandbox.stats()["callbacks"]
    assert callback["status"] == "delivered" and callback["attempts"] == 3
