"""Micro-live benchmark: N concurrent SSE readers on one or more serve processes, 100 entries.

    .venv/bin/python bench/live.py                 # N = 10 (baseline), 1,000 and 5,000
    GOVHUB_BENCH_LIVE_N=10,1000 .venv/bin/python bench/live.py
    GOVHUB_BENCH_LIVE_PROCS=2 .venv/bin/python bench/live.py   # readers split over 2 processes
    # issue 19: 10,000 readers on `serve --workers 2` sharing entries through Redis, beside the
    # one-process 5,000 baseline and the embedded default (workers share through the database)
    GOVHUB_BENCH_LIVE_REDIS=redis://127.0.0.1:6379/4 \
    GOVHUB_BENCH_LIVE_N=5000,10000@2:redis,10000@2 .venv/bin/python bench/live.py

A run is ``N[@W][:redis]``: N readers, W serve processes (`serve --workers W`, default 1), and
with ``:redis`` GOVHUB_REDIS_URL=GOVHUB_BENCH_LIVE_REDIS (pub/sub between the processes; without
it the processes share entries through their database poll, GOVHUB_LIVE_POLL_SECONDS).

For each run: a fresh `python -m hub serve` (SQLite, no access log, GOVHUB_LIVE_TRACE=1) on
loopback; N readers open `/live/{slug}/events` (HTTP/1.0 over raw asyncio
protocols, uvloop when installed, in GOVHUB_BENCH_LIVE_PROCS generator processes); 100 entries are
posted through the API at GOVHUB_BENCH_LIVE_RATE per second (2); every reader must receive all
100. Printed: readers held, errors (connections refused or failed, readers that missed an
entry), submit-to-receive latency p50/p99 over every (reader, entry) pair, server memory per reader
(VmRSS after the readers connected minus before, summed over the serve processes, divided by N),
each serve process's RSS and the readers it holds (its open descriptors after minus before), and a
breakdown per entry: the POST's round trip, the server's own trace (publish -> every reader's queue
filled -> the last reader's send returned), first and last receipt by the generator, and the CPU
seconds the server and the generator used while the entries were posted. The N = 10 run is the
baseline measured in the same run. Targets: 5,000 readers in one process, p99 <= 500 ms, <= 40 KB
per reader. Bounded: each phase has a deadline and the script exits non-zero when one is missed.

Receive times are taken as soon as bytes arrive (``data_received``); ``time.perf_counter`` is
CLOCK_MONOTONIC on Linux, so times from the generator processes compare with the poster's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ENTRIES = 100
RATE = float(os.environ.get("GOVHUB_BENCH_LIVE_RATE", "2"))  # entries per second
PROCS = int(os.environ.get("GOVHUB_BENCH_LIVE_PROCS", "1"))  # load generator processes
ID_RE = re.compile(rb"id: (\d+)\n")
TRACE_RE = re.compile(
    r"live trace: session \d+ event (\d+) dispatch ([\d.]+) ms queued ([\d.]+) ms sent ([\d.]+) ms"
)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def open_fds(pid: int) -> int:
    """Open sockets of ``pid`` (after minus before: the readers it holds)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    return count


def serve_pids(pid: int, workers: int) -> list[int]:
    """The processes holding readers: the server itself, or its W uvicorn worker children."""
    if workers <= 1:
        return [pid]
    found = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            found.append(int(child))
    return sorted(found)


def raise_fd_limit() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# -- the load generator (a separate process: `live.py --readers PORT PATH COUNT OUT`) -------------


class SSEProtocol(asyncio.Protocol):
    """One reader: no task, no stream buffer; ids are stamped when their bytes arrive."""

    def __init__(
        self, request: bytes, connected: asyncio.Future[None], done: asyncio.Event
    ) -> None:
        self.request = request
        self.connected = connected
        self.done = done
        self.seen: dict[int, float] = {}
        self.head = b""
        self.tail = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if not self.connected.done():
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            status = self.head.split(b"\r\n", 1)[0]
            if b" 200 " not in status:
                self.connected.set_exception(RuntimeError(status.decode(errors="replace")))
                return
            self.connected.set_result(None)
            data, self.head = self.head[end + 4 :], b""
        chunk = self.tail + data
        for match in ID_RE.finditer(chunk):
            self.seen.setdefault(int(match.group(1)), now)
        self.tail = chunk[-32:]
        if len(self.seen) >= ENTRIES and self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.connected.done():
            self.connected.set_exception(exc or RuntimeError("closed before the response"))
        self.done.set()


async def generate(port: int, path: str, count: int, out: Path, batch: int = 250) -> None:
    loop = asyncio.get_running_loop()
    request = f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode()
    readers: list[SSEProtocol] = []
    dones: list[asyncio.Event] = []
    errors: list[str] = []  # readers that could not connect (refused, reset, not 200)

    async def connect(connected: asyncio.Future[None], done: asyncio.Event) -> SSEProtocol:
        _transport, protocol = await loop.create_connection(
            lambda: SSEProtocol(request, connected, done), "127.0.0.1", port
        )
        await asyncio.wait_for(connected, timeout=60)
        return protocol

    for start in range(0, count, batch):
        pending = []
        for _ in range(start, min(count, start + batch)):
            done = asyncio.Event()
            pending.append((done, connect(loop.create_future(), done)))
        outcomes = await asyncio.gather(*(c for _d, c in pending), return_exceptions=True)
        for (done, _c), outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, SSEProtocol):
                readers.append(outcome)
                dones.append(done)
            else:
                errors.append(repr(outcome)[:120])
    print("ready", flush=True)
    cpu = own_cpu_seconds()
    waits = [asyncio.ensure_future(d.wait()) for d in dones]
    if waits:  # a reader that never got all 100 is counted, not waited for forever
        _finished, late = await asyncio.wait(waits, timeout=ENTRIES / RATE + 120)
        for task in late:
            task.cancel()
    cpu = own_cpu_seconds() - cpu
    out.write_bytes(pickle.dumps({"seen": [r.seen for r in readers], "cpu": cpu, "errors": errors}))
    print("done", flush=True)


def generator_main(argv: list[str]) -> int:
    port, path, count, out = int(argv[0]), argv[1], int(argv[2]), Path(argv[3])
    raise_fd_limit()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(generate(port, path, count, out))
    return 0


# -- the run -------------------------------------------------------------------------------------


def prepare(workdir: Path) -> tuple[dict[str, str], dict[str, str]]:
    url = f"sqlite:///{workdir / 'govhub.sqlite3'}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GOVHUB_")},
        "GOVHUB_DATABASE_URL": url,
        "GOVHUB_BROKER_URL": f"sqla+sqlite:///{workdir / 'broker.sqlite3'}",
        "GOVHUB_MEDIA_DIR": str(workdir / "media"),
    }
    os.environ.update(env)
    from hub.config import get_settings
    from hub.migrate import upgrade
    from hub.users.models import Role
    from tests.factories import load_guizhou, make_user, token_for

    get_settings.cache_clear()
    upgrade(url)
    load_guizhou(url)
    make_user(url, "bench-editor", Role.editor, "522601")
    return env, token_for("bench-editor", url)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * p) - 1)]


def parse_run(spec: str) -> tuple[int, int, bool]:
    """``N[@W][:redis]`` -> (readers, serve processes, with Redis)."""
    head, _, setup = spec.strip().partition(":")
    n, _, w = head.partition("@")
    if setup not in ("", "redis"):
        raise SystemExit(f"unknown setup {setup!r} in {spec!r} (N[@W][:redis])")
    if setup and not REDIS_URL:
        raise SystemExit(f"{spec}: set GOVHUB_BENCH_LIVE_REDIS=redis://HOST:PORT/DB")
    return int(n), int(w or 1), setup == "redis"


REDIS_URL = os.environ.get("GOVHUB_BENCH_LIVE_REDIS", "")


async def run(
    spec: str, env: dict[str, str], headers: dict[str, str], workdir: Path
) -> dict[str, Any]:
    import httpx

    from connectors.sandbox.server import free_port

    n, workers, with_redis = parse_run(spec)
    port = free_port()
    name = spec.replace("@", "w").replace(":", "-")
    log_path = workdir / f"serve-{name}.log"
    log = log_path.open("wb")
    server_env = {**env, "GOVHUB_LIVE_TRACE": "1"}
    if with_redis:
        server_env["GOVHUB_REDIS_URL"] = REDIS_URL
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "hub", "serve", "--port", str(port), "--no-access-log"),
            *("--workers", str(workers)),
        ],
        cwd=workdir,
        env=server_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    generators: list[asyncio.subprocess.Process] = []
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start")
                await asyncio.sleep(0.1)
            while log_path.read_bytes().count(b"Application startup complete") < workers:
                if time.monotonic() > deadline:
                    raise RuntimeError("not every serve process started")
                await asyncio.sleep(0.1)
            pids = serve_pids(proc.pid, workers)
            if len(pids) != workers:
                raise RuntimeError(f"expected {workers} serve processes, found {pids}")
            live = (
                await client.post(
                    "/api/v1/live-sessions", json={"title": "压测直播"}, headers=headers
                )
            ).json()
            api = f"/api/v1/live-sessions/{live['id']}"
            await client.post(f"{api}/start", headers=headers)
            await client.post(f"{api}/entries", json={"text": "warm-up"}, headers=headers)
            for _ in range(4 * workers):  # warm every process's page and stream path
                await client.get(f"/live/{live['slug']}")
            before = {pid: rss_kb(pid) for pid in pids}
            fds_before = {pid: open_fds(pid) for pid in pids}
            opened = time.perf_counter()
            procs = max(1, min(PROCS, n))
            outs = [workdir / f"readers-{n}-{i}.pickle" for i in range(procs)]
            for i, out in enumerate(outs):
                share = n // procs + (1 if i < n % procs else 0)
                generators.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        __file__,
                        "--readers",
                        str(port),
                        f"/live/{live['slug']}/events",
                        str(share),
                        str(out),
                        stdout=asyncio.subprocess.PIPE,
                    )
                )
            for gen in generators:
                assert gen.stdout is not None
                line = await asyncio.wait_for(gen.stdout.readline(), timeout=30 + n / 50)
                if line.strip() != b"ready":
                    raise RuntimeError(f"a reader process failed to connect: {line!r}")
            open_seconds = time.perf_counter() - opened
            await asyncio.sleep(1.0)  # let the server settle before reading its memory
            after = {pid: rss_kb(pid) for pid in pids}
            held_by = [open_fds(pid) - fds_before[pid] for pid in pids]
            submitted: dict[int, float] = {}
            round_trips: list[float] = []
            server_cpu = sum(cpu_seconds(pid) for pid in pids)
            posting = time.perf_counter()
            for i in range(ENTRIES):
                sent_at = time.perf_counter()
                response = await client.post(
                    f"{api}/entries", json={"text": f"第{i + 1}条"}, headers=headers
                )
                round_trips.append((time.perf_counter() - sent_at) * 1000)
                seq = response.json()["seq"]
                submitted[seq + 1] = sent_at  # event id = seq + 1 (the start event came first)
                await asyncio.sleep(max(0.0, posting + (i + 1) / RATE - time.perf_counter()))
            for gen in generators:
                assert gen.stdout is not None
                line = await asyncio.wait_for(gen.stdout.readline(), timeout=120)
                if line.strip() != b"done":
                    raise RuntimeError(f"a reader process failed: {line!r}")
            server_cpu = sum(cpu_seconds(pid) for pid in pids) - server_cpu
            posting_seconds = time.perf_counter() - posting
            received: list[dict[int, float]] = []
            generator_cpu = 0.0
            connect_errors: list[str] = []
            for out in outs:
                result = pickle.loads(out.read_bytes())
                received += result["seen"]
                generator_cpu += result["cpu"]
                connect_errors += result["errors"]
    finally:
        for gen in generators:
            if gen.returncode is None:
                gen.kill()
            await gen.wait()
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    latencies = [
        (seen[event_id] - sent) * 1000
        for seen in received
        for event_id, sent in submitted.items()
        if event_id in seen
    ]
    complete = sum(1 for seen in received if all(e in seen for e in submitted))
    firsts, lasts = [], []
    for event_id, sent in submitted.items():
        times = [seen[event_id] for seen in received if event_id in seen]
        firsts.append((min(times) - sent) * 1000)
        lasts.append((max(times) - sent) * 1000)
    traces = [
        (float(m.group(2)), float(m.group(3)), float(m.group(4)))
        for m in TRACE_RE.finditer(log_path.read_text(errors="replace"))
        if int(m.group(1)) in submitted
    ]
    for error in sorted(set(connect_errors))[:5]:
        print(f"  {spec}: reader error {error}", flush=True)
    return {
        "spec": spec,
        "n": n,
        "held": len(received),
        "errors": len(connect_errors) + (len(received) - complete),
        "complete": complete,
        "open_s": open_seconds,
        "p50": statistics.median(latencies),
        "p99": pct(latencies, 0.99),
        "kb_per_reader": sum(after[p] - before[p] for p in pids) / n,
        "rss_mb": "/".join(f"{after[p] / 1024:.0f}" for p in pids),
        "held_by": "/".join(str(h) for h in held_by),
        "post_p50": statistics.median(round_trips),
        "post_max": max(round_trips),
        "queued_p50": statistics.median(t[1] for t in traces) if traces else float("nan"),
        "sent_p50": statistics.median(t[2] for t in traces) if traces else float("nan"),
        "sent_max": max(t[2] for t in traces) if traces else float("nan"),
        "traced": len(traces),
        "first_p50": statistics.median(firsts),
        "last_p50": statistics.median(lasts),
        "last_max": max(lasts),
        "server_cpu": server_cpu,
        "generator_cpu": generator_cpu,
        "posting_s": posting_seconds,
    }


def main() -> int:
    from machine import report

    print(report(redis_url=REDIS_URL), flush=True)
    hard = raise_fd_limit()
    specs = os.environ.get("GOVHUB_BENCH_LIVE_N", "10,1000,5000").split(",")
    for spec in specs:
        parse_run(spec)  # refuse a bad spec before the first run
    with tempfile.TemporaryDirectory(prefix="govhub-live-bench-") as tmp:
        workdir = Path(os.environ.get("GOVHUB_BENCH_LIVE_DIR") or tmp)  # keep logs: give a dir
        workdir.mkdir(parents=True, exist_ok=True)
        env, headers = prepare(workdir)
        print(
            f"fd limit {hard}; {ENTRIES} entries at {RATE:g}/s per run; "
            f"{PROCS} generator process(es); {os.cpu_count()} CPUs; "
            "run = readers[@serve processes][:redis] (no :redis: shared through the database)"
        )
        print(
            f"{'run':>14} {'held':>6} {'errors':>6} {'connect s':>9} {'p50 ms':>8} "
            f"{'p99 ms':>8} {'KB/reader':>10} {'RSS MB':>9} {'readers/proc':>12}"
        )
        ok = True
        rows = []
        for spec in specs:
            r = asyncio.run(run(spec, env, headers, workdir))
            rows.append(r)
            print(
                f"{r['spec']:>14} {r['held']:>6.0f} {r['errors']:>6.0f} {r['open_s']:>9.1f} "
                f"{r['p50']:>8.1f} {r['p99']:>8.1f} {r['kb_per_reader']:>10.1f} "
                f"{r['rss_mb']:>9} {r['held_by']:>12}",
                flush=True,
            )
            ok = ok and r["complete"] == r["n"] and r["errors"] == 0
        print("\nper entry, ms after submit (median / max over the 100 entries):")
        print(
            f"{'run':>14} {'POST rtt':>13} {'srv queued':>10} {'srv last send':>15} "
            f"{'first recv':>10} {'last recv':>15} {'srv CPU':>8} {'gen CPU':>8}"
        )
        for r in rows:
            print(
                f"{r['spec']:>14} {r['post_p50']:>6.1f}/{r['post_max']:<6.1f} "
                f"{r['queued_p50']:>10.1f} {r['sent_p50']:>7.1f}/{r['sent_max']:<7.1f} "
                f"{r['first_p50']:>10.1f} {r['last_p50']:>7.1f}/{r['last_max']:<7.1f} "
                f"{r['server_cpu'] / r['posting_s']:>7.0%} {r['generator_cpu'] / r['posting_s']:>7.0%}"
            )
        print(
            "(srv: GOVHUB_LIVE_TRACE of every serve process, after publish — after the dispatch "
            "in a process that learned of the entry from Redis or its poll; CPU: share of one "
            "core while posting, serve processes summed)"
        )
        return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--readers"]:
        sys.exit(generator_main(sys.argv[2:]))
    sys.exit(main())
