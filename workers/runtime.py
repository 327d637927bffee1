"""The external-task worker runtime: subscribe handlers to topics, then `run()`.

    worker = Worker("http://127.0.0.1:8080/engine-rest", auth=("worker1", "pw"), worker_id="tax-1")

    @worker.subscribe("tax.invoice", variables=["creditCode"])
    def issue_invoice(task):
        return {"invoiceQuota": 25}

    worker.run()        # until SIGTERM or Ctrl-C

One thread long-polls `fetchAndLock` for all subscribed topics, asking for as many tasks
as there are free slots (`max_tasks`); a pool of daemon threads runs the handlers; a lock
keeper extends the lock of every task held longer than half its lock duration.  A handler's
return value completes the task, `BpmnError` goes to `/bpmnError`, any other exception to
`/failure` with the retries counting down and the retry timeout growing exponentially.
An outcome the engine refuses (400: an error code no boundary event catches, a value out
of range, a failing output mapping), and a result the worker cannot send (not a dict, a
value JSON cannot carry), are reported as a `/failure` with retries 0, an incident at once:
running the handler again would only bring the same refusal.  A handler that runs
longer than its `handler_timeout` is given up: its lock is no longer extended, a `/failure`
is reported as for an exception, and a new thread takes its place in the pool (Python cannot
stop the stuck one; if it ever returns, its outcome is dropped and the thread ends).
On stop the worker asks for nothing more, unlocks tasks not started yet, and gives the
running handlers and the long poll in flight `shutdown_grace` seconds: handlers that finish
report as usual, except that an outcome the engine did not take is sent once more at once
instead of after a backoff, and its task unlocked if that fails too; tasks the last poll
still returns are unlocked, and what is left when the grace runs out is unlocked (tasks) or
cut (the poll), so another worker picks the tasks up at once instead of after their locks
expire.  The poll is not cut straight away because a server cannot tell that its client
went away: a cut poll may still lock a task for a worker that is gone, and that task then
waits out its lock.  A second SIGTERM/SIGINT (or `stop(now=True)`) cuts it at once.
"""
from __future__ import annotations

import logging
import math
import os
import queue
import secrets
import signal
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .client import Auth, EngineClient, EngineError, EngineUnavailable, PollInterrupted
from .task import BpmnError, ExternalTask, Failure, Unencodable, encode

log = logging.getLogger("approvals.workers")

_SEND_TRIES = 5     # an outcome answered 409 or 500 is sent at most this often

Handler = Callable[[ExternalTask], "dict[str, Any] | None"]


@dataclass(frozen=True)
class RetryPolicy:
    """`retries` further attempts after the first failure; the n-th failure (n = 0, 1, …) asks
    the engine to wait `initial_ms * factor**n`, at most `max_ms`, before offering the task again."""
    retries: int = 3
    initial_ms: int = 1000
    factor: float = 2.0
    max_ms: int = 5 * 60_000

    def next(self, task_retries: int | None) -> tuple[int, int]:
        """(retries left to report, retryTimeout in ms) after a failure of a task that had
        `task_retries` left (None: never failed before, as Camunda reports it)."""
        left = self.retries if task_retries is None else max(task_retries - 1, 0)
        attempt = max(self.retries - left, 0)
        return left, int(min(self.max_ms, self.initial_ms * self.factor ** attempt))


@dataclass
class Subscription:
    topic: str
    handler: Handler
    variables: list[str] | None = None
    lock_duration: int | None = None
    retry: RetryPolicy | None = None
    options: dict = field(default_factory=dict)
    handler_timeout: float | None = None        # seconds; None: the worker's


@dataclass(frozen=True)
class _Outcome:
    """What a handler's run comes to: the call that reports it, and how the log names it."""
    verb: str                            # "complete", "bpmnError" or "failure"
    send: Callable[[], None]
    summary: str


@dataclass
class _Lease:
    """A task this worker holds: from fetch until reported or unlocked."""
    task: ExternalTask
    subscription: Subscription
    lock_duration: int
    expires: float                       # time.monotonic() when the lock runs out
    started: bool = False
    deadline: float = math.inf           # time.monotonic() when its handler has run too long
    thread: int | None = None            # the handler's thread (threading.get_ident())
    finished: bool = False               # reported or unlocked: nobody may report again
    abandoned: bool = False              # its handler overran handler_timeout; another thread replaced it
    guard: threading.Lock = field(default_factory=threading.Lock)


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


class Worker:
    def __init__(self, base_url: str, auth: Auth = None, worker_id: str | None = None, max_tasks: int = 10,
                 lock_duration: int = 30_000, async_response_timeout: int = 20_000, use_priority: bool = True,
                 threads: int | None = None, retry: RetryPolicy | None = None, shutdown_grace: float = 10.0,
                 handler_timeout: float | None = 300.0, client: EngineClient | None = None) -> None:
        """Durations are milliseconds as in Camunda's API, except `shutdown_grace` and
        `handler_timeout` (seconds; None: a handler may run for ever)."""
        if max_tasks < 1:
            raise ValueError("max_tasks must be at least 1")
        _check_timeout(handler_timeout)
        self.client = client or EngineClient(base_url, auth)
        self.worker_id = worker_id or default_worker_id()
        self.max_tasks = max_tasks
        self.lock_duration = lock_duration
        self.async_response_timeout = async_response_timeout
        self.use_priority = use_priority
        self.threads = threads or max_tasks
        self.retry = retry or RetryPolicy()
        self.shutdown_grace = shutdown_grace
        self.handler_timeout = handler_timeout
        self.subscriptions: dict[str, Subscription] = {}
        self._leases: dict[str, _Lease] = {}
        self._lock = threading.Condition()
        self._queue: queue.Queue = queue.Queue()
        self._stopping = threading.Event()
        self._deadline = float("inf")          # time.monotonic() when the shutdown grace runs out
        self._stopped = threading.Event()
        self._wake_keeper = threading.Event()  # a handler started: the lock keeper watches its deadline
        self._stuck = 0                        # handler threads given up on that have not returned
        self._thread: threading.Thread | None = None

    # --- set-up ------------------------------------------------------------------------

    def subscribe(self, topic: str, variables: Iterable[str] | None = None, lock_duration: int | None = None,
                  retry: RetryPolicy | None = None, handler: Handler | None = None,
                  handler_timeout: float | None = None, **options):
        """Register `handler` for `topic` (as a decorator when `handler` is omitted).

        `variables` limits the variables fetched with the task (None: all); `handler_timeout`
        (seconds, default the worker's; `math.inf`: none) is how long the handler may run
        before the task is reported failed; extra keyword options go into the topic of the
        fetch request as they are (e.g. `businessKey`, `processDefinitionKey`, `localVariables`)."""
        _check_timeout(handler_timeout)

        def register(fn: Handler) -> Handler:
            if topic in self.subscriptions:
                raise ValueError(f"topic {topic!r} already has a handler")
            self.subscriptions[topic] = Subscription(topic, fn, list(variables) if variables is not None else None,
                                                     lock_duration, retry, options, handler_timeout)
            return fn
        return register(handler) if handler is not None else register

    # --- running -----------------------------------------------------------------------

    def run(self, install_signal_handlers: bool = True) -> None:
        """Fetch and work until `stop()`, SIGTERM or SIGINT; returns after the graceful shutdown."""
        if not self.subscriptions:
            raise RuntimeError("no topic subscribed: call worker.subscribe(...) first")
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._on_signal)
        pool = [threading.Thread(target=self._work, name=f"worker-handler-{i}", daemon=True)
                for i in range(self.threads)]
        keeper = threading.Thread(target=self._keep_locks, name="worker-lock-keeper", daemon=True)
        for thread in (*pool, keeper):
            thread.start()
        log.info("worker %s fetching %s from %s", self.worker_id, ", ".join(self.subscriptions),
                 self.client.base_url)
        try:
            self._fetch_loop()
        finally:
            self._shutdown()
            self._stopped.set()
            self._wake_keeper.set()

    def start(self) -> "Worker":
        """`run()` in a background thread (no signal handlers); for embedding and tests."""
        self._thread = threading.Thread(target=self.run, kwargs={"install_signal_handlers": False},
                                        name=f"worker-{self.worker_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self, wait: bool = True, timeout: float | None = None, now: bool = False) -> None:
        """Stop fetching and shut down gracefully (see the module's doc); `now` cuts the long
        poll at once; with `wait`, return once the shutdown is done."""
        if not self._stopping.is_set():
            self._deadline = time.monotonic() + self.shutdown_grace
            self._stopping.set()
            cut = threading.Timer(self.shutdown_grace, self.client.interrupt)
            cut.daemon = True
            cut.start()
        if now:
            self.client.interrupt()
        with self._lock:
            self._lock.notify_all()
        if wait:
            self._stopped.wait(timeout)

    def _on_signal(self, signum, _frame) -> None:
        again = self._stopping.is_set()
        log.info("%s: %s", signal.Signals(signum).name,
                 "stopping now" if again else f"stopping (up to {self.shutdown_grace:g} s; send it again to stop now)")
        self.stop(wait=False, now=again)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._leases)

    # --- fetching ----------------------------------------------------------------------

    def _fetch_loop(self) -> None:
        backoff = 0.0
        while not self._stopping.is_set():
            free = self._wait_for_free_slots()
            if free == 0:
                continue
            asked = time.monotonic()
            try:
                tasks = self.client.fetch_and_lock(self._fetch_body(free))
                backoff = 0.0
            except PollInterrupted:
                break
            except (EngineUnavailable, EngineError) as err:
                backoff = min(max(backoff * 2, 0.5), 30.0)
                level = logging.WARNING if isinstance(err, EngineError) or backoff >= 4 else logging.INFO
                log.log(level, "fetchAndLock failed (%s); trying again in %.1f s", err, backoff)
                self._stopping.wait(backoff)
                continue
            fetched_at = time.monotonic()
            if not tasks and fetched_at - asked < self.async_response_timeout / 2000:
                # empty long before the long poll's time: the server could not wait (no thread
                # free); ask again in a moment, not at once
                self._stopping.wait(min(1.0, self.async_response_timeout / 2000))
            for data in tasks:
                self._accept(ExternalTask.from_wire(data), fetched_at)

    def _wait_for_free_slots(self) -> int:
        with self._lock:
            while len(self._leases) >= self.max_tasks and not self._stopping.is_set():
                self._lock.wait(1.0)
            return 0 if self._stopping.is_set() else self.max_tasks - len(self._leases)

    def _fetch_body(self, max_tasks: int) -> dict:
        topics = []
        for sub in self.subscriptions.values():
            topic = {"topicName": sub.topic, "lockDuration": sub.lock_duration or self.lock_duration, **sub.options}
            if sub.variables is not None:
                topic["variables"] = sub.variables
            topics.append(topic)
        return {"workerId": self.worker_id, "maxTasks": max_tasks, "usePriority": self.use_priority,
                "asyncResponseTimeout": self.async_response_timeout, "topics": topics}

    def _accept(self, task: ExternalTask, fetched_at: float) -> None:
        sub = self.subscriptions.get(task.topic_name)
        if sub is None:             # the engine sent a topic we did not ask for: give it back
            log.warning("task %s has unsubscribed topic %r; unlocking it", task.id, task.topic_name)
            self._unlock_quietly(task.id)
            return
        duration = sub.lock_duration or self.lock_duration
        lease = _Lease(task, sub, duration, fetched_at + duration / 1000)
        with self._lock:
            held = self._leases.get(task.id)
            # our lock had lapsed and we got it again: keep the running handler (one reported or
            # given up on is done with: the task is a new lease)
            if held is not None and not held.finished:
                log.warning("task %s was offered again while its handler still runs (lock lapsed); "
                            "keeping the new lock", task.id)
                held.expires = lease.expires
                return
            self._leases[task.id] = lease
        if self._stopping.is_set():          # fetched while stopping: hand it back at once
            self._release(lease, unlock=True)
            return
        self._queue.put(lease)

    # --- executing ---------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            lease = self._queue.get()
            if lease is None:               # shutdown
                return
            with lease.guard:
                if lease.finished:
                    continue
                lease.started, lease.thread = True, threading.get_ident()
                lease.deadline = time.monotonic() + self._timeout_of(lease.subscription)
            self._wake_keeper.set()
            try:
                self._execute(lease)
            except Exception:  # noqa: BLE001 - a broken report must not kill the pool thread
                log.exception("task %s: reporting its outcome failed; unlocking it", lease.task.id)
                self._release(lease, unlock=True)
            if lease.abandoned:             # another thread took this one's place meanwhile
                with self._lock:
                    self._stuck -= 1
                log.warning("task %s: the handler given up on returned after all; its result was dropped "
                            "and its thread ends", lease.task.id)
                return

    def _execute(self, lease: _Lease) -> None:
        task, sub = lease.task, lease.subscription
        try:
            result = sub.handler(task)
        except BpmnError as err:
            outcome = self._bpmn_error(lease, err)
        except Exception as err:  # noqa: BLE001 - every other handler error becomes a failure report
            retries, timeout = (sub.retry or self.retry).next(task.retries)
            details = traceback.format_exc()
            if isinstance(err, Failure):
                retries = retries if err.retries is None else err.retries
                timeout = timeout if err.retry_timeout_ms is None else err.retry_timeout_ms
                details = err.details or details
            outcome = self._failure(lease, str(err) or type(err).__name__, details, retries, timeout)
        else:
            outcome = self._completion(lease, result)
        self._report(lease, outcome)

    # A result the runtime cannot send is an incident at once: the same code run again
    # returns the same thing, so counting retries down would only call the department again.

    def _completion(self, lease: _Lease, result: Any) -> _Outcome:
        task, client, me = lease.task, self.client, self.worker_id
        if result is not None and not isinstance(result, dict):
            return self._unsendable(lease, f"returned a {type(result).__name__} ({_short(result)}); "
                                           "return a dict of variables or None", result)
        try:
            variables = encode(result)
        except Unencodable as err:
            return self._unsendable(lease, f"returned {err}", result)
        return _Outcome("complete", lambda: client.complete(task.id, me, variables), "completed")

    def _bpmn_error(self, lease: _Lease, err: BpmnError) -> _Outcome:
        task, client, me = lease.task, self.client, self.worker_id
        try:
            code, message, variables = err.code, err.message, encode(err.variables)
        except Unencodable as problem:
            return self._unsendable(lease, f"raised BpmnError {err.code!r} whose {problem}", err.variables)
        return _Outcome("bpmnError", lambda: client.bpmn_error(task.id, me, code, message, variables),
                        f"BPMN error {code}")

    def _unsendable(self, lease: _Lease, what: str, value: Any) -> _Outcome:
        handler = getattr(lease.subscription.handler, "__qualname__", repr(lease.subscription.handler))
        message = f"the handler {handler} for topic {lease.task.topic_name!r} {what}"
        log.error("task %s: %s; reporting an incident", lease.task.id, message)
        return self._failure(lease, message, f"the value: {repr(value)[:3000]}", retries=0, timeout=0)

    def _failure(self, lease: _Lease, message: str, details: str | None, retries: int, timeout: int) -> _Outcome:
        task, message = lease.task, message[:4000]
        return _Outcome("failure", lambda: self.client.failure(task.id, self.worker_id, message, details, retries,
                                                               timeout),
                        f"failed ({message}); retries left {retries}, next try in {timeout} ms")

    def _report(self, lease: _Lease, outcome: _Outcome) -> None:
        with lease.guard:
            if lease.finished:          # unlocked during shutdown, or given up on: no longer ours
                log.info("task %s finished after it was %s; outcome dropped", lease.task.id,
                         "given up on" if lease.abandoned else "handed back")
                return
            self._deliver(lease, outcome)
            lease.finished = True
        self._forget(lease)

    def _deliver(self, lease: _Lease, outcome: _Outcome) -> None:
        """Send the outcome.  Sent again, with backoff and while the lock holds: after the
        engine was unreachable or answered 500 (the outcome may or may not have landed), and
        after a 409 (the case changed at the same time; the engine asks for a retry), the
        last two at most `_SEND_TRIES` times.  A 404 after an uncertain try means the first
        one landed (a finished task is gone) or a boundary event cancelled the task.  A stop
        ends the backoff: one more try at once, then the task is unlocked for another worker."""
        delay, tries, uncertain, last = 0.2, 0, False, False
        while True:
            tries += 1
            try:
                outcome.send()
                log.info("task %s (%s) %s", lease.task.id, lease.task.topic_name, outcome.summary)
                return
            except EngineUnavailable as err:
                problem, uncertain = err, True
            except EngineError as err:
                if err.status == 400 and outcome.verb != "failure":
                    # the engine refused the outcome itself (an error code nothing catches, a value
                    # it rejects, a failing output mapping): running the handler again brings the same
                    log.warning("task %s: the engine refused the outcome '%s' (%s); reporting an incident",
                                lease.task.id, outcome.summary, err)
                    outcome = self._failure(lease, f"the engine refused the outcome '{outcome.summary}': {err.message}",
                                            str(err), retries=0, timeout=0)
                    delay, tries, uncertain = 0.2, 0, False
                    continue
                if err.status == 404 and uncertain:
                    log.info("task %s: '%s' was sent again after an unanswered try and the task is gone: "
                             "the first try landed (or a boundary event cancelled the task)",
                             lease.task.id, outcome.summary)
                    return
                if err.status not in (409, 500):
                    # 404: cancelled meanwhile (a boundary event fired); 400 to a failure: the lock
                    # went to another worker
                    log.warning("task %s: the engine refused the outcome '%s': %s", lease.task.id, outcome.summary,
                                err)
                    return
                problem, uncertain = err, uncertain or err.status == 500
            if last:
                # the worker is leaving: hand the task back now rather than after its lock runs out;
                # the next worker runs the handler again (at least once, README: resends)
                log.warning("task %s: '%s' was not delivered before the worker stopped (%s); unlocking it for "
                            "another worker, which runs its handler again", lease.task.id, outcome.summary, problem)
                lease.finished = True       # first: the poll in flight may fetch it again, and must hand it back
                self._unlock_quietly(lease.task.id)
                return
            if isinstance(problem, EngineError) and tries >= _SEND_TRIES:
                log.error("task %s: '%s' answered %s %d times; giving up: the engine offers the task "
                          "again when its lock runs out", lease.task.id, outcome.summary, problem, tries)
                return
            if not self._stopping.is_set():
                if time.monotonic() + delay >= lease.expires:
                    log.error("task %s: could not report '%s' before its lock ran out (%s); the engine will "
                              "offer it again", lease.task.id, outcome.summary, problem)
                    return
                log.warning("task %s: reporting '%s' failed (%s); sending it again in %.1f s", lease.task.id,
                            outcome.summary, problem, delay)
            # a stop ends the wait (or skips it): the try that follows is the last
            last = self._stopping.wait(delay)
            delay = min(delay * 2, 5.0)

    def _timeout_of(self, sub: Subscription) -> float:
        timeout = sub.handler_timeout if sub.handler_timeout is not None else self.handler_timeout
        return math.inf if timeout is None else timeout

    # --- locks -------------------------------------------------------------------------

    def _keep_locks(self) -> None:
        """Extend every lock that has less than half its duration left; give up on handlers
        that ran past their timeout."""
        shortest = min(sub.lock_duration or self.lock_duration for sub in self.subscriptions.values())
        while not self._stopped.is_set():
            self._wake_keeper.clear()
            with self._lock:
                leases = list(self._leases.values())
            now = time.monotonic()
            for lease in leases:
                if lease.finished:
                    continue
                if now >= lease.deadline:
                    self._give_up(lease)
                elif lease.expires - now <= lease.lock_duration / 2000:
                    try:
                        self.client.extend_lock(lease.task.id, self.worker_id, lease.lock_duration)
                        lease.expires = time.monotonic() + lease.lock_duration / 1000
                    except (EngineError, EngineUnavailable) as err:
                        log.warning("task %s: could not extend its lock: %s", lease.task.id, err)
            next_deadline = min((lease.deadline for lease in leases if not lease.finished), default=math.inf)
            self._wake_keeper.wait(min(max(shortest / 4000, 0.02), 5.0, max(next_deadline - time.monotonic(), 0.02)))

    def _give_up(self, lease: _Lease) -> None:
        """Its handler overran handler_timeout: stop extending the lock, report a failure as for
        an exception (retries counted down) with where the handler hangs, free its slot, and
        put a new thread in the pool in the stuck one's place, as Python cannot stop a thread."""
        if not lease.guard.acquire(blocking=False):
            return                          # its handler is reporting right now
        try:
            if lease.finished:
                return
            lease.finished = lease.abandoned = True
            with self._lock:
                self._stuck += 1
                stuck = self._stuck
        finally:
            lease.guard.release()
        timeout = self._timeout_of(lease.subscription)
        log.error("task %s (%s): the handler did not finish within %g s; reporting a failure and replacing its "
                  "thread (%d handler thread(s) stuck; restart the worker if that number keeps growing)",
                  lease.task.id, lease.task.topic_name, timeout, stuck)
        frame = sys._current_frames().get(lease.thread)
        where = "".join(traceback.format_stack(frame)) if frame is not None else "(the thread has just returned)"
        retries, retry_timeout = (lease.subscription.retry or self.retry).next(lease.task.retries)
        outcome = self._failure(lease, f"the handler for {lease.task.topic_name!r} did not finish within {timeout:g} s "
                                f"(handler_timeout); given up on", f"where the handler was:\n{where}",
                                retries, retry_timeout)

        def replace() -> None:
            self._forget(lease)
            self._deliver(lease, outcome)
            self._work()
        threading.Thread(target=replace, name=f"worker-handler-replacing-{lease.task.id}", daemon=True).start()

    def _release(self, lease: _Lease, unlock: bool) -> None:
        with lease.guard:
            if lease.finished:
                return
            lease.finished = True
        if unlock:
            self._unlock_quietly(lease.task.id)
        self._forget(lease)

    def _unlock_quietly(self, task_id: str) -> None:
        try:
            self.client.unlock(task_id)
        except (EngineError, EngineUnavailable) as err:
            log.warning("task %s: unlock failed (%s); it returns when its lock expires", task_id, err)

    def _forget(self, lease: _Lease) -> None:
        with self._lock:
            self._leases.pop(lease.task.id, None)
            self._lock.notify_all()

    # --- shutdown ----------------------------------------------------------------------

    def _shutdown(self) -> None:
        self._stopping.set()
        with self._lock:
            waiting = [lease for lease in self._leases.values() if not lease.started]
        for lease in waiting:                   # not started: no side effect yet, hand back now
            self._release(lease, unlock=True)
        deadline = min(self._deadline, time.monotonic() + self.shutdown_grace)
        with self._lock:
            while self._leases and time.monotonic() < deadline:
                self._lock.wait(min(0.05, max(deadline - time.monotonic(), 0)))
            running = list(self._leases.values())
        for lease in running:
            log.warning("task %s still running after %.1f s of shutdown grace; unlocking it",
                        lease.task.id, self.shutdown_grace)
            self._release(lease, unlock=True)
        for _ in range(self.threads):
            self._queue.put(None)
        self.client.close()
        log.info("worker %s stopped", self.worker_id)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and not timeout > 0:
        raise ValueError(f"handler_timeout must be a number of seconds above 0 (or None), got {timeout!r}")
