"""`python app.py demo` against a live server: the app on a free port in a thread with the test
clock on, the department-system sandbox and the workers running (the `departments` fixture of
test_with_department_systems), or without workers, where the demo answers as a stand-in."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pytest

import app as approvals
from engine.clock import clock
from tests.conftest import ADMIN
from tests.e2e.test_with_department_systems import Served, departments  # noqa: F401  (fixture)


def run_demo(server_url: str, *options: str) -> int:
    return approvals.main(["demo", "--url", server_url + "/engine-rest", "--password", ADMIN[1], *options])


def test_the_demo_drives_one_case_of_each_process_and_prints_their_timelines(app, departments, capsys):  # noqa: F811
    server = Served(app)            # the demo's own connection; the workers poll the fixture's
    try:
        assert run_demo(server.url) == 0
    finally:
        server.close()
    out = capsys.readouterr().out

    assert "a running worker took the external task" in out
    assert out.count("State: COMPLETED") == 3 and "Demo finished: 3/3 cases completed" in out
    assert out.count("状态：已办结（COMPLETED）") == 3
    # the silent department, at its legal deadline, over the National Day holidays
    assert ("⏰ 超时默许：发展和改革委员会未在法定时限 5个工作日（截止 2025-10-10 23:59:59）内作出决定" in out)
    assert "⏰ tacit approval: Development and Reform did not decide within its legal limit of 5 working days" in out
    assert "▌Sat 2025-10-11 (adjusted working day) · working day 6" in out
    # the correction round stops Natural Resources' clock, which resumes with a later deadline
    assert "⏸ 自然资源和规划局部门审查时限暂停计时（申请人补正（窗口收件））" in out
    assert "▶ Natural Resources and Planning review clock resumed, deadline moved to 2025-10-16 23:59:59" in out
    assert "⚠ yellow card (reminder)" in out
    # the bank's answer came through the sandbox's callback, after the reservation
    assert "message bank.account_opened" in out and "bank account reservation" in out
    # the server is not left in the past
    assert abs((clock.now() - datetime.now(timezone.utc)).total_seconds()) < 60


def test_without_workers_the_demo_answers_the_department_systems_itself_and_says_so(app, gov, capsys):
    server = Served(app)
    try:
        assert run_demo(server.url, "--case", "enterprise_opening", "--lang", "en", "--worker-wait", "0.5") == 0
    finally:
        server.close()
    out = capsys.readouterr().out
    assert "this demo answers as a stand-in (worker 'approvals-demo-stand-in'" in out
    assert "business registration (credit code): credit code" in out
    assert "Demo finished: 1/1 cases completed" in out and "状态" not in out


def test_the_demo_says_how_to_start_the_server_when_the_test_clock_is_off(app, gov, settings, capsys):
    plain = approvals.create_app(dataclasses.replace(settings, test_clock=False, timers_enabled=False),
                                 app.extensions["approvals_engine"])
    server = Served(plain)
    try:
        assert run_demo(server.url) == 1
    finally:
        server.close()
    err = capsys.readouterr().err
    assert "the test clock is off" in err and "APPROVALS_TEST_CLOCK=1 ADMIN_PASSWORD=… make run" in err


@pytest.mark.parametrize("env, url", [
    ({}, "http://127.0.0.1:8080/engine-rest"),
    ({"PORT": "8601"}, "http://127.0.0.1:8601/engine-rest"),          # PORT=8601 make run, then PORT=8601 make demo
    ({"PORT": "8601", "APPROVALS_ENGINE_URL": "http://hall:9000/engine-rest"}, "http://hall:9000/engine-rest")])
def test_the_demo_finds_the_server_of_port_unless_told_its_url(monkeypatch, env, url):
    import argparse

    from workers import demo
    for name in ("PORT", "APPROVALS_ENGINE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    parser = argparse.ArgumentParser()
    demo.add_command(parser.add_subparsers(dest="command"))
    assert parser.parse_args(["demo"]).url == url
