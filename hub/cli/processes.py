"""The long-running processes: ``govhub serve``, ``worker`` and ``beat``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from hub.cli.common import checked_settings
from hub.config import get_settings

LogLevel = Annotated[
    str,
    typer.Option(
        "--log-level",
        help="debug | info | warning | error (warning and above also hide Celery's banner)",
    ),
]


def _celery_args(log_level: str) -> list[str]:
    """Celery's global flags for ``log_level``: quiet (no banner) from warning up."""
    quiet = log_level.lower() not in {"debug", "info"}
    return ["--quiet"] if quiet else []


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    access_log: Annotated[bool, typer.Option(help="log every request")] = True,
    backlog: Annotated[int, typer.Option(help="pending connections the socket queues")] = 2048,
    gc_freeze: Annotated[
        bool, typer.Option(help="after startup, keep startup objects out of full collections")
    ] = True,
    log_level: LogLevel = "info",
) -> None:
    """Run the web server (API, pages, release hall)."""
    import uvicorn

    from scheduler.app import prepare_broker

    checked_settings()
    prepare_broker(get_settings())
    os.environ["GOVHUB_GC_FREEZE"] = "1" if gc_freeze else "0"  # read by create_app (workers too)
    from hub.logs import serving

    with serving(log_level, access_log=access_log):  # hub/logs.py; the access line: RequestLog
        uvicorn.run(
            "hub.web.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level.lower(),
            log_config=None,
            access_log=False,
            backlog=backlog,
            proxy_headers=False,  # X-Forwarded-For: only from GOVHUB_TRUSTED_PROXIES (client_ip)
        )


def worker(
    concurrency: Annotated[int, typer.Option(help="threads (or processes) per worker")] = 8,
    pool: str = "threads",
    queues: Annotated[
        str,
        typer.Option(
            help="comma-separated queues to consume; every worker pool must cover "
            "govhub.quick (polls, releases, sweeps) and celery (everything else)"
        ),
    ] = "govhub.quick,celery",
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            help="worker processes to run side by side (each with --concurrency threads); "
            "more than one uses more than one CPU core",
        ),
    ] = 1,
    supervise: Annotated[
        bool,
        typer.Option(help="restart the Celery worker when it dies of an unrecoverable error"),
    ] = True,
    log_level: LogLevel = "info",
) -> None:
    """Run a Celery worker (publishing, polling, ingestion).

    Supervised by default: Celery gives up on some broker failures (a Redis restart while a
    thread acknowledges a task); the worker is then started again, and the sweeper hands it
    whatever was in flight. Ctrl+C or SIGTERM stops it for good. ``--processes N`` runs N
    supervised workers, so that publishing is not bound to one core by Python's GIL.
    """
    from scheduler.app import get_celery, prepare_broker

    checked_settings()
    prepare_broker(get_settings())
    if not supervise:
        if processes != 1:
            raise typer.BadParameter("--processes needs supervision (drop --no-supervise)")
        get_celery().worker_main(
            [
                *_celery_args(log_level),
                "worker",
                f"--pool={pool}",
                f"--concurrency={concurrency}",
                f"--queues={queues}",
                f"--loglevel={log_level}",
                "--without-gossip",
                "--without-mingle",
                # worker-heartbeat events feed monitors such as Flower, which the hub does not
                # use (its own heartbeat is a task); on Redis they cost a sixth of the GIL
                "--without-heartbeat",
                *(
                    ["--hostname", os.environ["GOVHUB_WORKER_NAME"]]
                    if os.environ.get("GOVHUB_WORKER_NAME")
                    else []
                ),
            ]
        )
        return
    child_cmd = [
        sys.executable,
        "-m",
        "hub",
        "worker",
        "--no-supervise",
        "--concurrency",
        str(concurrency),
        "--pool",
        pool,
        "--queues",
        queues,
        "--log-level",
        log_level,
    ]
    host = socket.gethostname()
    names = [f"worker{n}@{host}" if processes > 1 else "" for n in range(1, processes + 1)]
    raise typer.Exit(_supervise([child_cmd] * processes, name="worker", names=names))


def _supervise(cmds: list[list[str]], *, name: str, names: list[str] | None = None) -> int:
    """Run every command; start one again whenever it exits, until told to stop.

    ``names`` (one per command, "" for none) reach each child as ``GOVHUB_WORKER_NAME``.
    """
    stopping = False
    children: list[subprocess.Popen[bytes] | None] = [None] * len(cmds)
    names = names or [""] * len(cmds)

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child is not None and child.poll() is None:
                child.send_signal(signum)

    def start(i: int) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        if names[i]:
            env["GOVHUB_WORKER_NAME"] = names[i]
        return subprocess.Popen(cmds[i], env=env)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    started = [time.monotonic()] * len(cmds)
    delays = [1.0] * len(cmds)
    restart_at: list[float | None] = [None] * len(cmds)
    for i in range(len(cmds)):
        children[i] = start(i)
    last_code = 0
    while True:
        now = time.monotonic()
        for i, child in enumerate(children):
            if child is None:
                at = restart_at[i]
                if at is not None and now >= at and not stopping:
                    children[i], started[i], restart_at[i] = start(i), now, None
                continue
            code = child.poll()
            if code is None:
                continue
            last_code = code
            children[i] = None
            if stopping:
                continue
            # Not asked to stop, so any exit is a failure, whatever its code: Celery 5.7 exits 0
            # after an "Unrecoverable error" (a Redis restart while a thread acknowledges a task).
            if now - started[i] > 60:
                delays[i] = 1.0  # it ran for a while: this is a new failure, not a crash loop
            label = name if len(cmds) == 1 else f"{name} {i + 1}"
            typer.secho(
                f"{label} exited with {code}; starting it again in {delays[i]:.0f} s",
                fg="yellow",
                err=True,
            )
            restart_at[i] = now + delays[i]
            delays[i] = min(delays[i] * 2, 30.0)
        if all(c is None for c in children) and (stopping or all(at is None for at in restart_at)):
            return last_code
        time.sleep(0.1)


def beat(
    schedule: Annotated[Path, typer.Option(help="beat's state file")] = Path("var")
    / "celerybeat-schedule",
    log_level: LogLevel = "info",
) -> None:
    """Run Celery beat (scheduled posts, sweeps, ingestion, reminders)."""
    from scheduler.app import get_celery, prepare_broker

    checked_settings()
    prepare_broker(get_settings())
    schedule.parent.mkdir(parents=True, exist_ok=True)
    get_celery().start(
        [*_celery_args(log_level), "beat", f"--schedule={schedule}", f"--loglevel={log_level}"]
    )
