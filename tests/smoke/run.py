"""The production install, smoke-tested: the wheel alone, on PostgreSQL + Redis (``make smoke``).

What compose.yaml's image does, without Docker: build the wheel, install it with no extras into a
fresh venv outside the source tree and, from a scratch folder (never the repository), run
``govhub db upgrade``, ``govhub sandbox``, ``govhub serve``, ``govhub worker`` and ``govhub beat``
as separate processes with ``GOVHUB_ENV=production`` and a Redis broker. An org, three users and
Weibo, WeChat and release-hall accounts bound to the sandboxes are set up through the installed
command line and the REST API only; one post goes through create, submit and approve (by another
user) and must end ``published`` on all three platforms within a bounded wait. Every process is
stopped afterwards, also on failure, when the tail of each one's log is printed.

Settings (environment):
  GOVHUB_SMOKE_DATABASE_URL  PostgreSQL database, dropped and created afresh on every run
                             (default postgresql+psycopg://postgres@127.0.0.1:5432/govhub_smoke)
  GOVHUB_SMOKE_REDIS_URL     Redis database for the broker and the hub, flushed on every run
                             (default redis://127.0.0.1:6379/14)
  GOVHUB_SMOKE_PYTHON        interpreter for the fresh venv (default: the one running this)
  GOVHUB_SMOKE_KEEP          1: keep the scratch folder (wheel, venv, logs) after a success too

Not collected by pytest (no ``test_`` prefix): ``make smoke`` runs it, ``make test`` calls that.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import redis

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/govhub_smoke"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
# what the wheel is built from: the repository less local state (the build never sees .venv etc.)
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "var", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
    ".mypy_cache", ".ruff_cache", ".pytest_cache", "test-artifacts",
)  # fmt: skip
START_SECONDS = 90  # a process answering (serve's /readyz, the sandbox)
PUBLISH_SECONDS = 90  # approval to every delivery published
T = TypeVar("T")


class SmokeFailure(Exception):
    """The install does not work; the message says at which step and how."""


class NotYet(SmokeFailure):
    """Not (yet) as wanted: :func:`wait_for` polls again until its deadline."""


def step(message: str) -> None:
    print(f"[smoke {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command to completion; its output, or a failure quoting it."""
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SmokeFailure(
            f"`{' '.join(cmd)}` exited with {done.returncode}:\n{done.stdout[-3000:]}"
            f"{done.stderr[-3000:]}"
        )
    return done.stdout


def wait_for(
    what: str, check: Callable[[], T | None], seconds: float, alive: Callable[[], None]
) -> T:
    """Poll ``check`` until it returns a value (bounded); ``alive`` raises if a process died."""
    deadline = time.monotonic() + seconds
    last: object = None
    while time.monotonic() < deadline:
        alive()
        try:
            value = check()
        except (httpx.TransportError, NotYet) as exc:
            value, last = None, exc
        if value is not None:
            return value
        time.sleep(0.2)
    raise SmokeFailure(f"{what}: not within {seconds:.0f} s (last: {last})")


# -- services: PostgreSQL and Redis ---------------------------------------------------------------


def reset_database(url: str) -> None:
    """Drop and create the smoke's database (on the same server, through its ``postgres`` db)."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    test_url = os.environ.get("GOVHUB_TEST_DATABASE_URL", "")
    if not name or name in {"postgres", "template0", "template1"}:
        raise SmokeFailure(f"GOVHUB_SMOKE_DATABASE_URL must name a database of its own: {url}")
    if test_url and urlsplit(test_url).path.lstrip("/") == name:
        raise SmokeFailure(f"the smoke would reset the test suite's database {name!r}")
    admin = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        raise SmokeFailure(
            f"PostgreSQL at {parts.hostname}:{parts.port or 5432} does not answer ({exc}); start it"
            " (.ci/run does) or point GOVHUB_SMOKE_DATABASE_URL at one"
        ) from None


def reset_redis(url: str) -> None:
    test_url = os.environ.get("GOVHUB_TEST_REDIS_URL", "")
    if test_url and test_url.rstrip("/") == url.rstrip("/"):
        raise SmokeFailure(f"the smoke would flush the test suite's Redis database {url}")
    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        raise SmokeFailure(
            f"Redis at {url} does not answer ({exc}); start it (.ci/run does) or point "
            "GOVHUB_SMOKE_REDIS_URL at one"
        ) from None
    finally:
        client.close()


# -- the installed hub's processes --------------------------------------------------------------


@dataclass
class Processes:
    """Long-running ``govhub`` processes, each in its own process group with its own log."""

    logs: Path
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, cmd: list[str], *, cwd: Path, env: dict[str, str]) -> None:
        log = (self.logs / f"{name}.log").open("wb")
        self.running[name] = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()  # the child has its own descriptor

    def check_alive(self) -> None:
        for name, proc in self.running.items():
            if proc.poll() is not None:
                raise SmokeFailure(f"`govhub {name}` exited with {proc.returncode}")

    def stop(self) -> None:
        """SIGTERM each process group, then SIGKILL what is left after 15 s."""
        for proc in self.running.values():
            if proc.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name, proc in self.running.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                step(f"govhub {name} did not stop within 15 s of SIGTERM: killed")
            with suppress(ProcessLookupError):  # the group: a worker's pool children too
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def print_tails(self, lines: int = 40) -> None:
        for log in sorted(self.logs.glob("*.log")):
            text = log.read_text("utf-8", errors="replace").splitlines()
            print(f"\n----- last {lines} lines of {log.name} -----", file=sys.stderr)
            print("\n".join(text[-lines:]) or "(empty)", file=sys.stderr)


# -- fixtures made here --------------------------------------------------------------------------


def png(width: int = 320, height: int = 180) -> bytes:
    """A plain red PNG (the WeChat article's cover), made with the standard library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes((200, 30, 30)) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


ORGS_CSV = """code,name,level,parent_code,livelihood,press_office
520000,贵州省,province,,0,0
520000-xwb,贵州省人民政府新闻办公室,department,520000,0,1
"""
ORG = "520000-xwb"


# -- the smoke test -------------------------------------------------------------------------------


@dataclass
class Hub:
    base: str
    sandbox: str
    client: httpx.Client

    def login(self, username: str, password: str) -> dict[str, str]:
        answer = self.client.post(
            f"{self.base}/api/v1/auth/token", data={"username": username, "password": password}
        )
        expect(answer, 200, f"log in as {username}")
        return {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def call(
        self, method: str, path: str, headers: dict[str, str], status: int = 200, **kwargs: Any
    ) -> Any:
        answer = self.client.request(method, f"{self.base}{path}", headers=headers, **kwargs)
        expect(answer, status, f"{method} {path}")
        return answer.json()


def expect(answer: httpx.Response, status: int, what: str) -> None:
    if answer.status_code != status:
        raise SmokeFailure(
            f"{what} answered {answer.status_code} (expected {status}): {answer.text[:500]}"
        )


def build_and_install(scratch: Path) -> Path:
    """The wheel, built from a copy of the source, installed alone into a fresh venv."""
    source, dist, venv = scratch / "source", scratch / "dist", scratch / "venv"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    step("building the wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    run([*pip, "wheel", "--no-deps", "--wheel-dir", str(dist), str(source)], cwd=scratch)
    shutil.rmtree(source)  # nothing of the source tree is left to import from
    (wheel,) = dist.glob("govhub-*.whl")
    step(f"installing {wheel.name} (no extras) into a fresh venv")
    python = os.environ.get("GOVHUB_SMOKE_PYTHON") or getattr(sys, "_base_executable", None)
    run([python or sys.executable, "-m", "venv", str(venv)], cwd=scratch)
    run(
        [str(venv / "bin/python"), "-m", "pip", "install", "--disable-pip-version-check",
         "--quiet", str(wheel)],
        cwd=scratch,
    )  # fmt: skip
    return venv / "bin"


def smoke(scratch: Path, procs: Processes) -> None:
    database_url = os.environ.get("GOVHUB_SMOKE_DATABASE_URL") or DEFAULT_DATABASE_URL
    redis_url = os.environ.get("GOVHUB_SMOKE_REDIS_URL") or DEFAULT_REDIS_URL
    step(f"resetting {urlsplit(database_url).path.lstrip('/')} and {redis_url}")
    reset_database(database_url)
    reset_redis(redis_url)

    bin_dir = build_and_install(scratch)
    govhub = str(bin_dir / "govhub")
    home = scratch / "run"  # the processes' working directory: not the repository
    home.mkdir()
    located = run([str(bin_dir / "python"), "-c", "import hub; print(hub.__file__)"], cwd=home)
    if not located.strip().startswith(str(scratch / "venv")):
        raise SmokeFailure(f"hub is imported from {located.strip()}, not the installed wheel")

    hub_port, sandbox_port = free_port(), free_port()
    base, sandbox = f"http://127.0.0.1:{hub_port}", f"http://127.0.0.1:{sandbox_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOVHUB_", "PYTHON"))}
    env.update(
        GOVHUB_ENV="production",
        GOVHUB_DATABASE_URL=database_url,
        GOVHUB_BROKER_URL=redis_url,
        GOVHUB_REDIS_URL=redis_url,
        GOVHUB_SECRET_KEY=secrets.token_urlsafe(32),
        GOVHUB_CREDENTIALS_KEY=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        GOVHUB_PUBLIC_BASE_URL=base,
        GOVHUB_WEIBO_API_BASE=f"{sandbox}/weibo",
        GOVHUB_WECHAT_API_BASE=f"{sandbox}/wechat",
    )

    step("govhub db upgrade")
    run([govhub, "db", "upgrade"], cwd=home, env=env)
    step("govhub orgs import / users create")
    (home / "orgs.csv").write_text(ORGS_CSV, "utf-8")
    run([govhub, "orgs", "import", "orgs.csv"], cwd=home, env=env)
    users = {"admin": "admin", "editor": "editor", "reviewer": "reviewer"}
    # The password policy wants three character classes: a random url-safe token alone has only
    # upper and lower case now and then (CI failed once on `CjBcnSccURkhSNQY`), so each password
    # carries a fixed digit-and-symbol tail.
    passwords = {name: secrets.token_urlsafe(12) + "-7a" for name in users}
    for name, role in users.items():
        run(
            [govhub, "users", "create", "--username", name, "--password", passwords[name],
             "--role", role, "--org", ORG],
            cwd=home, env=env,
        )  # fmt: skip

    step("starting govhub sandbox, serve, worker and beat")
    procs.start(
        "sandbox",
        [govhub, "sandbox", "--port", str(sandbox_port), "--public-base-url", base],
        cwd=home,
        env=env,
    )
    procs.start("serve", [govhub, "serve", "--port", str(hub_port)], cwd=home, env=env)
    procs.start("worker", [govhub, "worker", "--concurrency", "4"], cwd=home, env=env)
    procs.start("beat", [govhub, "beat"], cwd=home, env=env)

    with httpx.Client(timeout=30) as client:
        hub = Hub(base=base, sandbox=sandbox, client=client)

        def answers(url: str, status: int) -> httpx.Response | None:
            got = client.get(url, timeout=5)
            if got.status_code != status:
                raise NotYet(f"GET {url} answered {got.status_code}: {got.text[:300]}")
            return got

        wait_for(
            "the sandbox answers", lambda: answers(sandbox, 200), START_SECONDS, procs.check_alive
        )
        wait_for("/readyz answers 200", lambda: answers(f"{base}/readyz", 200), START_SECONDS, procs.check_alive)  # fmt: skip
        publish_one_post(hub, passwords, procs)
    step("ok: one post published to Weibo, WeChat and the release hall by the installed wheel")


def publish_one_post(hub: Hub, passwords: dict[str, str], procs: Processes) -> None:
    client = hub.client
    admin = hub.login("admin", passwords["admin"])

    step("binding Weibo and WeChat accounts to the sandboxes, and a hall account (REST API)")
    uid = "3000000001"
    minted = client.post(
        f"{hub.sandbox}/weibo/_sandbox/tokens", json={"uid": uid, "expires_in": 86400}
    )
    expect(minted, 200, "minting a Weibo token in the sandbox")
    weibo = hub.call(
        "POST", "/api/v1/accounts", admin, 201,
        json={
            "org_code": ORG, "platform": "weibo", "name": "贵州发布微博", "handle": uid,
            "credentials": {
                "access_token": minted.json()["access_token"], "uid": uid,
                "expires_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 86400)),
            },
        },
    )  # fmt: skip
    app_id, app_secret, token = (
        "wx" + secrets.token_hex(8),
        secrets.token_hex(16),
        secrets.token_hex(8),
    )
    registered = client.post(f"{hub.sandbox}/wechat/_sandbox/apps", json={"appid": app_id, "secret": app_secret})  # fmt: skip
    expect(registered, 200, "registering a WeChat app in the sandbox")
    wechat = hub.call(
        "POST", "/api/v1/accounts", admin, 201,
        json={
            "org_code": ORG, "platform": "wechat", "name": "贵州发布微信", "kind": "subscription",
            "handle": f"gh_{app_id}",
            "credentials": {"app_id": app_id, "app_secret": app_secret, "callback_token": token},
        },
    )  # fmt: skip
    callback = {"url": f"{hub.base}/callbacks/wechat/{wechat['id']}", "token": token}
    expect(
        client.post(f"{hub.sandbox}/wechat/_sandbox/apps/{app_id}/callback", json=callback),
        200,
        "pointing the WeChat sandbox's callback at the hub",
    )
    hall = hub.call(
        "POST", "/api/v1/accounts", admin, 201,
        json={"org_code": ORG, "platform": "hall", "name": "贵州发布厅"},
    )  # fmt: skip
    for account in (weibo, wechat):
        test = hub.call("POST", f"/api/v1/accounts/{account['id']}/test", admin)
        if test.get("ok") is not True:
            raise SmokeFailure(f"account {account['name']} does not reach its sandbox: {test}")

    step("editor: upload a cover, create and submit a post; reviewer: approve it")
    editor = hub.login("editor", passwords["editor"])
    cover = hub.call(
        "POST", "/api/v1/media", editor, 201, files={"file": ("cover.png", png(), "image/png")}
    )
    marker = secrets.token_hex(3)
    title = f"冒烟测试发布 {marker}"
    post = hub.call(
        "POST", "/api/v1/posts", editor, 201,
        json={
            "title": title,
            "body": "本稿件由生产安装冒烟测试发布，用于验证安装包完整可用。\n\n第二段：一次撰写，多平台发布。",
            "summary": f"生产安装冒烟测试 {marker}",
            "images": [cover["path"]],
            "target_account_ids": [weibo["id"], wechat["id"], hall["id"]],
        },
    )  # fmt: skip
    hub.call("POST", f"/api/v1/posts/{post['id']}/submit", editor)
    reviewer = hub.login("reviewer", passwords["reviewer"])
    hub.call("POST", f"/api/v1/posts/{post['id']}/approve", reviewer)

    step("waiting until every delivery is published")

    last: dict[str, str] = {}

    def all_published() -> list[dict[str, Any]] | None:
        deliveries: list[dict[str, Any]] = hub.call("GET", f"/api/v1/posts/{post['id']}", editor)[
            "deliveries"
        ]
        given_up = [d for d in deliveries if d["status"] in {"failed", "parked", "cancelled"}]
        if given_up:
            raise SmokeFailure(f"a delivery gave up: {given_up}")
        last.clear()
        last.update({d["platform"]: d["status"] for d in deliveries})
        if sorted(last) == ["hall", "wechat", "weibo"] and set(last.values()) == {"published"}:
            return deliveries
        return None

    try:
        deliveries = wait_for("every delivery published", all_published, PUBLISH_SECONDS, procs.check_alive)  # fmt: skip
    except SmokeFailure as exc:
        raise SmokeFailure(f"{exc}; deliveries: {last}") from None
    for delivery in deliveries:
        if not delivery["remote_url"]:
            raise SmokeFailure(f"published without a link: {delivery}")

    step("checking what landed: the sandboxes' copies, the hall page, a static file, English")
    weibo_posts = client.get(f"{hub.sandbox}/weibo/_sandbox/users/{uid}/posts").json()["posts"]
    hall_link = f"{hub.base}/hall/posts/{post['id']}"
    if not any(marker in p["text"] and hall_link in p["text"] for p in weibo_posts):
        raise SmokeFailure(
            f"the Weibo sandbox has no post with {marker} and {hall_link}: {weibo_posts}"
        )
    wechat_state = client.get(f"{hub.sandbox}/wechat/_sandbox/apps/{app_id}").json()
    if title not in json.dumps(wechat_state, ensure_ascii=False):
        raise SmokeFailure(f"the WeChat sandbox has no article titled {title}")
    page = client.get(f"{hub.base}/hall/posts/{post['id']}")
    expect(page, 200, "the release hall's page of the post")
    if title not in page.text:
        raise SmokeFailure(f"the hall page does not show the title {title}")
    css = client.get(f"{hub.base}/static/css/hub.css")
    expect(css, 200, "a static file (hub/static/css/hub.css)")
    english = client.get(f"{hub.base}/login", cookies={"govhub_lang": "en"})
    expect(english, 200, "the login page in English")
    if "Log in" not in english.text:
        raise SmokeFailure("the English catalog is not applied (no 'Log in' on /login)")


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def main() -> int:
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="govhub-smoke-"))
    (scratch / "logs").mkdir()
    procs = Processes(logs=scratch / "logs")
    ok = False
    try:
        smoke(scratch, procs)
        ok = True
    except SmokeFailure as exc:
        print(f"\nSMOKE FAILED: {exc}", file=sys.stderr)
    except Exception:  # a surprise answer: still stop everything and show the logs
        traceback.print_exc()
    finally:
        procs.stop()
        if not ok:
            procs.print_tails()
            print(f"\n(scratch folder kept: {scratch})", file=sys.stderr)
        elif os.environ.get("GOVHUB_SMOKE_KEEP") != "1":
            shutil.rmtree(scratch, ignore_errors=True)
    step(f"{'passed' if ok else 'FAILED'} in {time.monotonic() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
