"""The one clock the engine reads time from.

Production reads the system clock. With the test clock enabled an administrator may
set "now"; the set time then advances in real time (so timers still fire), and every
listener (the timer scheduler) is told at once so it can re-plan its sleep.
"""
from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import Callable


class Clock:
    def __init__(self) -> None:
        self._offset = 0.0          # seconds added to the system time
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> datetime:
        """Aware UTC datetime."""
        return datetime.fromtimestamp(time.time() + self._offset, timezone.utc)

    def timestamp(self) -> float:
        return time.time() + self._offset

    def set(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("the clock needs a time with a UTC offset, e.g. 2025-09-26T10:00:00+08:00")
        with self._lock:
            self._offset = now.timestamp() - time.time()
            listeners = list(self._listeners)
        for notify in listeners:
            notify()

    def reset(self) -> None:
        with self._lock:
            self._offset = 0.0
            listeners = list(self._listeners)
        for notify in listeners:
            notify()

    @property
    def is_moved(self) -> bool:
        return self._offset != 0.0

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)
        return unsubscribe


clock = Clock()


def utcnow() -> datetime:
    """Naive UTC 'now' as stored in the database."""
    return clock.now().replace(tzinfo=None)
