"""Fan-out benchmark: one post to 200 accounts (100 orgs x Weibo and WeChat) with 100 ms of
injected platform latency on every call, on the embedded broker and on Redis; then 100 scheduled
posts and how late each left (p50/p99 of first send minus scheduled time).

    .venv/bin/python bench/fanout.py                       # embedded (SQLite + SQLite broker)
    GOVHUB_BENCH_REDIS=redis://127.0.0.1:6379/14 \
    GOVHUB_BENCH_PG=postgresql+psycopg://postgres@127.0.0.1:5432/test .venv/bin/python bench/fanout.py

It runs the hub's own processes (`python -m hub worker --processes 2 --concurrency 16`, set by
GOVHUB_BENCH_PROCESSES and GOVHUB_BENCH_CONCURRENCY, and `python -m hub beat`) against the sandboxes over loopback HTTP, exactly as in production. Printed per setup: wall time
from approval to the last delivery settled, deliveries per second, and the lower bound that the
latency and the worker's declared concurrency allow (platform calls x latency / concurrency,
counting the calls the sandboxes actually served). Targets: >= 60 deliveries/s with Redis
(100/s the stretch), and a scheduled post leaves within 2 s of its time (p99 over 100 posts).

The fan-out's picture is a press photo made at run time (1600 x 1000, ~285 KB JPEG: gradients
and grain; tests/images.py::press_photo), so every WeChat copy needs a converted thumb. Each setup
runs twice in the same invocation: with GOVHUB_IMAGE_VARIANTS=off (every WeChat copy converts:
the baseline) and =shared (converted once, docs/delivery.md "Image variants").
GOVHUB_BENCH_VARIANTS=off,shared,small picks them ("small": the flat 900 x 500 cover of
earlier runs, for reference), GOVHUB_BENCH_SCHEDULED=0 leaves the scheduled posts
out, GOVHUB_BENCH_SCRATCH_DB names the scratch PostgreSQL database (default govhub_bench_fanout).
WeChat tokens are kept ahead by the hub's keeper before the fan-out, as beat does on a running hub
(hub/accounts/tokens.py); GOVHUB_BENCH_TOKENS=cold leaves them for the copies to fetch.
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlmodel import Session, col, select  # noqa: E402

from connectors.sandbox.server import serve  # noqa: E402
from connectors.sandbox.wechat import Fault, WechatSandbox  # noqa: E402
from connectors.sandbox.weibo import WeiboSandbox, WeiboSandboxConfig  # noqa: E402
from hub.config import get_settings  # noqa: E402
from hub.db import engine_for  # noqa: E402
from hub.delivery.models import Attempt, Delivery, DeliveryStatus  # noqa: E402
from hub.migrate import upgrade  # noqa: E402
from hub.users.models import Role  # noqa: E402
from tests.engine.conftest import Matrix, Platforms, Process, counties, cover_image  # noqa: E402
from tests.factories import load_guizhou, make_user, token_for  # noqa: E402
from tests.images import press_photo  # noqa: E402

LATENCY_MS = int(os.environ.get("GOVHUB_BENCH_LATENCY_MS", "100"))
CONCURRENCY = int(os.environ.get("GOVHUB_BENCH_CONCURRENCY", "16"))
SCHEDULE_AHEAD_S = 20  # every scheduled post is approved before its time
PROCESSES = int(os.environ.get("GOVHUB_BENCH_PROCESSES", "2"))
ACCOUNTS_ORGS = 100


SCRATCH_DB = os.environ.get("GOVHUB_BENCH_SCRATCH_DB", "govhub_bench_fanout")
# The fan-out's picture: a press photo (1600 x 1000, ~285 KB JPEG: gradients and grain), whose
# WeChat thumb must be converted (64 KB at most). "shared" makes it once (the variant store under
# the media folder); "off" makes it in every WeChat publication (the baseline, same run).
PHOTO = "press.jpg"
# "small": shared variants and the old small cover (900 x 500, flat: its thumb fits as it is),
# the reference that shows what the photo still costs.
VARIANTS = [
    v
    for v in os.environ.get("GOVHUB_BENCH_VARIANTS", "off,shared,small").split(",")
    if v in ("off", "shared", "small")
]
SCHEDULED = os.environ.get("GOVHUB_BENCH_SCHEDULED", "1") != "0"
# "kept": WeChat tokens fetched ahead by the hub's keeper, as on a running hub (default);
# "cold": every account's first call of the day is the fan-out's (each copy fetches its token)
TOKENS = os.environ.get("GOVHUB_BENCH_TOKENS", "kept")
APPROVE_SECONDS: list[float] = []  # how long each approval's API call took
SUBMIT_SECONDS: list[float] = []  # ... and each submission (image variants are made there)


def scratch_postgres(url: str) -> str:
    """A fresh scratch database on the given server (the test database is left alone)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {SCRATCH_DB}"))
    admin.dispose()
    return make_url(url).set(database=SCRATCH_DB).render_as_string(hide_password=False)


def drop_scratch(url: str) -> None:
    from sqlalchemy import create_engine

    engine_for(url).dispose()
    admin = create_engine(os.environ["GOVHUB_BENCH_PG"], isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)"))
    admin.dispose()


def setup(
    name: str,
    database_url: str,
    broker_url: str,
    redis_url: str | None,
    work: Path,
    variants: str = "shared",
) -> None:
    os.environ.update(
        {
            "GOVHUB_IMAGE_VARIANTS": variants,
            "GOVHUB_DATABASE_URL": database_url,
            "GOVHUB_BROKER_URL": broker_url,
            "GOVHUB_MEDIA_DIR": str(work / "media"),
            "GOVHUB_PUBLIC_BASE_URL": "http://hall.test",
            "GOVHUB_ENQUEUE_LEASE_SECONDS": "30",
            # the approver here is an in-process API client with no IP: Weibo's rip falls back
            # to this documentation address (the sandbox, like Weibo, refuses a share without one)
            "GOVHUB_WEIBO_FALLBACK_RIP": "192.0.2.1",
        }
    )
    if redis_url:
        os.environ["GOVHUB_REDIS_URL"] = redis_url
    else:
        os.environ.pop("GOVHUB_REDIS_URL", None)
    from scheduler.app import get_celery

    get_settings.cache_clear()
    get_celery.cache_clear()
    upgrade(database_url)
    load_guizhou(database_url)
    make_user(database_url, "gov-editor", Role.editor, "520000")
    make_user(database_url, "gov-reviewer", Role.reviewer, "520000")


def approve(
    matrix: Matrix,
    accounts: list[int],
    media: Path,
    client: TestClient | None = None,
    image: str | None = None,
    **extra: object,
) -> tuple[int, float]:
    """Create, submit and approve a post through the API; returns (post id, perf_counter)."""
    if client is None:
        app = __import__("hub.web.app", fromlist=["create_app"]).create_app()
        with TestClient(app) as fresh:
            return approve(matrix, accounts, media, fresh, image, **extra)
    url = matrix.database_url
    body = {
        "title": "全省政务公开工作推进会召开",
        "body": "各地各部门要高度重视政务公开工作。" * 20,
        "summary": f"全省政务公开工作推进会今天召开（{time.time_ns()}）。",
        "target_account_ids": accounts,
        "images": [image or cover_image(media)],
        **extra,
    }
    editor, reviewer = token_for("gov-editor", url), token_for("gov-reviewer", url)
    post_id = client.post("/api/v1/posts", json=body, headers=editor).json()["id"]
    submit_started = time.perf_counter()
    submitted = client.post(f"/api/v1/posts/{post_id}/submit", headers=editor)
    assert submitted.status_code == 200, submitted.text
    SUBMIT_SECONDS.append(time.perf_counter() - submit_started)
    started = time.perf_counter()
    response = client.post(f"/api/v1/posts/{post_id}/approve", headers=reviewer)
    assert response.status_code == 200, response.text
    APPROVE_SECONDS.append(time.perf_counter() - started)
    return post_id, started


def cpu_by_role() -> dict[str, float]:
    """CPU seconds (user + system) so far, per role: worker, beat, this process (the API client
    and both platform sandboxes), PostgreSQL, Redis. Worker and beat: only this run's (started
    by this process; other hub workers on the machine are left out); PostgreSQL and Redis are
    the whole servers, shared with anything else running."""
    import psutil  # type: ignore[import-untyped]

    ours = {child.pid for child in psutil.Process().children(recursive=True)}
    totals: dict[str, float] = {}
    for proc in psutil.process_iter(["cmdline", "name"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            name = proc.info["name"] or ""
            times = proc.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if "--no-supervise" in cmdline and proc.pid in ours:
            role = "worker"
        elif "hub beat" in cmdline and proc.pid in ours:
            role = "beat"
        elif proc.pid == os.getpid():
            role = "bench+sandboxes"
        elif name.startswith("postgres"):
            role = "postgres"
        elif name.startswith("redis"):
            role = "redis"
        else:
            continue
        totals[role] = totals.get(role, 0.0) + times.user + times.system
        if role == "worker":  # how much of it the kernel's (switching threads, sockets)
            totals["worker sys"] = totals.get("worker sys", 0.0) + times.system
            # Celery's consumer: the main thread takes each task message from the broker,
            # hands it to a pool thread and acknowledges it when done (tasks run elsewhere)
            main = [t for t in proc.threads() if t.id == proc.pid]
            if main:
                consumer = main[0].user_time + main[0].system_time
                totals["worker consumer"] = totals.get("worker consumer", 0.0) + consumer
    return totals


def settled(url: str, post_ids: list[int]) -> bool:
    """Every copy of these posts published or failed. Asked every 50 ms while the fan-out runs on
    the same two cores, so it is one aggregate row, not 200 ORM objects (loading them cost the
    bench process ~0.3 s of CPU per fan-out, taken from the worker it measures)."""
    from sqlalchemy import case, func

    open_copies = func.sum(
        case(
            (col(Delivery.status).in_((DeliveryStatus.published, DeliveryStatus.failed)), 0),
            else_=1,
        )
    )
    with engine_for(url).connect() as conn:
        total, still_open = conn.execute(
            select(func.count(), open_copies).where(col(Delivery.post_id).in_(post_ids))
        ).one()
    return bool(total) and not still_open


def start_spy(worker: Process, work: Path) -> subprocess.Popen[bytes] | None:
    """``GOVHUB_BENCH_SPY=DIR``: sample the worker's processes with py-spy (``pip install
    py-spy``) during the measured fan-out, all threads, and write DIR/<variant>.txt (py-spy's raw
    folded stacks: one line per stack with its sample count, for ``flamegraph.pl`` or grep)."""
    folder = os.environ.get("GOVHUB_BENCH_SPY")
    if not folder or worker.proc is None:
        return None
    Path(folder).mkdir(parents=True, exist_ok=True)
    out = Path(folder) / f"{work.name}.txt"
    spy = subprocess.Popen(
        [
            shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy",
            "record",
            "--subprocesses",
            "--gil",
            "-r",
            "200",
            "-f",
            "raw",
            "-o",
            str(out),
            "-p",
            str(worker.proc.pid),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy attaches to every process before the post is approved
    return spy


def stop_spy(spy: subprocess.Popen[bytes] | None) -> None:
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)


def run(
    name: str, database_url: str, broker_url: str, redis_url: str | None, variants: str
) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix=f"bench-fanout-{name}-"))
    setup(
        name,
        database_url,
        broker_url,
        redis_url,
        work,
        "shared" if variants == "small" else variants,
    )
    (work / "media").mkdir(parents=True, exist_ok=True)
    photo = press_photo()
    (work / "media" / PHOTO).write_bytes(photo)
    name = f"{name}/{variants}"
    weibo = WeiboSandbox(WeiboSandboxConfig(safe_domains=("hall.test",)))
    wechat = WechatSandbox()
    wechat.configure(publish_delay=0.2)
    servers = [serve(weibo), serve(wechat)]
    os.environ["GOVHUB_WEIBO_API_BASE"] = servers[0].base_url
    os.environ["GOVHUB_WECHAT_API_BASE"] = servers[1].base_url
    get_settings.cache_clear()
    matrix = Matrix(database_url, Platforms(weibo, wechat, servers))
    accounts = matrix.add_accounts(counties(database_url, ACCOUNTS_ORGS), ("weibo", "wechat"))
    for endpoint in ("share", "user_timeline"):
        weibo.set_latency(endpoint, LATENCY_MS)
    wechat.add_fault(Fault(endpoint="*", mode="latency", latency_ms=LATENCY_MS, count=None))
    procs = [
        Process(
            ["worker", "--processes", str(PROCESSES), "--concurrency", str(CONCURRENCY)],
            work,
            work / "worker.log",
        ).start(),
        Process(["beat"], work, work / "beat.log").start(),
    ]
    # This process stands in for the hub's web server (the API calls) and also hosts both
    # sandboxes. `govhub serve` freezes its start-up heap (hub/web/app.py); do the same here, or
    # a full collection of the sandboxes' objects lands inside the approval (measured: 0.15 s).
    gc.collect()
    gc.freeze()
    try:
        # warm-up: the worker is up when a tiny post to one hall-less account settles (with a
        # small picture of its own, so the press photo is first seen by the measured post)
        warm, _ = approve(matrix, accounts[:1], work / "media")
        deadline = time.monotonic() + 120
        while not settled(database_url, [warm]) and time.monotonic() < deadline:
            time.sleep(0.05)
        if TOKENS == "kept":
            # a running hub: beat's accounts.keep_tokens (every 5 min) has fetched each WeChat
            # account's token ahead of use; the bench runs that same pass once, now
            from hub.accounts.tokens import keep_tokens
            from hub.sqltypes import utcnow

            kept_at = time.perf_counter()
            with Session(engine_for(database_url)) as session:
                kept = keep_tokens(session=session, settings=get_settings(), now=utcnow())
            print(
                f"  tokens kept ahead (accounts.keep_tokens): {kept.summary()} "
                f"in {time.perf_counter() - kept_at:.2f} s",
                flush=True,
            )
        weibo_calls_before = sum(weibo.calls(e) for e in ("share", "user_timeline"))
        wechat_calls_before = sum(wechat.calls().values())
        wechat_by_endpoint = dict(wechat.calls())

        cpu_before = cpu_by_role()
        spy = start_spy(procs[0], work)
        picture = None if variants == "small" else PHOTO
        post_id, started = approve(matrix, accounts, work / "media", image=picture)
        # the timeline's origin: when the approval's API call began (not the post's creation
        # and submission before it, which earlier figures counted: ~0.3 s of "start lag")
        started_at = datetime.now(UTC) - timedelta(seconds=time.perf_counter() - started)
        deadline = time.monotonic() + 600
        while not settled(database_url, [post_id]) and time.monotonic() < deadline:
            time.sleep(0.05)
        wall = time.perf_counter() - started
        stop_spy(spy)
        cpu = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_by_role().items()}
        print(
            f"  CPU seconds during the fan-out ({wall:.1f} s wall, 2 cores): "
            + ", ".join(f"{k} {v:.1f}" for k, v in sorted(cpu.items(), key=lambda kv: -kv[1])),
            flush=True,
        )
        with Session(engine_for(database_url)) as session:
            statuses = [
                str(s)
                for s in session.exec(
                    select(Delivery.status).where(Delivery.post_id == post_id)
                ).all()
            ]
            trail = session.exec(
                select(Attempt.at, Attempt.action)
                .join(Delivery, Attempt.delivery_id == Delivery.id)  # type: ignore[arg-type]
                .where(Delivery.post_id == post_id)
            ).all()
        print(
            f"  submitting the post took {SUBMIT_SECONDS[-1]:.2f} s (image variants made there); "
            f"approving it (API call: deliveries created and enqueued) took "
            f"{APPROVE_SECONDS[-1]:.2f} s; timeline (s after approval began):",
            timeline(trail, started_at),
            flush=True,
        )
        calls = (
            sum(weibo.calls(e) for e in ("share", "user_timeline"))
            - weibo_calls_before
            + sum(wechat.calls().values())
            - wechat_calls_before
        )
        wechat_now = wechat.calls()
        print(
            "  platform calls in the fan-out: weibo share "
            f"{weibo.calls('share')}, user_timeline {weibo.calls('user_timeline')} (whole run); "
            + ", ".join(
                f"wechat {e} {n - wechat_by_endpoint.get(e, 0)}"
                for e, n in sorted(wechat_now.items())
                if n - wechat_by_endpoint.get(e, 0)
            ),
            flush=True,
        )
        bound = calls * LATENCY_MS / 1000 / (CONCURRENCY * PROCESSES)
        published = statuses.count("published")

        variant_files = [
            p.name for p in (work / "media" / "variants").glob("*") if not p.name.startswith(".")
        ]
        print(
            f"  picture: {picture or 'cover.jpg (small)'} "
            f"{(work / 'media' / (picture or 'cover.jpg')).stat().st_size // 1024} KB; "
            f"variant files made: "
            f"{len(variant_files)} {variant_files}",
            flush=True,
        )
        if not SCHEDULED:
            raise _SkipScheduled
        # scheduled posts: 100 posts, one Weibo account each, due over the next ~20 s
        weibo.set_latency("share", 0)
        weibo.set_latency("user_timeline", 0)
        base = datetime.now(UTC) + timedelta(seconds=SCHEDULE_AHEAD_S)
        due: dict[int, datetime] = {}
        weibo_accounts = [a for a in accounts if a in matrix.weibo_uids][:100]
        approved_late = 0
        app = __import__("hub.web.app", fromlist=["create_app"]).create_app()
        with TestClient(app) as client:
            for i, account in enumerate(weibo_accounts):
                when = base + timedelta(milliseconds=200 * i)
                pid, _ = approve(
                    matrix,
                    [account],
                    work / "media",
                    client,
                    scheduled_at=when.isoformat(),
                    title=f"定时稿件{i}",
                )
                due[pid] = when
                approved_late += datetime.now(UTC) > when
        if approved_late:
            print(f"  warning: {approved_late} posts were approved after their time", flush=True)
        deadline = time.monotonic() + 180
        while not settled(database_url, list(due)) and time.monotonic() < deadline:
            time.sleep(0.1)
        late_by: dict[int, float] = {}
        with Session(engine_for(database_url)) as session:
            for pid, when in due.items():
                first = session.exec(
                    select(Attempt.at)
                    .join(Delivery, Attempt.delivery_id == Delivery.id)  # type: ignore[arg-type]
                    .where(Delivery.post_id == pid, Attempt.action == "publish")
                    .order_by(Attempt.at)  # type: ignore[arg-type]
                ).first()
                if first is not None:
                    late_by[pid] = (first - when).total_seconds()
            for pid in sorted(late_by, key=late_by.__getitem__)[-2:]:  # what made the p99
                steps = session.exec(
                    select(Attempt.at, Attempt.action, Attempt.outcome)
                    .join(Delivery, Attempt.delivery_id == Delivery.id)  # type: ignore[arg-type]
                    .where(Delivery.post_id == pid)
                    .order_by(Attempt.at)  # type: ignore[arg-type]
                ).all()
                path = ", ".join(
                    f"{action}:{outcome}@{(at - due[pid]).total_seconds():+.2f}s"
                    for at, action, outcome in steps
                )
                print(f"  latest: post {pid} late by {late_by[pid]:.2f} s: {path}", flush=True)
        lateness = sorted(late_by.values())
    except _SkipScheduled:
        lateness = []
    finally:
        for proc in procs:
            proc.stop()
        for server in servers:
            server.stop()
        wechat.close()
    p50 = statistics.median(lateness) if lateness else float("nan")
    p99 = lateness[max(0, int(len(lateness) * 0.99) - 1)] if lateness else float("nan")
    result = {
        "wall_s": wall,
        "published": float(published),
        "per_s": published / wall,
        "calls": float(calls),
        "bound_s": bound,
        "bound_per_s": published / bound if bound else float("nan"),
        "sched_n": float(len(lateness)),
        "sched_p50_s": p50,
        "sched_p99_s": p99,
    }
    print(
        f"{name:<15} 200 deliveries: {published} published in {wall:6.2f} s = "
        f"{result['per_s']:6.1f}/s | {calls} platform calls x {LATENCY_MS} ms / {PROCESSES}x{CONCURRENCY} "
        f"threads = lower bound {bound:5.2f} s ({result['bound_per_s']:.0f}/s) | "
        f"scheduled: {len(lateness)} posts, late by p50 {p50:.2f} s, p99 {p99:.2f} s",
        flush=True,
    )
    if published != 200:
        raise SystemExit(f"{name}: only {published} of 200 deliveries published: not a valid run")
    return result


class _SkipScheduled(Exception):
    """GOVHUB_BENCH_SCHEDULED=0: the scheduled posts' part is left out."""


def timeline(trail: Sequence[tuple[datetime, str]], started_at: datetime) -> str:
    """When the fan-out's recorded outcomes happened, by action (first, median, last)."""
    by_action: dict[str, list[float]] = {}
    for at, action in trail:
        by_action.setdefault(action, []).append((at - started_at).total_seconds())
    parts = []
    for action, times in sorted(by_action.items()):
        times.sort()
        parts.append(
            f"{action} x{len(times)} first {times[0]:.2f} median {statistics.median(times):.2f} "
            f"last {times[-1]:.2f}"
        )
    return "; ".join(parts)


def main() -> None:
    from machine import report

    print(
        report(os.environ.get("GOVHUB_BENCH_PG", ""), os.environ.get("GOVHUB_BENCH_REDIS", "")),
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    only = os.environ.get("GOVHUB_BENCH_ONLY", "")
    results: dict[str, dict[str, float]] = {}
    for variants in VARIANTS:
        if only in ("", "embedded"):
            sub = work / f"embedded-{variants}"
            sub.mkdir()
            results[f"embedded/{variants}"] = run(
                "embedded",
                f"sqlite:///{sub / 'hub.sqlite3'}",
                f"sqla+sqlite:///{sub / 'broker.sqlite3'}",
                None,
                variants,
            )
        redis_url = os.environ.get("GOVHUB_BENCH_REDIS")
        if redis_url and only in ("", "redis"):
            pg = os.environ.get("GOVHUB_BENCH_PG")
            database = (
                scratch_postgres(pg)
                if pg
                else f"sqlite:///{work / f'hub-redis-{variants}.sqlite3'}"
            )
            import redis

            redis.Redis.from_url(redis_url).flushdb()
            try:
                results[f"redis/{variants}"] = run(
                    "redis", database, redis_url, redis_url, variants
                )
            finally:
                if pg:
                    drop_scratch(database)
    print("summary (200 copies handed over, press photo):", flush=True)
    for name, result in results.items():
        print(f"  {name:<15} {result['wall_s']:5.2f} s  {result['per_s']:6.1f}/s", flush=True)


if __name__ == "__main__":
    main()
