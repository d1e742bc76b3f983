"""Release-hall benchmark: the hall's public pages against ``/healthz``, in the same run.

    .venv/bin/python bench/hall.py
    GOVHUB_BENCH_HALL_N=3000 GOVHUB_BENCH_HALL_ROUNDS=3 .venv/bin/python bench/hall.py

A scratch SQLite hub (the embedded default) gets the Guizhou matrix and a realistic hall: 500
posts published to the hall accounts of eight orgs (a few paragraphs each) and 300 posts ingested
from county Weibo accounts. Then, for the cache on (the default) and off (``GOVHUB_HALL_CACHE=
false``, the baseline), a fresh ``govhub serve --workers 2 --no-access-log`` on loopback is loaded
by 64 keep-alive connections (a small raw-asyncio HTTP/1.1 client, uvloop when installed):
``/healthz``, ``/hall``, a post page and ``/hall/feed.json``, N requests each (6,000; 800 with
the cache off), the four taking turns over ROUNDS rounds (3) so that whatever else the machine does
falls on all of them alike; with the cache on, each round also loads ``/hall`` while the bench
publishes a new post every 0.5 s (the hall changing while it is read). Printed per path:
requests, req/s, p50/p99 latency, errors (anything but a 200, or a broken connection), the rate
as a share of ``/healthz``'s in the same server run, and the mean body size (KB). Targets
(issue 19): with the cache, each hall page >= 80% of ``/healthz``, p99 < 1 s, no errors; the
script exits non-zero when one is missed.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONCURRENCY = 64
N_CACHED = int(os.environ.get("GOVHUB_BENCH_HALL_N", "6000"))
N_UNCACHED = int(os.environ.get("GOVHUB_BENCH_HALL_N_OFF", "800"))
ROUNDS = int(os.environ.get("GOVHUB_BENCH_HALL_ROUNDS", "3"))
POSTS = 500
INGESTED = 300
ORGS = ("520000", "520100", "520102", "522600", "522601", "522622", "520000-xwb", "520000-gat")
COUNTIES = ("522601", "522622", "520102")
BODY = (
    "{org}召开新闻发布会，通报近期重点工作进展情况。\n\n"
    "会议指出，要坚持以人民为中心的发展思想，扎实做好民生保障、安全生产和防汛救灾各项工作，"
    "切实维护人民群众生命财产安全。第{n}号通报涉及的事项，请各有关单位认真抓好落实。\n\n"
    "**一、基本情况**\n\n截至目前，全市累计完成各项任务{n}项，群众满意度持续提升。\n\n"
    "**二、下一步工作**\n\n各级各部门要进一步压实责任，加强统筹协调，确保各项措施落地见效。"
)


def prepare(workdir: Path) -> tuple[dict[str, str], int]:
    """A migrated hub with a hall of POSTS + INGESTED entries; returns env and a post id."""
    url = f"sqlite:///{workdir / 'govhub.sqlite3'}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GOVHUB_")},
        "GOVHUB_DATABASE_URL": url,
        "GOVHUB_BROKER_URL": f"sqla+sqlite:///{workdir / 'broker.sqlite3'}",
        "GOVHUB_MEDIA_DIR": str(workdir / "media"),
    }
    os.environ.update(env)
    from hub.accounts.models import Platform
    from hub.config import get_settings
    from hub.migrate import upgrade
    from hub.users.models import Role
    from tests.factories import load_guizhou, make_user
    from tests.integration import hall_data

    get_settings.cache_clear()
    upgrade(url)
    load_guizhou(url)
    make_user(url, "kaili-editor", Role.editor, "522601")
    halls = {code: hall_data.account(url, code, Platform("hall")) for code in ORGS}
    weibo = {code: hall_data.account(url, code, Platform("weibo")) for code in COUNTIES}
    post_ids = []
    for n in range(POSTS):
        code = ORGS[n % len(ORGS)]
        posted = hall_data.publish(
            url,
            org_code=code,
            title=f"关于第{n}号重点工作的通报",
            body=BODY.format(org=code, n=n),
            hall_account=halls[code],
        )
        post_ids.append(posted.post_id)
    for n in range(INGESTED):
        code = COUNTIES[n % len(COUNTIES)]
        hall_data.ingested(
            url,
            account_id=weibo[code],
            text=f"【便民提示】第{n}期：明日起部分路段临时交通管制，请市民合理安排出行。#{code}#",
            remote_id=f"w{n}",
        )
    return env, post_ids[len(post_ids) // 2]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * p) - 1)] if ordered else 0.0


async def _one_connection(
    port: int,
    path: str,
    todo: list[int],
    latencies: list[float],
    errors: list[str],
    sizes: list[int],
) -> None:
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: govhub-bench\r\n\r\n"
    ).encode()
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while todo:
        todo.pop()
        if writer is None:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
            except OSError as exc:
                errors.append(f"connect: {exc}")
                continue
        assert reader is not None
        started = time.perf_counter()
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            close = False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
                elif name.lower() == b"connection" and value.strip().lower() == b"close":
                    close = True
            body = await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            writer.close()
            writer = None
            continue
        latencies.append(time.perf_counter() - started)
        sizes.append(len(body))
        if status != 200:
            errors.append(f"status {status}")
        if close:
            writer.close()
            writer = None
    if writer is not None:
        writer.close()


@dataclass
class Result:
    n: int = 0
    seconds: float = 0.0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)

    def add(self, other: Result) -> None:
        self.n += other.n
        self.seconds += other.seconds
        self.errors += other.errors
        self.latencies += other.latencies
        self.sizes += other.sizes

    @property
    def rate(self) -> float:
        return self.n / self.seconds


async def load(port: int, path: str, n: int, *, quiet: bool = False) -> Result:
    todo = list(range(n))
    latencies: list[float] = []
    sizes: list[int] = []
    errors: list[str] = []
    started = time.perf_counter()
    await asyncio.gather(
        *(_one_connection(port, path, todo, latencies, errors, sizes) for _ in range(CONCURRENCY))
    )
    elapsed = time.perf_counter() - started
    if errors and not quiet:
        print(f"   {path}: {len(errors)} errors, first: {errors[0]}", flush=True)
    return Result(n, elapsed, len(errors), latencies, sizes)


CHURN = "/hall, a post every 0.5 s"
CHURN_EVERY = 0.5
CHURN_SECONDS = 5.0  # at least, per round
churn_published = 0


async def load_while_publishing(port: int, path: str, n: int, env: dict[str, str]) -> Result:
    """Load ``path`` while this process publishes a new post every CHURN_EVERY seconds."""
    from tests.integration import hall_data

    stop = threading.Event()
    published: list[float] = []

    def publish() -> None:
        while not stop.wait(CHURN_EVERY):
            hall_data.publish(
                env["GOVHUB_DATABASE_URL"],
                org_code="522601",
                title=f"突发：第{len(published)}条快讯",
                body=BODY.format(org="522601", n=len(published)),
                hall_account=_churn_account(env["GOVHUB_DATABASE_URL"]),
            )
            published.append(time.monotonic())

    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    total = Result()
    try:
        started = time.monotonic()
        while total.n < n or time.monotonic() - started < CHURN_SECONDS:
            total.add(await load(port, path, 1000))
    finally:
        stop.set()
        await asyncio.to_thread(publisher.join)
    global churn_published
    churn_published += len(published)
    return total


_churn_accounts: dict[str, int] = {}


def _churn_account(url: str) -> int:
    if url not in _churn_accounts:
        from hub.accounts.models import Platform
        from tests.integration import hall_data

        _churn_accounts[url] = hall_data.account(url, "522601", Platform("hall"), "快讯")
    return _churn_accounts[url]


async def run(
    env: dict[str, str], workdir: Path, paths: list[str], n: int, cache: bool
) -> dict[str, Result]:
    from connectors.sandbox.server import free_port

    port = free_port()
    log = (workdir / f"serve-{'on' if cache else 'off'}.log").open("wb")
    command = [sys.executable, "-m", "hub", "serve", "--port", str(port), "--workers", "2"]
    proc = subprocess.Popen(
        [*command, "--no-access-log", "--log-level", "warning"],
        cwd=workdir,
        env={**env, "GOVHUB_HALL_CACHE": "true" if cache else "false"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                ready = await load(port, "/healthz", 1, quiet=True)
                if not ready.errors:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"server did not start; see {log.name}")
            await asyncio.sleep(0.2)
        for path in paths:  # warm both workers: imports, templates, first renders
            await load(port, path, CONCURRENCY * 4)
        totals = {path: Result() for path in paths}
        if cache:
            totals[CHURN] = Result()
        for _ in range(ROUNDS):
            for path in paths:
                totals[path].add(await load(port, path, n))
            if cache:  # a news day: the hall changes while it is read
                totals[CHURN].add(await load_while_publishing(port, "/hall", n, env))
        return totals
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        log.close()


def report(label: str, totals: dict[str, Result]) -> list[str]:
    """Print one table; return the targets it misses (for the cached run)."""
    base = totals["/healthz"].rate
    print(f"\n{label}")
    print(
        f"{'path':<32}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'ratio':>8}{'KB':>7}"
    )
    missed = []
    for path, total in totals.items():
        p50, p99 = pct(total.latencies, 0.50) * 1000, pct(total.latencies, 0.99) * 1000
        ratio = total.rate / base
        print(
            f"{path:<32}{total.n:>9}{total.rate:>9.0f}{p50:>9.1f}{p99:>9.1f}"
            f"{total.errors:>8}{ratio:>8.0%}{statistics.mean(total.sizes or [0]) / 1024:>7.1f}"
        )
        if path != "/healthz":
            if ratio < 0.8:
                missed.append(f"{path}: {ratio:.0%} of /healthz (target >= 80%)")
            if p99 >= 1000:
                missed.append(f"{path}: p99 {p99:.0f} ms (target < 1 s)")
        if total.errors:
            missed.append(f"{path}: {total.errors} errors")
    return missed


def main() -> int:
    from machine import report as machine

    print(machine(), flush=True)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    with tempfile.TemporaryDirectory(prefix="govhub-bench-hall-") as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        env, post_id = prepare(workdir)
        print(
            f"hall of {POSTS} published + {INGESTED} ingested entries seeded in "
            f"{time.perf_counter() - started:.1f} s; `govhub serve --workers 2`, SQLite, "
            f"{CONCURRENCY} keep-alive connections, {ROUNDS} rounds; cpus={os.cpu_count()}",
            flush=True,
        )
        paths = ["/healthz", "/hall", f"/hall/posts/{post_id}", "/hall/feed.json"]
        cached = asyncio.run(run(env, workdir, paths, N_CACHED // ROUNDS, cache=True))
        n_on, n_off = N_CACHED // ROUNDS * ROUNDS, N_UNCACHED // ROUNDS * ROUNDS
        missed = report(
            f"cache on: {n_on} requests per path (the churn row: >= {CHURN_SECONDS:g} s a round, "
            f"{churn_published} posts published meanwhile)",
            cached,
        )
        plain = asyncio.run(run(env, workdir, paths, N_UNCACHED // ROUNDS, cache=False))
        report(f"cache off (GOVHUB_HALL_CACHE=false, baseline): {n_off} per path", plain)
    if missed:
        print("\nMISSED: " + "; ".join(missed))
        return 1
    print("\nall targets met (cache on)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
