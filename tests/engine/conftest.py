"""The delivery engine end to end: sandboxes over real HTTP, a real Celery worker process.

``Matrix`` registers accounts bound to the Weibo and WeChat sandboxes; ``worker`` and ``beat``
run the hub's own commands (``python -m hub worker``/``beat``) against the test database and
broker, exactly as in production.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from PIL import Image as PILImage
from sqlmodel import Session, col, select

from connectors.sandbox.server import RunningServer, serve
from connectors.sandbox.wechat import WechatSandbox
from connectors.sandbox.weibo import WeiboSandbox, WeiboSandboxConfig
from hub.accounts.models import Account, AccountCreate, Platform
from hub.accounts.service import create as create_account
from hub.config import get_settings
from hub.db import engine_for
from hub.delivery.models import Attempt, Delivery
from hub.orgs.models import Org, OrgLevel
from hub.users.models import Role
from tests.factories import load_guizhou, make_user

T = TypeVar("T")


def wechat_accounts(matrix: Matrix, accounts: list[int]) -> set[int]:
    """Which of ``accounts`` are WeChat accounts."""
    with Session(engine_for(matrix.database_url)) as session:
        return {
            account_id
            for account_id in session.exec(
                select(Account.id).where(
                    col(Account.id).in_(accounts), Account.platform == Platform("wechat")
                )
            ).all()
            if account_id is not None
        }


def wait_for(condition: Callable[[], T], timeout: float = 60.0, what: str = "condition") -> T:
    """Poll until ``condition()`` is truthy (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s (last: {value!r})")
        time.sleep(0.05)


@dataclass
class Platforms:
    weibo: WeiboSandbox
    wechat: WechatSandbox
    servers: list[RunningServer] = field(default_factory=list)


@pytest.fixture(scope="session")
def sandboxes() -> Iterator[Platforms]:
    weibo = WeiboSandbox(WeiboSandboxConfig(safe_domains=("hall.test", "127.0.0.1")))
    wechat = WechatSandbox()
    servers = [serve(weibo), serve(wechat)]
    yield Platforms(weibo, wechat, servers)
    for server in servers:
        server.stop()
    wechat.close()


@pytest.fixture
def platforms(
    sandboxes: Platforms, hub_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Platforms:
    sandboxes.weibo.reset()
    sandboxes.wechat.reset()
    sandboxes.wechat.configure(publish_delay=0.2)
    monkeypatch.setenv("GOVHUB_WEIBO_API_BASE", sandboxes.servers[0].base_url)
    monkeypatch.setenv("GOVHUB_WECHAT_API_BASE", sandboxes.servers[1].base_url)
    monkeypatch.setenv("GOVHUB_DELIVERY_LEASE_SECONDS", "8")
    monkeypatch.setenv("GOVHUB_ENQUEUE_LEASE_SECONDS", "15")
    get_settings.cache_clear()
    return sandboxes


def cover_image(media_dir: Path) -> str:
    media_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    PILImage.new("RGB", (900, 500), (180, 30, 30)).save(buffer, "JPEG", quality=90)
    (media_dir / "cover.jpg").write_bytes(buffer.getvalue())
    return "cover.jpg"


@dataclass
class Matrix:
    database_url: str
    platforms: Platforms
    weibo_uids: dict[int, str] = field(default_factory=dict)  # account id -> sandbox uid
    wechat_apps: dict[int, str] = field(default_factory=dict)  # account id -> appid

    def add_accounts(self, org_codes: list[str], platforms: tuple[str, ...]) -> list[int]:
        ids: list[int] = []
        key = get_settings().credentials_key
        with Session(engine_for(self.database_url)) as session:
            for code in org_codes:
                org = session.exec(select(Org).where(Org.code == code)).one()
                for platform in platforms:
                    if platform == "weibo":
                        token, uid = self.platforms.weibo.mint_token()
                        creds = {"access_token": token, "uid": uid}
                    else:
                        appid = f"wx{org.code.replace('-', '')}{len(self.wechat_apps)}"
                        self.platforms.wechat.add_app(appid, f"secret-{appid}")
                        creds = {"app_id": appid, "app_secret": f"secret-{appid}"}
                    account = create_account(
                        session=session,
                        data=AccountCreate(
                            org_code=code,
                            platform=Platform(platform),
                            name=f"{org.name}{platform}",
                            credentials=creds,
                        ),
                        credentials_key=key,
                        org=org,
                    )
                    assert account.id is not None
                    ids.append(account.id)
                    if platform == "weibo":
                        self.weibo_uids[account.id] = creds["uid"]
                    else:
                        self.wechat_apps[account.id] = creds["app_id"]
            session.commit()
        return ids

    def copies(self, account_id: int, marker: str) -> int:
        """How many copies carrying ``marker`` the platform holds for the account."""
        if account_id in self.weibo_uids:
            posts = self.platforms.weibo.posts(self.weibo_uids[account_id])
            return sum(1 for p in posts if marker in p.text)
        state = self.platforms.wechat.state(self.wechat_apps[account_id])
        return sum(
            1
            for p in state["publications"]
            if any(marker in a.get("title", "") for a in p["articles"]) and not any(p["deleted"])
        )

    def deliveries(self, post_id: int) -> list[Delivery]:
        with Session(engine_for(self.database_url)) as session:
            return list(session.exec(select(Delivery).where(Delivery.post_id == post_id)).all())

    def wait_published(self, post_id: int, count: int, timeout: float = 240) -> None:
        """Wait until ``count`` deliveries are published; on timeout, say what is stuck and why."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.statuses(post_id) == {"published": count}:
                return
            time.sleep(0.1)
        with Session(engine_for(self.database_url)) as session:
            stuck = session.exec(
                select(Delivery).where(Delivery.post_id == post_id, Delivery.status != "published")
            ).all()
            lines = []
            for d in stuck[:10]:
                attempts = session.exec(
                    select(Attempt).where(Attempt.delivery_id == d.id).order_by(col(Attempt.id))
                ).all()
                lines.append(
                    f"{d.id} {d.status.value} next={d.next_attempt_at} lease={d.lease_until} "
                    f"err={d.error!r} attempts="
                    + "; ".join(f"{a.action}:{a.outcome}:{a.platform_code}" for a in attempts)
                )
        raise AssertionError(
            f"not all {count} published within {timeout}s: {self.statuses(post_id)}\n"
            + "\n".join(lines)
        )

    def statuses(self, post_id: int) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.deliveries(post_id):
            out[d.status.value] = out.get(d.status.value, 0) + 1
        return out


@pytest.fixture
def matrix(platforms: Platforms, hub_env: dict[str, str]) -> Matrix:
    url = hub_env["GOVHUB_DATABASE_URL"]
    load_guizhou(url)
    make_user(url, "prov-editor", Role.editor, "520000-xwb")
    make_user(url, "prov-reviewer", Role.reviewer, "520000-xwb")
    make_user(url, "admin", Role.admin, "520000")
    return Matrix(url, platforms)


def counties(database_url: str, n: int) -> list[str]:
    with Session(engine_for(database_url)) as session:
        rows = session.exec(select(Org.code).where(Org.level == OrgLevel.county)).all()
    codes = sorted(rows)
    if n > len(codes):  # more than Guizhou has: the test makes its own orgs below the province
        extra = n - len(codes)
        from hub.orgs.service import import_rows, parse_csv

        csv = "code,name,level,parent_code\n" + "".join(
            f"9{i:05d},测试县{i},county,520100\n" for i in range(extra)
        )
        with Session(engine_for(database_url)) as session:
            from datetime import date

            import_rows(session=session, rows=parse_csv(csv), today=date(2026, 1, 1))
            session.commit()
        codes += [f"9{i:05d}" for i in range(extra)]
    return codes[:n]


class Process:
    """A hub process (worker or beat) in its own session, stopped or killed by the test."""

    def __init__(self, args: list[str], cwd: Path, log: Path) -> None:
        self.args = args
        self.cwd = cwd
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hub", *self.args],
            cwd=self.cwd,
            env=dict(os.environ),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group: no clean-up, no acks."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def start(*args: str) -> Process:
        proc = Process(list(args), tmp_path, tmp_path / f"{args[0]}-{len(started)}.log").start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def post_body(**extra: Any) -> dict[str, Any]:
    return {
        "title": "全省政务公开工作推进会召开",
        "body": "## 会议要求\n\n各地各部门要**高度重视**政务公开工作。" * 3,
        "summary": "全省政务公开工作推进会今天召开，部署下一阶段重点任务。",
        **extra,
    }


def withdraw_post(database_url: str, post_id: int, reason: str = "信息有误，统一撤回") -> None:
    """The editor withdraws the post through the API (every copy is taken down)."""
    from fastapi.testclient import TestClient

    from hub.web.app import create_app
    from tests.factories import token_for

    with TestClient(create_app()) as client:
        response = client.post(
            f"/api/v1/posts/{post_id}/withdraw",
            json={"reason": reason},
            headers=token_for("gov-editor", database_url),
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "withdrawn"
