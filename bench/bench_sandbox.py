"""Evaluations per second of cached sandbox code (a printed figure, not an assertion).

Run: .venv/bin/python bench/bench_sandbox.py
"""
from __future__ import annotations

import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import sandbox  # noqa: E402

NAMES = {"approved": True, "amount": 5000, "applicant": {"name": " Li Wei ", "department": "finance"},
         "reviewers": ["li", "wang", "zhang"], "limit": 1000}
CASES = [
    ("gateway condition", "eval", "approved == True and amount > 1000"),
    ("condition with two variables", "eval", "amount > limit and applicant['department'] == 'finance'"),
    ("method call and arithmetic", "eval", "applicant['name'].strip() != '' and amount * 1.1 > limit"),
    ("comprehension over 3 items", "eval", "[r.upper() for r in reviewers if r != 'li']"),
    ("three-line script", "exec", "total = amount * 2\nnames = [r for r in reviewers]\nok = total > limit"),
]


def rate(mode: str, source: str, repeat: int = 5) -> float:
    run = (lambda: sandbox.evaluate(source, NAMES)) if mode == "eval" else \
        (lambda: sandbox.execute(source, dict(NAMES)))
    run()                                   # compile once: the cache serves the rest
    timer = timeit.Timer(run)
    count, _ = timer.autorange()
    best = min(timer.repeat(repeat=repeat, number=count))
    return count / best


def main() -> None:
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (bench/run_all.py)")
    repeat = 3 if parser.parse_args().quick else 5
    print(f"{'case':32} {'evaluations/s':>14} {'µs each':>9}")
    for label, mode, source in CASES:
        per_second = rate(mode, source, repeat)
        print(f"{label:32} {per_second:14,.0f} {1e6 / per_second:9.2f}")
    print(f"compile cache: {sandbox._compile.cache_info()}")


if __name__ == "__main__":
    main()
