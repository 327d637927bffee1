"""Does every query the API runs use an index?  EXPLAIN on both databases.

1. Runs the HTTP API tests (tests/api by default) in this process and records every
   distinct SELECT / UPDATE / DELETE the engine sends, with the parameters of its first
   use, per dialect (SQLite and PostgreSQL).
2. Builds a database of 100,000 cases (bench_flatness.pad) on each store and runs
   EXPLAIN (QUERY PLAN) for each recorded statement there.
3. Prints the statements whose plan reads a big table without an index: SQLite
   `SCAN <table>` (not `USING INDEX`), PostgreSQL `Seq Scan on <table>` with
   enable_seqscan off (so a small or empty table does not hide a missing index), each
   with the test that first ran it.

Run: .venv/bin/python bench/query_plans.py [--tests tests/api] [--pg URL | --no-pg] [--all]
(a tool, not part of `make bench`: the test run takes a few minutes)
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
import workload  # noqa: E402

# tables that grow with the number of cases (the others hold definitions, users, calendars)
BIG = ("process_instance", "instance_task", "user_task", "task_candidate", "timer", "activity_instance",
       "variable_instance", "audit_event", "system_audit_event", "legal_clock", "legal_event", "external_task",
       "incident", "message_subscription", "processed_message", "task_comment")
SKIP = re.compile(r"^\s*(INSERT|BEGIN|COMMIT|ROLLBACK|PRAGMA|SAVEPOINT|RELEASE|CREATE|DROP|ALTER|SET|SHOW|select pg_|"
                  r"select current_schema|select 1|DELETE FROM \w+\s*$)", re.IGNORECASE)   # the last: tests' wipe()


def capture(test_paths: list[str], pg_url: str | None) -> dict:
    """(dialect, sql) -> (parameters of the first execution, the test that ran it)."""
    import os

    import pytest
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    seen: dict = {}

    def record(conn, cursor, statement, parameters, context, executemany):
        if executemany or SKIP.match(statement) or "alembic_version" in statement:
            return
        if not any(t in statement for t in BIG):
            return
        seen.setdefault((conn.dialect.name, statement),
                        (parameters, os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]))

    event.listen(Engine, "before_cursor_execute", record)
    if pg_url:
        os.environ["APPROVALS_TEST_PG"] = pg_url
    code = pytest.main(["-q", "-p", "no:cacheprovider", *test_paths])
    event.remove(Engine, "before_cursor_execute", record)
    print(f"recorded {len(seen)} distinct statements on big tables (pytest exit {code})", flush=True)
    return seen


def explain(seen: dict, kind: str, url: str) -> list[tuple[str, str, str]]:
    """(statement, plan, test) for every statement whose plan scans a big table."""
    import sqlalchemy as sa
    dialect = "sqlite" if kind == "sqlite" else "postgresql"
    engine = sa.create_engine(url)
    bad = []
    with engine.connect() as conn:
        if dialect == "postgresql":
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        for (name, statement), (params, test) in seen.items():
            if name != dialect:
                continue
            prefix = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN "
            try:
                if dialect == "postgresql":
                    conn.exec_driver_sql("SET enable_seqscan = off")
                rows = conn.exec_driver_sql(prefix + statement, params).all()
            except Exception as err:  # noqa: BLE001 - e.g. a statement of a table the schema lacks
                conn.rollback()
                bad.append((statement, f"(EXPLAIN failed: {str(err).splitlines()[0]})", test))
                continue
            plan = "\n".join(str(r[-1]) for r in rows)
            if _scans(plan, dialect):
                bad.append((statement, plan, test))
            conn.rollback()
    engine.dispose()
    return bad


def _scans(plan: str, dialect: str) -> bool:
    for line in plan.splitlines():
        if dialect == "sqlite":
            m = re.search(r"\bSCAN (\w+)", line)
            if m and m.group(1) in BIG and "USING" not in line:
                return True
        else:
            m = re.search(r"Seq Scan on (\w+)", line)
            if m and m.group(1) in BIG:
                return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", default="tests/api", help="comma-separated pytest paths")
    parser.add_argument("--pg", default=harness.DEFAULT_PG)
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--size", type=int, default=100_000, help="cases in the EXPLAIN database")
    args = parser.parse_args()
    pg = None if args.no_pg or harness.pg_reachable(args.pg) else args.pg
    seen = capture(args.tests.split(","), pg)
    from bench_flatness import pad
    for label, kind in [("SQLite", "sqlite")] + ([("PostgreSQL", "pg")] if pg else []):
        with harness.fresh_database(kind, pg) as url:
            ids = workload.prepare_database(url, forms=False)
            pad(url, ids[workload.REVIEW_KEY], args.size)
            bad = explain(seen, kind, url)
        total = sum(1 for (d, _) in seen if d == ("sqlite" if kind == "sqlite" else "postgresql"))
        print(f"\n## {label}: {len(bad)} of {total} statements read a big table without an index "
              f"({args.size:,} cases)\n")
        for statement, plan, test in bad:
            print(re.sub(r"^SELECT .*? FROM ", "SELECT … FROM ", " ".join(statement.split()))[:700])
            print(f"    first run by {test}")
            print("    " + plan.replace("\n", "\n    ") + "\n")


if __name__ == "__main__":
    main()
