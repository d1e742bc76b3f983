"""What kind of machine the benchmarks ran on: a fingerprint to print beside their figures.

    .venv/bin/python bench/machine.py
    GOVHUB_BENCH_PG=postgresql+psycopg://postgres@127.0.0.1:5432/test \
    GOVHUB_BENCH_REDIS=redis://127.0.0.1:6379/12 .venv/bin/python bench/machine.py

The shared VMs the benchmarks run on differ from one session to the next, and not evenly: on
2026-11-30 a pure-Python loop ran as fast as the day before while the fan-out managed half its
rate and the live page's p99 was four times as long. What the hub does most is not arithmetic
but system calls and round trips over loopback (to PostgreSQL, Redis, the sandboxes, every
reader's socket), so this prints one figure for each kind of work, median of 5 rounds:

- **python loop**: 2 million additions in a ``for`` loop, CPU time (the interpreter alone),
- **syscall**: ``os.getppid()`` (a system call that does nothing),
- **loopback TCP**: 100 bytes sent and received on a loopback TCP connection, one thread,
- **thread handoff**: a ``queue.Queue`` item passed to another thread and back (the GIL and
  futex work a worker's 16 threads do at every I/O),
- **PostgreSQL** ``SELECT 1`` and **Redis** ``PING`` round trips, when their URLs are given.

Compare two machines by these before comparing their benchmark figures; none of them is a target.
"""

from __future__ import annotations

import os
import platform
import queue
import socket
import statistics
import threading
import time
from collections.abc import Callable

ROUNDS = 5


def per_call_us(call: Callable[[], object], n: int, *, cpu: bool = False) -> float:
    """Median over ROUNDS of the time one call takes, in microseconds."""
    clock = time.thread_time if cpu else time.perf_counter
    rounds = []
    for _ in range(ROUNDS):
        started = clock()
        for _ in range(n):
            call()
        rounds.append((clock() - started) / n * 1e6)
    return statistics.median(rounds)


def python_loop() -> None:
    total = 0
    for i in range(2_000_000):
        total += i


def loopback_tcp() -> float:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    client = socket.create_connection(server.getsockname())
    peer, _ = server.accept()
    for sock in (client, peer):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    payload = b"x" * 100

    def round_trip() -> None:
        client.sendall(payload)
        peer.recv(100)

    try:
        return per_call_us(round_trip, 5_000)
    finally:
        for sock in (client, peer, server):
            sock.close()


def thread_handoff() -> float:
    there: queue.Queue[int] = queue.Queue()
    back: queue.Queue[int] = queue.Queue()

    def echo() -> None:
        while (item := there.get()) >= 0:
            back.put(item)

    helper = threading.Thread(target=echo, daemon=True)
    helper.start()

    def hand_off() -> None:
        there.put(1)
        back.get()

    try:
        return per_call_us(hand_off, 2_000)
    finally:
        there.put(-1)
        helper.join()


def postgres(url: str) -> float:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        cursor = raw.cursor()
        return per_call_us(lambda: cursor.execute("SELECT 1").fetchone(), 1_000)


def redis_ping(url: str) -> float:
    import redis

    client = redis.Redis.from_url(url)
    client.ping()
    return per_call_us(client.ping, 1_000)


def fingerprint(pg: str = "", redis_url: str = "") -> list[tuple[str, str]]:
    rows = [
        ("machine", f"{platform.machine()}, {os.cpu_count()} CPUs, Linux {platform.release()}"),
        ("cpu", _cpu_model()),
        ("python", platform.python_version()),
        ("python loop (2M additions)", f"{per_call_us(python_loop, 1, cpu=True) / 1000:.0f} ms"),
        ("syscall (getppid)", f"{per_call_us(os.getppid, 50_000):.2f} us"),
        ("loopback TCP send+recv", f"{loopback_tcp():.1f} us"),
        ("thread handoff and back", f"{thread_handoff():.1f} us"),
    ]
    if pg:
        rows.append(("PostgreSQL SELECT 1", f"{postgres(pg):.0f} us"))
    if redis_url:
        rows.append(("Redis PING", f"{redis_ping(redis_url):.0f} us"))
    return rows


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def report(pg: str = "", redis_url: str = "") -> str:
    """The fingerprint as printed lines (the benchmarks print it before their figures)."""
    lines = [f"machine fingerprint (median of {ROUNDS} rounds; compare machines, not targets):"]
    lines += [f"  {name:<28} {value}" for name, value in fingerprint(pg, redis_url)]
    return "\n".join(lines)


def main() -> None:
    print(
        report(os.environ.get("GOVHUB_BENCH_PG", ""), os.environ.get("GOVHUB_BENCH_REDIS", "")),
        flush=True,
    )


if __name__ == "__main__":
    main()
