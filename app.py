"""The approval-orchestration server: Flask app factory and command line.

    python app.py run        migrate, create the admin, deploy bpmn/ and forms/, serve (what `make run` does)
    python app.py serve      serve the API with gunicorn (HOST, PORT, DATABASE_URL)
    python app.py migrate    bring the database schema up to date
    python app.py deploy     deploy bpmn/*.bpmn and forms/*.form (or the given files)
    python app.py audit verify   recompute every audit hash chain; exit 1 naming the case and event if any was altered
    python app.py unlock USER    lift the lock wrong passwords put on an account (e.g. the admin's)
    python app.py worker     run the external-task workers with the department connectors (workers/connectors.toml)
    python app.py sandbox    serve the department-system sandbox (http://127.0.0.1:8081)
    python app.py demo       one narrated case of each reform process against the running server (test clock)

`run` also starts the sandbox and the workers as child processes (APPROVALS_NO_SANDBOX=1,
APPROVALS_NO_WORKERS=1 leave them out) and stops them when the server stops.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from flask import Flask

import api
from engine import audit, deployments, identity, multi_instances, signals
from engine.config import Settings
from engine.context import Engine
from engine.db import migrate
from engine.errors import NotFound
from engine.scheduler import TimerScheduler
from workers import cli as worker_cli, companions as worker_companions, demo as demo_cli

log = logging.getLogger("approvals")


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Flask:
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_content_length
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    engine = engine or Engine(settings)
    app.extensions["approvals_engine"] = engine
    api.register(app, test_clock=settings.test_clock)
    # cases an earlier version left standing at a multi-instance go on (one query when there are none)
    multi_instances.resume_stuck(engine)
    if settings.timers_enabled:
        scheduler = TimerScheduler(engine)
        scheduler.start()
        app.extensions["approvals_scheduler"] = scheduler
    return app


# --- setup steps ---------------------------------------------------------------------

def once_more_on_a_race(command):
    """`command()`, and once more if another server starting at the same moment on the same
    new database wrote the same rows first (the administrator, the library): then they exist."""
    from sqlalchemy.exc import IntegrityError

    from engine.errors import Conflict
    try:
        return command()
    except (IntegrityError, Conflict):
        return command()


def ensure_admin(engine: Engine) -> None:
    def ensure():
        with engine.uow() as uow:
            made = identity.ensure_admin(uow.session, engine.settings.admin_password)
            uow.commit()
        return made
    generated = once_more_on_a_race(ensure)
    if generated:
        print(f"\n  Administrator account created: user 'admin', password '{generated}'\n"
              "  (shown once; set ADMIN_PASSWORD to choose your own)\n", flush=True)


def unlock_user(engine: Engine, user_id: str) -> int:
    """The operator's way back in when the administrator account itself is locked."""
    try:
        with engine.uow() as uow:
            identity.unlock(uow.session, user_id, actor=identity.SYSTEM.user_id, by="app.py unlock")
            uow.commit()
    except NotFound as err:
        print(err.message, file=sys.stderr)
        return 1
    print(f"user '{user_id}' unlocked", flush=True)
    return 0


def library_files(settings: Settings) -> list[Path]:
    return (sorted(settings.bpmn_dir.glob("*.bpmn")) + sorted(settings.bpmn_dir.glob("*.json"))
            + sorted(settings.forms_dir.glob("*.form")))


def deploy_files(engine: Engine, files: list[Path], name: str = "approvals-library") -> None:
    uploads = [deployments.Upload(p.name, p.read_bytes()) for p in files]
    if not uploads:
        print("nothing to deploy (bpmn/ and forms/ are empty)", flush=True)
        return
    with engine.uow() as uow:
        result = deployments.deploy(uow, uploads, identity.SYSTEM, name=name, source="approvals deploy",
                                    changed_only=True, scripts_enabled=engine.settings.script_tasks_enabled)
        uow.commit()
    if result.created:
        keys = ", ".join(f"{d.key} v{d.version}" for d in result.process_definitions) or "forms only"
        print(f"deployed {len(uploads)} file(s): {keys}", flush=True)
    else:
        print("library unchanged; nothing deployed", flush=True)


def migrate_database(settings: Settings) -> None:
    """Migrate; crossing migration 0014, mirror the signal catches the running cases
    waited at (engine/signals.py `mirror_waiting_catches`)."""
    before = migrate(settings.database_url)
    if before is None or before >= signals.SUBSCRIBED_FROM:
        return
    engine = Engine(settings)
    try:
        added = signals.mirror_waiting_catches(engine)
    finally:
        engine.close()
    print(f"mirrored {added} waiting signal catch(es) of running cases for POST /signal", flush=True)


def audit_verify(settings: Settings, verbose: bool = False) -> int:
    """Recompute every chain read-only; exit status 1 if any row was edited, inserted or deleted."""
    from sqlalchemy.orm import Session

    from engine.db import check_migrated, make_engine
    db = make_engine(settings.database_url)
    try:
        check_migrated(db)
        with Session(db) as session:
            reports = audit.verify_all(session)
    finally:
        db.dispose()
    broken = [r for r in reports if not r.ok]
    for report in (reports if verbose else broken):
        print(report, file=sys.stderr if not report.ok else sys.stdout, flush=True)
    events = sum(r.events for r in reports)
    if broken:
        print(f"audit trail TAMPERED: {len(broken)} of {len(reports)} chain(s) fail verification", file=sys.stderr)
        return 1
    print(f"audit trail intact: {len(reports)} chain(s), {events} event(s)")
    return 0


# --- serving -------------------------------------------------------------------------

def server(settings: Settings, when_ready=None):
    """The gunicorn application: its configuration, and what each worker loads.
    `when_ready(arbiter)` runs in the master once the port is bound, before the workers fork."""
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        # Requests that run at once in a worker (api/serving.py): on SQLite one, as the
        # database work is this process's CPU too; on PostgreSQL two, so that one request's
        # Python runs while the other's waits for the database.
        request_runners = int(os.environ.get("APPROVALS_RUNNERS") or (1 if settings.is_sqlite else 2))

        def load_config(self):
            workers = int(os.environ.get("WEB_CONCURRENCY") or (1 if settings.is_sqlite else 2))
            for key, value in {"bind": f"{settings.host}:{settings.port}", "workers": workers,
                               "worker_class": os.environ.get("APPROVALS_WORKER_CLASS", "api.serving.Worker"),
                               "threads": int(os.environ.get("APPROVALS_THREADS", 32)),
                               "timeout": 120, "graceful_timeout": 10, "keepalive": 5,
                               "sendfile": False,       # responses go through api/serving.py's guarded socket
                               # gunicorn's gunicornc socket is one path for every server of a user
                               # ($HOME/.gunicorn/gunicorn.ctl): a server stopping deleted another's,
                               # and closing it first made a stop seconds longer
                               "control_socket_disable": True,
                               # the longest request line gunicorn reads (4094 by default): a task list
                               # of a hundred cases, processInstanceIdIn=…, is 3.7 kB of ids
                               "limit_request_line": 8190,
                               "loglevel": "warning"}.items():
                self.cfg.set(key, value)
            if when_ready is not None:
                self.cfg.set("when_ready", when_ready)

        def load(self):                          # in each worker, after the fork
            app = create_app(settings)
            tune_gc()
            return app

    return Server()


def serve(settings: Settings, when_ready=None) -> None:
    print(f"serving http://{settings.host}:{settings.port}/engine-rest "
          f"(API docs: http://{settings.host}:{settings.port}/engine-rest/docs)", flush=True)
    fewer_malloc_arenas()
    server(settings, when_ready).run()


@contextmanager
def engine_for_a_moment(settings: Settings):
    """An engine opened and closed again, for the master of `run` (the workers it forks must
    not inherit its connections)."""
    engine = Engine(settings, check_schema=False)
    try:
        yield engine
    finally:
        engine.close()


def tune_gc() -> None:
    """Python's cyclic garbage collector, for a server that keeps live workflows cached
    and restores the others from their state.  With its default thresholds (700, 10, 10)
    full collections (75-85 ms each) went through every object of the process: a case
    with 500 tasks restored for each command took 36 ms on average instead of 18 ms
    (bench/bench_flatness.py, the means), and the collector was ~10 % of a
    five-department review's commands in the service layer (bench/bench_overhead.py).
    What exists once the worker has started (modules, the app, parsed specs) is frozen
    out of the collections, and the young generation is collected every 10,000
    allocations instead of 700.  APPROVALS_GC_THRESHOLD sets the three thresholds; "off"
    leaves Python's defaults and freezes nothing."""
    import gc
    thresholds = gc_thresholds()
    if thresholds is None:
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)


_GC_DEFAULT = "10000,10,10"
_C_INT_MAX = 2**31 - 1


def gc_thresholds() -> tuple[int, ...] | None:
    """APPROVALS_GC_THRESHOLD as thresholds (None: "off"); a wrong value stops the server
    with a message that says what is wrong (main() checks it before anything starts)."""
    setting = os.environ.get("APPROVALS_GC_THRESHOLD", _GC_DEFAULT).strip()
    if setting.lower() == "off":
        return None
    try:
        thresholds = tuple(int(part) for part in setting.split(","))
    except ValueError:
        thresholds = ()
    if (not 1 <= len(thresholds) <= 3 or thresholds[0] < 1
            or any(not 0 <= t <= _C_INT_MAX for t in thresholds)):       # gc takes C ints
        raise SystemExit(f"APPROVALS_GC_THRESHOLD={setting!r}: expected up to three whole numbers such as "
                         f"'{_GC_DEFAULT}' (the first at least 1, none above {_C_INT_MAX}), or 'off'")
    return thresholds


def fewer_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each request thread a malloc arena of its own (up to 8 per core); with
    32 threads that take turns under the GIL they only fragment: a worker held ~280 MB
    instead of ~145 MB after the same load (bench/bench_http.py).  Set in the master, so
    the forked workers inherit it; MALLOC_ARENA_MAX, if the operator set it, wins."""
    if "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return
    import ctypes
    import ctypes.util
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt(-8, arenas)   # -8: M_ARENA_MAX
    except (OSError, AttributeError):           # not glibc (e.g. musl): nothing to tune
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="migrate, create admin, deploy the library, serve")
    sub.add_parser("serve", help="serve the API")
    sub.add_parser("migrate", help="migrate the database")
    deploy = sub.add_parser("deploy", help="deploy BPMN and form files")
    deploy.add_argument("files", nargs="*", type=Path)
    deploy.add_argument("--name", default="approvals-library")
    audit_cmd = sub.add_parser("audit", help="check the tamper-evident audit trail")
    audit_cmd.add_argument("action", choices=["verify"])
    audit_cmd.add_argument("-v", "--verbose", action="store_true", help="list every chain, not only broken ones")
    unlock_cmd = sub.add_parser("unlock", help="lift the lock wrong passwords put on an account")
    unlock_cmd.add_argument("user")
    worker_cli.add_commands(sub)
    demo_cli.add_command(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # SpiffWorkflow logs every task state change at INFO (~20 lines per completion): its
    # trace, not the server's log; the audit trail records what happened to a case.
    logging.getLogger("spiff").setLevel(logging.WARNING)
    # APScheduler logs each wake of the timer scheduler twice at INFO (every worker, every
    # 30 s when idle: ~11,500 lines a day); the timers' own log lines say what fired
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)      # its plugins, at every import
    if args.command in ("worker", "sandbox"):
        return worker_cli.main(args)
    if args.command == "demo":
        return demo_cli.main(args)
    settings = Settings.from_env()
    try:
        return _database_command(args, settings)
    except DatabaseProblem as err:
        print(f"app.py {args.command}: {err}", file=sys.stderr, flush=True)
        return 2


class DatabaseProblem(Exception):
    """What stops a command on the database, said in one line instead of a traceback."""


def _database_command(args, settings: Settings) -> int:
    from alembic.util.exc import CommandError
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from engine.db import NotMigrated, postgresql_problem
    try:
        shown = make_url(settings.database_url).render_as_string(hide_password=True)
    except ArgumentError as err:
        raise DatabaseProblem(f"DATABASE_URL {settings.database_url!r} is not a database URL ({err}); "
                              "e.g. postgresql+psycopg://user:pw@db:5432/approvals") from None
    if not settings.is_sqlite:
        if not settings.database_url.startswith("postgresql"):
            raise DatabaseProblem(f"DATABASE_URL {shown} names neither SQLite nor PostgreSQL, "
                                  "the two stores this server runs on")
        problem = postgresql_problem(settings.database_url)
        if problem is not None:
            raise DatabaseProblem(f"cannot reach the database at {shown}: {problem}")
    try:
        return _command(args, settings)
    except NotMigrated as err:
        raise DatabaseProblem(str(err)) from None
    except CommandError as err:        # alembic: a revision this code does not know, ...
        raise DatabaseProblem(f"cannot migrate the database at {shown}: {err} (was it migrated by a newer "
                              "version of this server? run that version, or restore a backup)") from None


def _command(args, settings: Settings) -> int:
    if args.command == "audit":
        return audit_verify(settings, args.verbose)
    companions = None
    if args.command in ("serve", "run"):
        gc_thresholds()                         # a wrong value stops here, before anything starts

    if args.command in ("migrate", "run"):
        migrate_database(settings)
    if args.command == "migrate":
        return 0
    engine = Engine(settings)
    try:
        if args.command == "deploy":
            deploy_files(engine, args.files or library_files(settings), args.name)
            return 0
        if args.command == "unlock":
            return unlock_user(engine, args.user)
        if args.command == "run":
            ensure_admin(engine)
            once_more_on_a_race(lambda: deploy_files(engine, library_files(settings)))
            companions = worker_companions.Companions(lambda: engine_for_a_moment(settings))
    finally:
        engine.close()
    try:
        # the sandbox and workers (and their token) only once the port is ours: a second
        # `run` on a port in use leaves everything alone
        serve(settings, None if companions is None else
              lambda _: worker_companions.start(companions, settings.host, settings.port))
    finally:
        if companions is not None:
            companions.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
