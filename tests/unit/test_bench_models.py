"""`make bench` runs its models through the engine: the engine must still take them.

A bound added to the engine (a multi-instance runs at most 1,000 instances) refused the
flatness bench's loop of 100,000 rounds, and `make bench` stopped halfway with nobody
told: the benches are not in `make test`.  These run each bench model through the service
layer for a round or two (the figures themselves come from bench/, not from here)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def bench_modules():
    sys.path.insert(0, str(BENCH))
    try:
        import bench_calls
        import bench_flatness
        yield bench_calls, bench_flatness
    finally:
        sys.path.remove(str(BENCH))


def test_every_model_of_the_overhead_bench_completes_in_the_service_layer(bench_modules):
    bench_calls, _ = bench_modules
    found = bench_calls.counts(BENCH.parent, 1)
    assert set(found) == {label for label, _, _ in bench_calls.MODELS}
    for label, row in found.items():
        assert row["service"] > 0 and row["statements"] >= 2, label


def test_the_flatness_bench_grows_one_case_by_its_loop(bench_modules):
    _, bench_flatness = bench_modules
    measured = bench_flatness.tasks_in_case((1, 3), 2)
    assert set(measured) == {"cache", "cache off", "own opinions", "bare"}
    assert all(set(sides) == {1, 3} for sides in measured.values())
