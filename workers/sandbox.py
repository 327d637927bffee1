"""The department-system sandbox: one small HTTP service that plays market regulation, public
security, tax, social security, the housing fund, a bank, the licence library, real-estate
registration and the SMS gateway, so the whole enterprise-opening job runs on one machine.

    python app.py sandbox --port 8081 --latency-ms 50-300 --failure-rate 0.1

Like the real systems it is meant to stand for, every POST needs an `Idempotency-Key`: the
same key with the same body gets the first answer again and has no second effect; with a
different body it is refused (422 IDEMPOTENCY_KEY_REUSED).  Latency and injected failures
(503 UNAVAILABLE, before any effect) exercise the workers' lock extension and retries.  The
bank accepts a reservation at once and later calls back the engine's `POST /message`
(`bank.account_opened`, the case's business key, a `messageId` for deduplication).

Business refusals a demo can trigger: an enterprise name containing 重名 or NAME_TAKEN is
taken (409 NAME_TAKEN); a credit code that fails GB 32100-2015 is refused by every
department (422 INVALID_CREDIT_CODE).
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from flask import Flask, jsonify, request

from . import credit_code
from .client import EngineClient, EngineError, EngineUnavailable
from .config import SandboxConfig

log = logging.getLogger("approvals.sandbox")

DEFAULT_SEALS = ["公章", "财务专用章", "发票专用章", "法定代表人名章"]
BANKS = {"ICBC": "中国工商银行", "ABC": "中国农业银行", "BOC": "中国银行", "CCB": "中国建设银行", "BOCOM": "交通银行"}
INVOICE_TYPES = {"vat_general": "增值税电子普通发票", "vat_special": "增值税电子专用发票"}


class Refusal(Exception):
    """A department's answer that is not a success: status, code, message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Answer:
    status: int
    body: dict
    after: Callable[[], None] | None = None       # an effect that happens later (the bank's callback)


@dataclass
class SandboxState:
    """What the departments have done; the idempotency store is what makes replays harmless."""
    answers: dict = field(default_factory=dict)          # (route, key) -> (body digest, status, body)
    effects: Counter = field(default_factory=Counter)    # route -> effects performed
    replays: int = 0
    injected_failures: int = 0
    callbacks: list = field(default_factory=list)        # bank callbacks: {messageId, status, attempts}
    key_locks: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def key_lock(self, route: str, key: str) -> threading.Lock:
        with self.lock:
            return self.key_locks.setdefault((route, key), threading.Lock())


# --- the departments ---------------------------------------------------------------------------

def _digits(seed: str, n: int) -> str:
    return str(int(hashlib.sha256(seed.encode()).hexdigest(), 16))[:n].rjust(n, "0")


def _required(body: dict, *names: str) -> None:
    missing = [n for n in names if body.get(n) in (None, "")]
    if missing:
        raise Refusal(400, "MISSING_FIELD", f"required field(s) missing: {', '.join(missing)}")


def _valid_code(body: dict) -> str:
    _required(body, "creditCode")
    problem = credit_code.problem(body["creditCode"])
    if problem:
        raise Refusal(422, "INVALID_CREDIT_CODE", f"统一社会信用代码无效: {problem}")
    return body["creditCode"]


def market_registration(body: dict, key: str, ctx: "Sandbox") -> Answer:
    _required(body, "enterpriseName")
    name = str(body["enterpriseName"])
    if "重名" in name or "NAME_TAKEN" in name:
        raise Refusal(409, "NAME_TAKEN", f"企业名称“{name}”已被登记 (name already registered)")
    region = str(body.get("regionCode") or "320500")
    if len(region) != 6 or not region.isdigit():
        raise Refusal(422, "REJECTED", f"regionCode {region!r} is not a 6-digit administrative division code")
    code = credit_code.issue(key, division=region)
    return Answer(201, {"creditCode": code, "registrationNo": region + _digits(key, 9),
                        "registeredAt": _now()})


def police_seals(body: dict, key: str, ctx: "Sandbox") -> Answer:
    code = _valid_code(body)
    types = body.get("sealTypes") or DEFAULT_SEALS
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise Refusal(400, "BAD_FIELD", "sealTypes must be a list of seal type names")
    return Answer(201, {"sealIds": [f"ES{code[2:8]}{_digits(key + t, 8)}" for t in types],
                        "sealTypes": types})


def tax_invoices(body: dict, key: str, ctx: "Sandbox") -> Answer:
    _valid_code(body)
    invoice_type = INVOICE_TYPES.get(body.get("invoiceType"), body.get("invoiceType") or INVOICE_TYPES["vat_general"])
    return Answer(201, {"quota": {"invoiceType": invoice_type, "monthlyCount": 25, "maxAmount": 100000},
                        "ukey": {"serialNo": "TAXUK" + _digits(key, 12), "issuedAt": _now()}})


def hrss_registration(body: dict, key: str, ctx: "Sandbox") -> Answer:
    code = _valid_code(body)
    return Answer(201, {"socialSecurityNo": code[2:8] + _digits(key, 10)})


def housing_fund_account(body: dict, key: str, ctx: "Sandbox") -> Answer:
    code = _valid_code(body)
    return Answer(201, {"fundAccountNo": "GJJ" + code[2:6] + _digits(key, 10)})


def bank_reservation(body: dict, key: str, ctx: "Sandbox") -> Answer:
    _valid_code(body)
    _required(body, "businessKey")
    reservation = "RSV" + _digits(key, 12)
    account = {"bankAccountNo": "6222" + _digits(key + "acct", 15),
               "bankName": BANKS.get(body.get("bankCode"), body.get("bankCode") or "沙箱银行"),
               "bankReservationId": reservation}
    return Answer(202, {"reservationId": reservation, "status": "ACCEPTED"},
                  after=lambda: ctx.call_back_bank(str(body["businessKey"]), reservation, account))


def licence_issue(body: dict, key: str, ctx: "Sandbox") -> Answer:
    code = _valid_code(body)
    _required(body, "holderName")
    return Answer(201, {"licenceId": f"DZZZ-{code[2:8]}-{datetime.now(timezone.utc):%Y%m%d}-{_digits(key, 8)}",
                        "licenceType": body.get("licenceType") or "营业执照"})


def realestate_push(body: dict, key: str, ctx: "Sandbox") -> Answer:
    if not isinstance(body.get("opinion"), dict) or not body["opinion"]:
        raise Refusal(400, "MISSING_FIELD", "opinion (the joint acceptance opinion, a JSON object) is required")
    if not (body.get("projectCode") or body.get("caseNo")):
        raise Refusal(400, "MISSING_FIELD", "projectCode or caseNo is required")
    return Answer(201, {"receiptNo": "BDC" + _digits(key, 12), "receivedAt": _now()})


def notify_send(body: dict, key: str, ctx: "Sandbox") -> Answer:
    if not (body.get("phone") or body.get("recipient")):
        raise Refusal(400, "MISSING_FIELD", "phone or recipient is required")
    return Answer(201, {"notificationId": "MSG" + _digits(key, 12), "channel": "sms" if body.get("phone") else "notice"})


ROUTES: dict[str, Callable[[dict, str, "Sandbox"], Answer]] = {
    "/market/registrations": market_registration,
    "/police/seals": police_seals,
    "/tax/invoice-applications": tax_invoices,
    "/hrss/employer-registrations": hrss_registration,
    "/housing-fund/employer-accounts": housing_fund_account,
    "/bank/account-reservations": bank_reservation,
    "/licence/licences": licence_issue,
    "/realestate/acceptance-opinions": realestate_push,
    "/notify/messages": notify_send,
}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --- the service -------------------------------------------------------------------------------

class Sandbox:
    def __init__(self, config: SandboxConfig, seed: int | None = None) -> None:
        self.config = config
        self.state = SandboxState()
        self.random = random.Random(seed)
        self._random_lock = threading.Lock()
        self.engine = EngineClient(config.engine_url, config.engine_auth.as_client_auth(), timeout=10)

    def _draw(self) -> tuple[float, float]:
        with self._random_lock:
            low, high = self.config.latency_ms
            return self.random.random(), self.random.uniform(low, high) / 1000

    def handle(self, route: str, key: str | None, body: Any) -> tuple[int, dict]:
        failure_draw, latency = self._draw()
        if latency:
            time.sleep(latency)
        if failure_draw < self.config.failure_rate:
            with self.state.lock:
                self.state.injected_failures += 1
            return 503, {"code": "UNAVAILABLE", "message": "sandbox: injected failure (nothing was done)"}
        if not key:
            return 400, {"code": "IDEMPOTENCY_KEY_REQUIRED", "message": "send an Idempotency-Key header"}
        if not isinstance(body, dict):
            return 400, {"code": "BAD_REQUEST", "message": "the body must be a JSON object"}
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        with self.state.key_lock(route, key):         # a concurrent duplicate waits for the first answer
            stored = self.state.answers.get((route, key))
            if stored is not None:
                if stored[0] != digest:
                    return 422, {"code": "IDEMPOTENCY_KEY_REUSED",
                                 "message": f"Idempotency-Key {key} was used with a different request"}
                with self.state.lock:
                    self.state.replays += 1
                return stored[1], stored[2]
            try:
                answer = ROUTES[route](body, key, self)
            except Refusal as refusal:
                answer = Answer(refusal.status, {"code": refusal.code, "message": refusal.message})
            with self.state.lock:
                self.state.answers[(route, key)] = (digest, answer.status, answer.body)
                if answer.status < 300:
                    self.state.effects[route] += 1
        if answer.after is not None:
            answer.after()
        return answer.status, answer.body

    # --- the bank's callback ---------------------------------------------------------------

    def call_back_bank(self, business_key: str, reservation: str, account: dict) -> None:
        record = {"messageId": f"bank.account_opened:{reservation}", "businessKey": business_key,
                  "status": "pending", "attempts": 0}
        with self.state.lock:
            self.state.callbacks.append(record)
        threading.Thread(target=self._deliver, args=(record, account), daemon=True,
                         name=f"bank-callback-{reservation}").start()

    def _deliver(self, record: dict, account: dict) -> None:
        """POST /message after the delay; again with growing pauses while the engine is down or
        the case is not waiting yet (400: no matching message subscription)."""
        from .task import encode
        delay = self.config.callback_delay_s
        for attempt in range(1, self.config.callback_attempts + 1):
            time.sleep(delay)
            record["attempts"] = attempt
            try:
                self.engine.correlate_message("bank.account_opened", business_key=record["businessKey"],
                                              process_variables=encode(account), message_id=record["messageId"])
                record["status"] = "delivered"
                log.info("bank callback %s delivered", record["messageId"])
                return
            except EngineError as err:
                record["error"] = str(err)
                if err.status in (401, 403):
                    break
            except EngineUnavailable as err:
                record["error"] = str(err)
            delay = max(delay * 2, 0.1)
        record["status"] = "failed"
        log.error("bank callback %s not delivered after %d attempt(s): %s", record["messageId"],
                  record["attempts"], record.get("error"))

    def stats(self) -> dict:
        with self.state.lock:
            return {"effects": dict(self.state.effects), "replays": self.state.replays,
                    "injectedFailures": self.state.injected_failures,
                    "callbacks": [dict(c) for c in self.state.callbacks]}


def create_sandbox(config: SandboxConfig, seed: int | None = None) -> Flask:
    sandbox = Sandbox(config, seed)
    app = Flask("department_sandbox")
    app.json.ensure_ascii = False
    app.extensions["sandbox"] = sandbox

    @app.before_request
    def check_token():
        if request.path in ("/health", "/_sandbox/stats") or not config.token:
            return None
        if request.headers.get("Authorization") != f"Bearer {config.token}":
            return jsonify(code="UNAUTHORIZED", message="send Authorization: Bearer <department token>"), 401
        return None

    @app.get("/health")
    def health():
        return jsonify(status="UP", systems=sorted({r.split("/")[1] for r in ROUTES}))

    @app.get("/_sandbox/stats")
    def stats():
        return jsonify(sandbox.stats())

    def endpoint(route: str):
        def view():
            status, body = sandbox.handle(route, request.headers.get("Idempotency-Key"),
                                          request.get_json(silent=True))
            return jsonify(body), status
        view.__name__ = "dept_" + route.strip("/").replace("/", "_").replace("-", "_")
        return view

    for route in ROUTES:
        app.add_url_rule(route, view_func=endpoint(route), methods=["POST"])
    return app
