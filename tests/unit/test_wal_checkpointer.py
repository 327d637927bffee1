"""SQLite's write-ahead log is copied back by a thread of the engine's, not by the
commit that happens to fill it (engine/db.py WalCheckpointer)."""
from __future__ import annotations

import threading

from sqlalchemy import text

from engine.db import WalCheckpointer, make_engine


COMMITS = 5_000                                    # ~3 pages each: past the writers' fallback


def _writer(db, counter: list) -> None:
    """Back-to-back write transactions, as a busy server makes them: one is always under way."""
    with db.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS blob (id INTEGER PRIMARY KEY, body BLOB)")
        conn.commit()
    payload = b"x" * 6000                          # two pages per row, as a case's state takes
    while counter[0] < COMMITS:
        with db.connect().execution_options(write=True) as conn:
            conn.execute(text("INSERT INTO blob (body) VALUES (:b)"), {"b": payload})
            conn.execute(text("DELETE FROM blob WHERE id < (SELECT max(id) FROM blob) - 50"))
            conn.commit()
        counter[0] += 1


def _run_writes(tmp_path, checkpointer: bool):
    path = tmp_path / "approvals.db"
    db = make_engine(f"sqlite:///{path}")
    worker = WalCheckpointer.for_engine(db, wal_limit=64 << 10, interval=0.01) if checkpointer else None
    counter = [0]
    thread = threading.Thread(target=_writer, args=(db, counter))
    thread.start()
    thread.join(120)
    wal_size = (tmp_path / "approvals.db-wal").stat().st_size
    if worker is not None:
        worker.stop()
    db.dispose()
    return wal_size, counter[0], worker


def test_the_log_stays_small_under_back_to_back_writes(tmp_path):
    wal_size, commits, worker = _run_writes(tmp_path, checkpointer=True)
    assert commits == COMMITS
    assert worker.checkpoints > 0
    # Without the thread the log grows to WalCheckpointer.FALLBACK_PAGES (~40 MB) before
    # a commit copies it back; with it, the log starts over a few checks past its limit.
    assert wal_size < 10 << 20, f"the WAL grew to {wal_size} bytes in {commits} commits"


def test_without_the_thread_the_log_grows_to_the_fallback_size(tmp_path):
    """The control for the test above: the writers' own checkpoint waits for the fallback
    size, so the same load leaves a log many times larger."""
    wal_size, commits, _ = _run_writes(tmp_path, checkpointer=False)
    assert commits == COMMITS
    assert wal_size > 30 << 20


def test_closing_the_engine_stops_the_thread(tmp_path):
    from engine.config import Settings
    from engine.context import Engine
    from engine.db import migrate
    url = f"sqlite:///{tmp_path / 'approvals.db'}"
    migrate(url)
    engine = Engine(Settings(database_url=url, timers_enabled=False))
    thread = engine.checkpointer._thread
    assert thread.is_alive()
    engine.close()
    assert not thread.is_alive()
