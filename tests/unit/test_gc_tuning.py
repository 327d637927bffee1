"""app.tune_gc: what a server worker does to Python's garbage collector once it has started.
Each case runs in a fresh interpreter, so this test process keeps its own settings."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = ("import gc, json, app; before = gc.get_threshold(); app.tune_gc(); "
         "print(json.dumps({'before': before, 'after': gc.get_threshold(), 'frozen': gc.get_freeze_count()}))")


def _probe(setting: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "APPROVALS_GC_THRESHOLD"}
    if setting is not None:
        env["APPROVALS_GC_THRESHOLD"] = setting
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_by_default_startup_objects_are_frozen_and_the_young_generation_collected_less_often():
    result = _probe(None)
    assert result["before"] == [700, 10, 10]
    assert result["after"] == [10000, 10, 10]
    assert result["frozen"] > 10000            # the modules and the app's objects


@pytest.mark.parametrize("setting, thresholds", [("2000, 5, 5", [2000, 5, 5]), ("off", [700, 10, 10])])
def test_the_thresholds_come_from_the_environment(setting, thresholds):
    result = _probe(setting)
    assert result["after"] == thresholds
    assert (result["frozen"] == 0) == (setting == "off")


@pytest.mark.parametrize("setting", ["fast", "0,10,10", "1,2,3,4", "-5", "99999999999"])
def test_a_wrong_value_is_refused_with_a_message(setting, monkeypatch):
    import app
    monkeypatch.setenv("APPROVALS_GC_THRESHOLD", setting)
    with pytest.raises(SystemExit, match="APPROVALS_GC_THRESHOLD=.*expected up to three whole numbers"):
        app.gc_thresholds()


def test_serve_stops_on_a_wrong_value_before_anything_starts(monkeypatch, tmp_path):
    """(`run` goes through the same check; it is not called here, since without the check
    it would migrate and serve instead of failing.)"""
    import app
    database = tmp_path / "untouched.db"
    monkeypatch.setenv("APPROVALS_GC_THRESHOLD", "fast")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    with pytest.raises(SystemExit, match="APPROVALS_GC_THRESHOLD='fast'"):
        app.main(["serve"])
    assert not database.exists()


def test_each_server_worker_tunes_the_collector_once_it_has_loaded_the_app(tmp_path):
    """What gunicorn calls in a worker after the fork (app.server(...).load())."""
    probe = ("import gc, json, app; from engine.config import Settings; app.main(['migrate']); "
             "worker = app.server(Settings.from_env()); before = gc.get_threshold(); worker.load(); "
             "print(json.dumps({'before': before, 'after': gc.get_threshold(), 'frozen': gc.get_freeze_count()}))")
    env = {k: v for k, v in os.environ.items() if k != "APPROVALS_GC_THRESHOLD"}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'worker.db'}", APPROVALS_NO_TIMERS="1")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["before"] == [700, 10, 10]
    assert result["after"] == [10000, 10, 10] and result["frozen"] > 10000
