"""What every bench shares: medians and percentiles, throw-away databases (a temp SQLite
file or a fresh PostgreSQL schema, dropped afterwards), the real server as a subprocess,
and a keep-alive HTTP client.

The machine is shared and noisy: compare alternatives side by side (interleaved rounds
in one run) and report medians, never a single run.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_PG = os.environ.get("APPROVALS_BENCH_PG") or os.environ.get(
    "APPROVALS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


# --- figures --------------------------------------------------------------------------

def median(values) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def percentile(values, share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


@dataclass
class Round:
    """One measured batch: operations done, wall time, and each operation's latency (s)."""
    ops: int
    seconds: float
    latencies: list = field(default_factory=list)
    cpu: float | None = None           # CPU seconds the server's processes spent on it, where measured
    switches: int | None = None        # context switches of the server's threads over the whole round, where measured
    pg_cpu: float | None = None        # CPU seconds of the local PostgreSQL server's processes, where measured
    client_cpu: float | None = None    # CPU seconds of this process (the load's client threads), where measured

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds else float("nan")


def summarize(rounds: list[Round]) -> dict:
    """Median over rounds of the rate and of each round's p50 / p99 latency (ms)."""
    return {"rate": median(r.rate for r in rounds),
            "p50": median(percentile(r.latencies, 0.50) * 1000 for r in rounds if r.latencies),
            "p99": median(percentile(r.latencies, 0.99) * 1000 for r in rounds if r.latencies),
            "cpu_ms": median([r.cpu / r.ops * 1000 for r in rounds if r.cpu is not None and r.ops]
                             or [float("nan")]),
            "switches": median([r.switches / r.ops for r in rounds if r.switches is not None and r.ops]
                               or [float("nan")]),
            "pg_cpu_ms": median([r.pg_cpu / r.ops * 1000 for r in rounds if r.pg_cpu is not None and r.ops]
                                or [float("nan")]),
            "client_cpu_ms": median([r.client_cpu / r.ops * 1000 for r in rounds
                                     if r.client_cpu is not None and r.ops] or [float("nan")]),
            "rounds": len(rounds)}


def client_cpu_seconds() -> float:
    """User + system CPU time of this process, all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _process_cpu(pid) -> tuple[str, float] | None:
    """(name, user + system CPU seconds so far) of a process, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        name, fields = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        return name, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def postgres_cpu_seconds() -> float | None:
    """User + system CPU time of every `postgres` process on this machine (the server,
    its backends and its background writers), or None when none is visible (a server on
    another host)."""
    found = [cpu for cpu in map(_process_cpu, (e.name for e in Path("/proc").iterdir() if e.name.isdigit()))
             if cpu is not None and (cpu[0] == "postgres" or cpu[0].startswith("postgres:"))]
    return sum(seconds for _, seconds in found) if found else None


# --- databases ------------------------------------------------------------------------

def pg_reachable(url: str) -> str | None:
    """None if PostgreSQL at `url` answers, else why not."""
    from engine.db import postgresql_problem
    return postgresql_problem(url)


@contextmanager
def fresh_database(kind: str, pg_url: str = DEFAULT_PG):
    """A URL to an empty database: a temp SQLite file, or a new schema on `pg_url`
    (as tests/conftest.py makes them) that is dropped afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="approvals-bench-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    from engine.db import scratch_schema
    with scratch_schema(pg_url, "bench") as url:
        yield url


# --- the server ----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(pid: int) -> dict:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0]) / 1024          # MB
    except OSError:
        pass
    return out


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


class Server:
    """`python app.py serve` on a free port, as an operator starts it (gunicorn,
    threaded workers), against an already prepared database."""

    def __init__(self, database_url: str, workers: int | None = None, label: str = "server",
                 root: Path = ROOT, env: dict | None = None, command: list[str] | None = None) -> None:
        self.database_url, self.workers, self.label, self.root = database_url, workers, label, Path(root)
        self.env = env or {}
        # another command line, for a bench's own WSGI app (bench_floor.py): "{port}" in it
        # becomes the port; its app must answer the readiness check below (any path)
        self.command = command or [sys.executable, str(self.root / "app.py"), "serve"]
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)     # a label may hold "/"
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)

    def __enter__(self) -> "Server":
        env = {**os.environ, "DATABASE_URL": self.database_url, "HOST": "127.0.0.1", "PORT": str(self.port),
               "PYTHONUNBUFFERED": "1"}
        env.pop("WEB_CONCURRENCY", None)
        env.update(self.env)
        if self.workers:
            env["WEB_CONCURRENCY"] = str(self.workers)
        command = [arg.replace("{port}", str(self.port)) for arg in self.command]
        self.proc = subprocess.Popen(command, cwd=self.root, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited: {Path(self.log.name).read_text()[-2000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/engine-rest/openapi.json")
                conn.getresponse().read()
                conn.close()
                if len(_children(self.proc.pid)) >= (self.workers or 1):
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.label} did not come up: {Path(self.log.name).read_text()[-2000:]}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        os.unlink(self.log.name)

    def memory(self) -> dict:
        """Peak (VmHWM) and current RSS in MB: the largest worker, and all processes together."""
        workers = [_status(p) for p in _children(self.proc.pid)]
        master = _status(self.proc.pid)
        return {"worker_peak": max((w.get("VmHWM", 0) for w in workers), default=0),
                "total_peak": master.get("VmHWM", 0) + sum(w.get("VmHWM", 0) for w in workers),
                "workers": len(workers)}

    def cpu_seconds(self) -> float:
        """User + system CPU time of the worker processes so far (the master only watches)."""
        return sum(cpu[1] for cpu in map(_process_cpu, _children(self.proc.pid)) if cpu is not None)

    def context_switches(self) -> int:
        """Voluntary and involuntary context switches of every thread of the worker processes so far."""
        total = 0
        for pid in _children(self.proc.pid):
            for status in Path(f"/proc/{pid}/task").glob("*/status"):
                try:
                    total += sum(int(line.split()[1]) for line in status.read_text().splitlines()
                                 if "ctxt_switches:" in line)
                except (OSError, ValueError):
                    pass
        return total

    def client(self, user: str, password: str) -> "Http":
        return Http(self.port, user, password)


class Http:
    """One keep-alive connection with HTTP Basic (a department officer's client)."""

    def __init__(self, port: int, user: str, password: str) -> None:
        self.port = port
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method: str, path: str, body=None):
        data = json.dumps(body).encode() if body is not None else None
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=data, headers=self.headers)
                response = self.conn.getresponse()
                raw = response.read()
                break
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()                         # the server closed an idle keep-alive
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt == 2:
                    raise
        if response.status >= 400:
            raise RuntimeError(f"{method} {path} -> {response.status}: {raw[:500]!r}")
        return json.loads(raw) if raw else None

    def close(self) -> None:
        self.conn.close()


def run_threads(threads: int, work: list, do) -> Round:
    """`do(worker_state, item)` over `work` from `threads` threads; a Round of it."""
    lock, cursor, latencies, errors = threading.Lock(), [0], [], []

    def worker(state):
        while True:
            with lock:
                if cursor[0] >= len(work) or errors:
                    return
                item = work[cursor[0]]
                cursor[0] += 1
            t0 = time.perf_counter()
            try:
                do(state, item)
            except Exception as err:  # noqa: BLE001 - reported after the round
                errors.append(err)
                return
            latencies.append(time.perf_counter() - t0)

    states = [{} for _ in range(threads)]
    pool = [threading.Thread(target=worker, args=(s,)) for s in states]
    t0 = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - t0
    for state in states:
        for client in state.values():
            client.close()
    if errors:
        raise errors[0]
    return Round(len(latencies), elapsed, latencies)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(next(l for l in Path("/proc/meminfo").read_text().splitlines()
                          if l.startswith("MemTotal")).split()[1])
        ram = f"{mem_kb / 1024 / 1024:.0f} GB RAM"
    except (OSError, StopIteration, ValueError):
        ram = "RAM unknown"
    return f"{os.cpu_count()} cores ({cpu}), {ram}, Python {sys.version.split()[0]}"


# --- the command line of a bench with tables --------------------------------------------

def main(doc: str, run, pg: str | None = "optional") -> None:
    """`python bench/bench_<name>.py [--quick] [--pg URL] [--no-pg]`: print `run(quick,
    pg_url)`'s tables.  `pg`: "optional" (skipped when unreachable or with --no-pg),
    "required" (exit when unreachable) or None (no PostgreSQL at all)."""
    import argparse
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    if pg:
        parser.add_argument("--pg", default=DEFAULT_PG)
    if pg == "optional":
        parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    url = None
    if pg == "required":
        problem = pg_reachable(args.pg)
        if problem:
            sys.exit(f"PostgreSQL unreachable at {args.pg}: {problem}")
        url = args.pg
    elif pg == "optional":
        url = None if args.no_pg or pg_reachable(args.pg) else args.pg
    for table in run(args.quick, url):
        print(table.render(), flush=True)


# --- the printed table ------------------------------------------------------------------

@dataclass
class Table:
    """A section of the report, printed as a Markdown table (pasted into the README)."""
    title: str
    columns: list
    rows: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)       # named figures for the goals summary

    def render(self) -> str:
        cells = [[str(c) for c in self.columns]] + [[_cell(v) for v in row] for row in self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        line = lambda r: "| " + " | ".join(  # noqa: E731
            (c.ljust(w) if i == 0 else c.rjust(w)) for i, (c, w) in enumerate(zip(r, widths))) + " |"
        out = [f"### {self.title}", "", line(cells[0]),
               "|" + "|".join(("-" * (w + 2)) if i == 0 else ("-" * (w + 1) + ":") for i, w in enumerate(widths)) + "|"]
        out += [line(r) for r in cells[1:]]
        out += [""] + [f"{n}" for n in self.notes] + ([""] if self.notes else [])
        return "\n".join(out)


def _cell(value) -> str:
    if isinstance(value, float):
        if value != value:
            return "–"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)
