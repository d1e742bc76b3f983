"""Micro-live benchmark: N concurrent SSE readers on ONE server process, 100 entries posted.

    .venv/bin/python bench/live.py                 # N = 10 (baseline), 1,000 and 5,000
    GOVHUB_BENCH_LIVE_N=10,1000 .venv/bin/python bench/live.py

For each N: a fresh `python -m hub serve` (embedded broadcaster, SQLite) on loopback; N readers
open `/live/{slug}/events` (asyncio raw sockets, HTTP/1.0); 100 entries are posted through the
API, 10 per second; every reader must receive all 100. Printed: readers held, submit-to-receive
latency p50/p99 over every (reader, entry) pair, and server memory per reader (VmRSS after the
readers connected minus before, divided by N). The N = 10 run is the baseline measured in the
same run. Targets: 5,000 readers in one process, p99 <= 500 ms, <= 40 KB per reader. Bounded: each
phase has a deadline and the script exits non-zero when one is missed.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from connectors.sandbox.server import free_port  # noqa: E402

ENTRIES = 100
RATE = float(os.environ.get("GOVHUB_BENCH_LIVE_RATE", "2"))  # entries per second
ID_RE = re.compile(rb"id: (\d+)\n")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


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


class Readers:
    def __init__(self, port: int, path: str) -> None:
        self.port = port
        self.path = path
        self.received: list[dict[int, float]] = []
        self.connected = 0
        self.tasks: list[asyncio.Task[None]] = []

    async def one(self, index: int, ready: asyncio.Event) -> None:
        seen: dict[int, float] = {}
        self.received.append(seen)
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(f"GET {self.path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError(head[:200].decode(errors="replace"))
        self.connected += 1
        ready.set()
        tail = b""
        try:
            while len(seen) < ENTRIES:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                now = time.perf_counter()
                data = tail + chunk
                for match in ID_RE.finditer(data):
                    seen.setdefault(int(match.group(1)), now)
                tail = data[-32:]
        finally:
            writer.close()

    async def open(self, count: int, batch: int = 250) -> None:
        for start in range(0, count, batch):
            events = []
            for index in range(start, min(count, start + batch)):
                ready = asyncio.Event()
                events.append(ready.wait())
                self.tasks.append(asyncio.create_task(self.one(index, ready)))
            await asyncio.wait_for(asyncio.gather(*events), timeout=60)


async def run(
    n: int, env: dict[str, str], headers: dict[str, str], workdir: Path
) -> dict[str, float]:
    port = free_port()
    log = (workdir / f"serve-{n}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub", "serve", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
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
            live = (
                await client.post(
                    "/api/v1/live-sessions", json={"title": "压测直播"}, headers=headers
                )
            ).json()
            api = f"/api/v1/live-sessions/{live['id']}"
            await client.post(f"{api}/start", headers=headers)
            await client.post(f"{api}/entries", json={"text": "warm-up"}, headers=headers)
            await client.get(f"/live/{live['slug']}")
            before = rss_kb(proc.pid)
            readers = Readers(port, f"/live/{live['slug']}/events")
            opened = time.perf_counter()
            await readers.open(n)
            open_seconds = time.perf_counter() - opened
            await asyncio.sleep(1.0)  # let the server settle before reading its memory
            after = rss_kb(proc.pid)
            submitted: dict[int, float] = {}
            posting = time.perf_counter()
            for i in range(ENTRIES):
                sent_at = time.perf_counter()
                response = await client.post(
                    f"{api}/entries", json={"text": f"第{i + 1}条"}, headers=headers
                )
                seq = response.json()["seq"]
                submitted[seq + 1] = sent_at  # event id = seq + 1 (the start event came first)
                await asyncio.sleep(max(0.0, posting + (i + 1) / RATE - time.perf_counter()))
            await asyncio.wait_for(asyncio.gather(*readers.tasks), timeout=120)
            latencies = [
                (seen[event_id] - sent) * 1000
                for seen in readers.received
                for event_id, sent in submitted.items()
                if event_id in seen
            ]
            complete = sum(1 for seen in readers.received if all(e in seen for e in submitted))
            latencies.sort()
            return {
                "n": n,
                "held": readers.connected,
                "complete": complete,
                "open_s": open_seconds,
                "p50": statistics.median(latencies),
                "p99": latencies[int(len(latencies) * 0.99) - 1],
                "kb_per_reader": (after - before) / n,
                "rss_mb": after / 1024,
            }
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def main() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sizes = [int(x) for x in os.environ.get("GOVHUB_BENCH_LIVE_N", "10,1000,5000").split(",")]
    with tempfile.TemporaryDirectory(prefix="govhub-live-bench-") as tmp:
        workdir = Path(tmp)
        env, headers = prepare(workdir)
        print(f"fd limit {hard}; {ENTRIES} entries at {RATE:.0f}/s per run; one server process")
        print(
            f"{'readers':>8} {'held':>6} {'all 100':>8} {'connect s':>9} {'p50 ms':>8} {'p99 ms':>8} {'KB/reader':>10} {'RSS MB':>7}"
        )
        ok = True
        for n in sizes:
            r = asyncio.run(run(n, env, headers, workdir))
            print(
                f"{n:>8} {r['held']:>6.0f} {r['complete']:>8.0f} {r['open_s']:>9.1f} {r['p50']:>8.1f} "
                f"{r['p99']:>8.1f} {r['kb_per_reader']:>10.1f} {r['rss_mb']:>7.1f}"
            )
            ok = ok and r["complete"] == n
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
