"""The connector file: the shipped one serves every reform topic; mistakes are reported with
the file and the key; credentials come from the environment."""
from __future__ import annotations

from pathlib import Path

import pytest

from workers import config
from workers.config import AuthConfig, ConfigError

REFORM_TOPICS = {"market.registration", "police.seal", "tax.invoice", "hrss.social_security",
                 "housing_fund.registration", "bank.account_reservation", "licence.issue",
                 "realestate.push", "notify.applicant"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "connectors.toml"
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = """
[systems.market]
base_url = "${MARKET_URL:-http://127.0.0.1:8081/market}"
[topics."market.registration"]
system = "market"
path = "/registrations/{$businessKey}"
[topics."market.registration".request]
name = "applicantName"
"owner.name" = "applicant.legalRepresentative?"
kind = "=有限责任公司"
"""


def test_the_shipped_file_serves_every_reform_topic_from_the_sandbox():
    loaded = config.load(config.DEFAULT_PATH, env={})
    assert set(loaded.topics) == REFORM_TOPICS
    assert all(t.system.base_url.startswith("http://127.0.0.1:8081/") for t in loaded.topics.values())
    assert loaded.engine.base_url == "http://127.0.0.1:8080/engine-rest"
    assert loaded.sandbox.port == 8081 and loaded.sandbox.latency_ms == (50, 300)
    assert loaded.topics["market.registration"].checks == {"creditCode": "credit_code"}
    assert loaded.retry.retries == 3


def test_environment_variables_point_the_same_file_at_real_systems():
    loaded = config.load(config.DEFAULT_PATH, env={
        "TAX_URL": "https://etax.example.gov.cn/api/", "TAX_TOKEN": "t0k", "SANDBOX_FAILURE_RATE": "0.25",
        "APPROVALS_ENGINE_URL": "https://approvals.example.gov.cn/engine-rest"})
    tax = loaded.topics["tax.invoice"].system
    assert tax.base_url == "https://etax.example.gov.cn/api" and tax.auth == AuthConfig("bearer", token="t0k")
    assert loaded.sandbox.failure_rate == 0.25
    assert loaded.engine.base_url == loaded.sandbox.engine_url == "https://approvals.example.gov.cn/engine-rest"


@pytest.mark.parametrize("env, expected", [
    ({"WORKER_TOKEN": "apr_x", "WORKER_USER": "u", "ADMIN_PASSWORD": "a"}, AuthConfig("bearer", token="apr_x")),
    ({"WORKER_USER": "scjg_system", "WORKER_PASSWORD": "pw", "ADMIN_PASSWORD": "a"},
     AuthConfig("basic", user="scjg_system", password="pw")),
    ({"ADMIN_PASSWORD": "admin-secret"}, AuthConfig("basic", user="admin", password="admin-secret")),
    ({}, AuthConfig()),
])
def test_engine_credentials_come_from_the_environment_in_this_order(tmp_path, env, expected):
    loaded = config.load(write(tmp_path, MINIMAL), env=env)
    assert loaded.engine.auth == expected
    assert loaded.sandbox.engine_auth == expected           # the bank's callback uses them too


def test_one_sandbox_url_moves_every_system_and_a_system_url_overrides_it():
    loaded = config.load(config.DEFAULT_PATH, env={"SANDBOX_URL": "http://10.0.0.5:9000",
                                                     "BANK_URL": "https://openapi.bank.example/v2"})
    urls = {name: t.system.base_url for name, t in loaded.topics.items()}
    assert urls["market.registration"] == "http://10.0.0.5:9000/market"
    assert urls["housing_fund.registration"] == "http://10.0.0.5:9000/housing-fund"
    assert urls["bank.account_reservation"] == "https://openapi.bank.example/v2"


@pytest.mark.parametrize("text, env, expected", [
    ("${A}", {"A": "1"}, "1"),
    ("x${A:-}y", {}, "xy"),
    ("${A:-${B:-b}/c}", {"B": "B"}, "B/c"),
    ("${A:-${B:-b}/c}", {}, "b/c"),
    ("${A:-${B:-b}/c}", {"A": "a"}, "a"),
    ("{literal} $HOME", {}, "{literal} $HOME"),
])
def test_environment_substitution(tmp_path, text, env, expected):
    path = write(tmp_path, f'[engine]\nworker_id = "{text}"\n')
    assert config.load(path, env=env).engine.worker_id == (expected or None)


@pytest.mark.parametrize("text", ["${A:-x", "${1A}", "${A"])
def test_broken_substitutions_are_reported(tmp_path, text):
    with pytest.raises(ConfigError, match="engine.worker_id"):
        config.load(write(tmp_path, f'[engine]\nworker_id = "{text}"\n'), env={})


def test_variables_fetched_are_the_roots_the_request_reads(tmp_path):
    topic = config.load(write(tmp_path, MINIMAL), env={}).topics["market.registration"]
    assert config.variable_roots(topic) == ["applicantName", "applicant"]


@pytest.mark.parametrize("text, message", [
    (MINIMAL.replace('system = "market"', 'system = "samr"'), "system 'samr' is not defined under [systems]"),
    (MINIMAL.replace('"=有限责任公司"', '"$caseNumber"'), "unknown task attribute"),
    (MINIMAL + '[topics."market.registration".checks]\ncreditCode = "luhn"\n', "unknown check 'luhn'"),
    (MINIMAL + '[[topics."market.registration".errors]]\nstatus = 409\n', "exactly one of bpmn_error"),
    (MINIMAL + '[[topics."market.registration".errors]]\nbpmn_error = "X"\n', "needs status and/or code"),
    (MINIMAL.replace('base_url = "${MARKET_URL:-http://127.0.0.1:8081/market}"', 'base_url = "${MARKET_URL}"'),
     "needs the environment variable MARKET_URL"),
    (MINIMAL + '[systems.tax]\nauth = { type = "bearer" }\nbase_url = "http://x"\n', "needs token"),
    (MINIMAL + "[sandbox]\nfailure_rate = 2\n", "between 0 and 1"),
    (MINIMAL + "[sandbox]\nlatency_ms = \"300-50\"\n", "latency"),
    ("[systems\n", "not valid TOML"),
])
def test_mistakes_name_the_file_and_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        config.load(path, env={})
    assert message in str(err.value) and str(path) in str(err.value)


def test_a_missing_file_says_how_to_name_another(tmp_path):
    with pytest.raises(ConfigError, match="APPROVALS_CONNECTORS"):
        config.load(tmp_path / "nope.toml", env={})
