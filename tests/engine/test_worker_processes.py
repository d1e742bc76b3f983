"""`govhub worker --processes N`: N supervised Celery workers, each restarted when it dies."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import Session, select

from hub.db import engine_for
from hub.system import Worker
from tests.engine.conftest import Process, wait_for

pytestmark = pytest.mark.integration


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(p) for p in text)
    return found


def workers(pid: int) -> set[int]:
    """Children of the supervisor that are Celery workers (``--no-supervise``)."""
    out: set[int] = set()
    for child in children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            continue
        if b"--no-supervise" in cmdline:
            out.add(child)
    return out


def _count(found: set[int], n: int) -> set[int] | None:
    """``found`` when it holds ``n`` processes: one look at /proc per check (looking twice raced
    with the killed worker disappearing between the looks)."""
    return found if len(found) == n else None


def name_of(pid: int) -> str:
    """The Celery node name the supervisor gave the worker (its GOVHUB_WORKER_NAME)."""
    for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
        if item.startswith(b"GOVHUB_WORKER_NAME="):
            return item.split(b"=", 1)[1].decode()
    return ""


def test_two_worker_processes_are_each_started_again_when_they_die(
    hub_env: dict[str, str], processes: Callable[..., Process], tmp_path: Path
) -> None:
    supervisor = processes("worker", "--processes", "2", "--concurrency", "2")
    assert supervisor.proc is not None
    pid = supervisor.proc.pid
    first = wait_for(lambda: _count(workers(pid), 2), 60, "two worker processes")
    victim = min(first)
    victim_name = name_of(victim)
    os.kill(victim, signal.SIGKILL)
    again = wait_for(lambda: _count(workers(pid) - {victim}, 2), 60, "the killed worker replaced")
    assert max(first) in again, "the other worker keeps running"
    log = (tmp_path / "worker-0.log").read_text()
    assert "worker 1 exited with -9" in log or "worker 2 exited with -9" in log
    names = {name_of(child) for child in again}
    assert {n.split("@")[0] for n in names} == {"worker1", "worker2"}, "one node name each"

    # each process records itself, with its own heartbeat, before it consumes anything
    def recorded() -> dict[int, str]:
        return {w.pid: w.node for w in worker_rows(hub_env) if w.pid in again}

    wait_for(lambda: set(recorded()) == again, 60, "a row for each worker process")
    assert set(recorded().values()) == names
    log_file = tmp_path / "worker-0.log"

    def restarted_up() -> bool:  # a worker stopped before it is up dies without clean-up
        after_kill = log_file.read_text().partition("exited with -9")[2]
        return f"{victim_name} ready." in after_kill

    wait_for(restarted_up, 60, "the restarted worker up")
    supervisor.proc.send_signal(signal.SIGTERM)
    assert supervisor.proc.wait(30) is not None
    assert all(not Path(f"/proc/{child}").exists() for child in again)
    # stopped cleanly: their rows are gone
    assert not {w.pid for w in worker_rows(hub_env)} & again


def worker_rows(hub_env: dict[str, str]) -> list[Worker]:
    with Session(engine_for(hub_env["GOVHUB_DATABASE_URL"])) as session:
        return list(session.exec(select(Worker)).all())


def test_a_worker_that_exits_cleanly_on_its_own_is_started_again(
    hub_env: dict[str, str], processes: Callable[..., Process], tmp_path: Path
) -> None:
    """Celery 5.7 exits with 0 after an "Unrecoverable error" (seen when Redis restarted while a
    thread acknowledged a task): the supervisor was not told to stop, so that is a failure too.
    Here the child is told to stop behind the supervisor's back (its own warm shutdown, code 0).
    """
    supervisor = processes("worker", "--concurrency", "2")
    assert supervisor.proc is not None
    pid = supervisor.proc.pid
    (first,) = wait_for(lambda: _count(workers(pid), 1), 60, "one worker process")
    log_file = tmp_path / "worker-0.log"
    wait_for(lambda: "ready." in log_file.read_text(), 60, "the worker up")
    os.kill(first, signal.SIGTERM)
    (second,) = wait_for(lambda: _count(workers(pid) - {first}, 1), 60, "the worker started again")
    assert "worker exited with 0; starting it again" in log_file.read_text()
    assert supervisor.proc.poll() is None, "the supervisor keeps running"
    wait_for(lambda: log_file.read_text().count("ready.") >= 2, 60, "the new worker up")
    supervisor.proc.send_signal(signal.SIGTERM)
    assert supervisor.proc.wait(30) == 0
    assert not Path(f"/proc/{second}").exists()
