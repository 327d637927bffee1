"""`python app.py worker` and `python app.py sandbox`."""
from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import threading
from pathlib import Path

from . import config as connector_config

log = logging.getLogger("approvals.workers")


def add_commands(sub: argparse._SubParsersAction) -> None:
    worker = sub.add_parser("worker", help="run the external-task workers with the department connectors")
    worker.add_argument("--config", type=Path, help="connector file (default: APPROVALS_CONNECTORS "
                                                     "or workers/connectors.toml)")
    worker.add_argument("--topics", help="comma-separated topics to serve (default: all configured)")
    worker.add_argument("--engine-url", help="engine REST base (default: the file's [engine] base_url)")
    worker.add_argument("--max-tasks", type=int, help="tasks held at once")

    sandbox = sub.add_parser("sandbox", help="serve the department-system sandbox")
    sandbox.add_argument("--config", type=Path, help="connector file whose [sandbox] section is read")
    sandbox.add_argument("--host")
    sandbox.add_argument("--port", type=int)
    sandbox.add_argument("--latency-ms", help="added latency per request, e.g. 150 or 50-300")
    sandbox.add_argument("--failure-rate", type=float, help="share of requests answered 503 (0..1)")
    sandbox.add_argument("--callback-delay", type=float, help="seconds before the bank calls back")
    sandbox.add_argument("--seed", type=int, help="random seed (repeatable latency and failures)")


def main(args: argparse.Namespace) -> int:
    try:
        config = connector_config.load(args.config)
    except connector_config.ConfigError as err:
        log.error("%s", err)
        return 2
    return run_worker(config, args) if args.command == "worker" else run_sandbox(config, args)


def run_worker(config: connector_config.ConnectorsConfig, args: argparse.Namespace) -> int:
    from .connectors import build_worker
    if args.engine_url:
        config = dataclasses.replace(config, engine=dataclasses.replace(config.engine,
                                                                        base_url=args.engine_url.rstrip("/")))
    if config.engine.auth.type == "none":
        log.warning("no engine credentials: set WORKER_TOKEN, WORKER_USER/WORKER_PASSWORD or ADMIN_PASSWORD")
    topics = [t.strip() for t in args.topics.split(",") if t.strip()] if args.topics else None
    overrides = {"max_tasks": args.max_tasks} if args.max_tasks else {}
    try:
        worker = build_worker(config, topics, **overrides)
    except ValueError as err:
        log.error("%s", err)
        return 2
    worker.run()            # returns after SIGTERM/SIGINT and the graceful shutdown
    return 0


def run_sandbox(config: connector_config.ConnectorsConfig, args: argparse.Namespace) -> int:
    from werkzeug.serving import make_server

    from .sandbox import create_sandbox
    settings = config.sandbox
    changes = {"host": args.host, "port": args.port,
               "latency_ms": connector_config.parse_latency(args.latency_ms) if args.latency_ms else None,
               "failure_rate": connector_config.parse_rate(args.failure_rate)
               if args.failure_rate is not None else None,
               "callback_delay_s": args.callback_delay}
    settings = dataclasses.replace(settings, **{k: v for k, v in changes.items() if v is not None})
    if settings.engine_auth.type == "none":
        log.warning("the bank's callback has no engine credentials (see [sandbox] engine_auth)")
    server = make_server(settings.host, settings.port, create_sandbox(settings, args.seed), threaded=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    stop = threading.Event()

    def shutdown(*_):
        if not stop.is_set():
            stop.set()
            threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    low, high = settings.latency_ms
    print(f"department-system sandbox on http://{settings.host}:{server.server_port} "
          f"(latency {low}-{high} ms, failure rate {settings.failure_rate:g}, "
          f"bank callback after {settings.callback_delay_s:g} s to {settings.engine_url})", flush=True)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    return 0
