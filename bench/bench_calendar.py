"""Median time of one deadline on the working-day calendar (a printed figure, not an assertion).

Deadlines are computed on every task creation, so add_working_days(start, 30) should take
microseconds.  Run: .venv/bin/python bench/bench_calendar.py
"""
from __future__ import annotations

import statistics
import sys
import timeit
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.calendar import WorkingCalendar  # noqa: E402

STARTS = [date(2025, 1, 1) + timedelta(days=k * 37) for k in range(20)]   # spread over 2025-2027


def median_us(call, repeat: int = 25) -> float:
    timer = timeit.Timer(call)
    count, _ = timer.autorange()
    return statistics.median(timer.repeat(repeat=repeat, number=count)) / count * 1e6


def main() -> None:
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (bench/run_all.py)")
    repeat = 7 if parser.parse_args().quick else 25
    build_ms = median_us(WorkingCalendar.from_holidays, repeat=min(repeat, 7)) / 1000
    calendar = WorkingCalendar.from_holidays()
    moment = datetime(2025, 9, 26, 16, 0)
    cases = [
        ("add_working_days(date, 30)", lambda: [calendar.add_working_days(d, 30) for d in STARTS]),
        ("add_working_days(datetime, 30)", lambda: [calendar.add_working_days(moment, 30) for _ in STARTS]),
        ("add_working_hours(datetime, 30 * 7)", lambda: [calendar.add_working_hours(moment, 210) for _ in STARTS]),
        ("working_days_between(d, d + 60)", lambda: [calendar.working_days_between(d, d + timedelta(60))
                                                     for d in STARTS]),
    ]
    print(f"calendar build (from_holidays, 2020-2030): {build_ms:.2f} ms")
    print(f"{'call':40} {'median µs per call':>19}")
    for label, batch in cases:
        print(f"{label:40} {median_us(batch, repeat) / len(STARTS):19.2f}")


if __name__ == "__main__":
    main()
