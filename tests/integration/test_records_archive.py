"""`govhub archive --year` (issue 16 item 7): a year's published posts for the archives office.

Posts are written, approved, corrected and withdrawn through the post services on a timeline of
their own, and published to two Weibo accounts over HTTP against the Weibo sandbox, whose clock is
set to that timeline: the hub records when each copy went out as Weibo reports it.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from connectors.sandbox.server import RunningServer, serve
from connectors.sandbox.weibo import WeiboSandbox, WeiboSandboxConfig
from hub.accounts.models import AccountCreate, Platform
from hub.accounts.service import create as create_account
from hub.auditlog.models import AuditEntry
from hub.cli import app
from hub.config import get_settings
from hub.db import engine_for
from hub.delivery import service as engine
from hub.delivery.pacing import get_pacer
from hub.posts import service as posts
from hub.posts.models import PostCreate
from hub.records.service import archive_year
from hub.users.models import User
from hub.users.service import actor_of
from hub.users.who import Who
from tests.factories import credentials_key

BEIJING = ZoneInfo("Asia/Shanghai")


def beijing(*args: int) -> datetime:
    return datetime(*args, tzinfo=BEIJING).astimezone(UTC)


@pytest.fixture
def weibo(guizhou: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[WeiboSandbox]:
    sandbox = WeiboSandbox(WeiboSandboxConfig(safe_domains=("hall.test",)))
    server: RunningServer = serve(sandbox)
    monkeypatch.setenv("GOVHUB_WEIBO_API_BASE", server.base_url)
    monkeypatch.setenv("GOVHUB_TIMEZONE", "Asia/Shanghai")
    get_settings.cache_clear()
    yield sandbox
    server.stop()
    get_settings.cache_clear()


class Newsroom:
    """The Kaili press office on its own timeline: an editor, a reviewer, two Weibo accounts."""

    def __init__(self, url: str, weibo: WeiboSandbox) -> None:
        self.url, self.weibo = url, weibo
        self.accounts: dict[int, str] = {}
        with Session(engine_for(url)) as session:
            for name in ("凯里发布", "凯里市应急管理局"):
                token, uid = weibo.mint_token()
                account = create_account(
                    session=session,
                    data=AccountCreate(
                        org_code="522601",
                        platform=Platform("weibo"),
                        name=name,
                        credentials={"access_token": token, "uid": uid},
                    ),
                    credentials_key=credentials_key(),
                )
                session.commit()
                assert account.id is not None
                self.accounts[account.id] = uid

    def _who(self, session: Session, username: str) -> Who:
        user = session.exec(select(User).where(User.username == username)).one()
        return Who(user, actor_of(session=session, user=user))

    def _publish(self, ids: list[int], at: datetime) -> None:
        self.weibo.advance(at.timestamp() - self.weibo.now())  # Weibo's clock says `at`
        for delivery_id in ids:
            with Session(engine_for(self.url)) as session:
                outcome = engine.publish(
                    session=session, delivery_id=delivery_id, pacer=get_pacer(), now=at
                )
                assert outcome == "published"

    def draft(self, title: str, at: datetime) -> int:
        with Session(engine_for(self.url), expire_on_commit=False) as session:
            post = posts.create(
                session=session,
                who=self._who(session, "kaili-editor"),
                data=PostCreate(
                    title=title, body=f"{title}：正文。", target_account_ids=list(self.accounts)
                ),
                now=at,
            )
            session.commit()
            assert post.id is not None
            return post.id

    def approve_and_publish(self, post_id: int, at: datetime) -> None:
        with Session(engine_for(self.url), expire_on_commit=False) as session:
            post = posts.get(
                session=session, post_id=post_id, who=self._who(session, "kaili-editor")
            )
            if post.status.value == "draft":  # a correction is in review already
                posts.submit(
                    session=session, who=self._who(session, "kaili-editor"), post=post, now=at
                )
            _, ids = posts.approve(
                session=session,
                who=self._who(session, "kaili-reviewer"),
                post=post,
                now=at + timedelta(minutes=5),
                comment="同意发布",
            )
            session.commit()
        self._publish(ids, at + timedelta(minutes=6))

    def publish(self, title: str, at: datetime) -> int:
        """Write at ``at``, approve 5 minutes later, published a minute after that."""
        post_id = self.draft(title, at - timedelta(minutes=6))
        self.approve_and_publish(post_id, at - timedelta(minutes=6))
        return post_id

    def correct(self, post_id: int, note: str, at: datetime) -> None:
        with Session(engine_for(self.url), expire_on_commit=False) as session:
            who = self._who(session, "kaili-editor")
            post = posts.get(session=session, post_id=post_id, who=who)
            posts.correct(
                session=session,
                who=who,
                post=post,
                note=note,
                title=None,
                body="更正后的正文：转移时间改为下午三点。",
                summary=None,
                now=at,
            )
            session.commit()
        self.approve_and_publish(post_id, at)

    def withdraw(self, post_id: int, reason: str, at: datetime) -> None:
        with Session(engine_for(self.url), expire_on_commit=False) as session:
            who = self._who(session, "kaili-editor")
            post = posts.get(session=session, post_id=post_id, who=who)
            ids = posts.withdraw(session=session, who=who, post=post, reason=reason, now=at)
            session.commit()
        self.weibo.advance(at.timestamp() - self.weibo.now())
        for delivery_id in ids:
            with Session(engine_for(self.url)) as session:
                assert engine.withdraw(session=session, delivery_id=delivery_id, now=at) == (
                    "withdrawn"
                )


@pytest.fixture
def newsroom(guizhou: dict[str, str], weibo: WeiboSandbox) -> dict[str, Any]:
    room = Newsroom(guizhou["GOVHUB_DATABASE_URL"], weibo)
    # 00:30 on New Year's Day in Beijing is still 2024 in UTC: a 2025 record
    flood = room.publish("凯里市防汛转移通知", beijing(2025, 1, 1, 0, 30))
    room.correct(flood, "转移时间有误，已更正", beijing(2025, 1, 2, 9, 0))
    traffic = room.publish("凯里市交通管制公告", beijing(2025, 6, 15, 10, 0))
    room.withdraw(traffic, "管制已提前解除", beijing(2025, 6, 16, 9, 0))
    # 00:30 on New Year's Day 2026 in Beijing is still 2025 in UTC: a 2026 record
    newyear = room.publish("凯里市新年安全提示", beijing(2026, 1, 1, 0, 30))
    draft = room.draft("未发布的草稿", beijing(2025, 3, 1, 9, 0))
    return {"room": room, "flood": flood, "traffic": traffic, "newyear": newyear, "draft": draft}


def _open(path: Path) -> tuple[zipfile.ZipFile, str]:
    archive = zipfile.ZipFile(path)
    return archive, archive.namelist()[0].split("/")[0]


def test_a_years_archive_holds_its_published_posts_with_where_each_copy_landed(
    newsroom: dict[str, Any], tmp_path: Path
) -> None:
    room: Newsroom = newsroom["room"]
    flood, traffic = newsroom["flood"], newsroom["traffic"]
    target = tmp_path / "档案-2025.zip"

    done = CliRunner().invoke(app, ["archive", "--year", "2025", "-o", str(target)])
    assert done.exit_code == 0, done.output
    assert "2 posts of 2025" in done.output

    archive, root = _open(target)
    assert root == "govhub-archive-2025"
    names = archive.namelist()
    stems = [f"{root}/posts/{i:06d}" for i in (flood, traffic)]
    assert names == [
        f"{root}/index.json",
        f"{root}/index.html",
        *[f"{stem}.{ext}" for stem in stems for ext in ("json", "html")],
    ]  # the new-year post of 2026 and the draft are not there
    index = json.loads(archive.read(f"{root}/index.json"))
    assert [p["id"] for p in index["posts"]] == [flood, traffic]  # in the order they went public
    assert index["posts"][0]["first_published_at"] == "2025-01-01T00:30:00+08:00"

    record = json.loads(archive.read(f"{stems[0]}.json"))
    assert [v["version"] for v in record["versions"]] == [1, 2]
    assert record["versions"][1]["body"] == "更正后的正文：转移时间改为下午三点。"
    assert record["corrections"] == [
        {
            "version": 2,
            "note": "转移时间有误，已更正",
            "by": {"username": "kaili-editor", "display_name": "kaili-editor"},
            "at": "2025-01-02T09:00:00+08:00",
        }
    ]
    assert [(a["version"], a["by"]["username"], a["at"]) for a in record["approvals"]] == [
        (1, "kaili-reviewer", "2025-01-01T00:29:00+08:00"),
        (2, "kaili-reviewer", "2025-01-02T09:05:00+08:00"),
    ]
    sandbox_posts = {
        str(p.id): (account, p.created_at)
        for account, uid in room.accounts.items()
        for p in room.weibo.posts(uid)
    }
    landed = record["deliveries"]
    assert len(landed) == 4  # two accounts, two versions
    for copy in landed:
        assert copy["platform"] == "weibo" and copy["status"] == "published"
        assert sandbox_posts[copy["remote_id"]][0] == copy["account"]["id"]
        assert copy["remote_url"].startswith("http") and copy["remote_id"] in copy["remote_url"]
    assert sorted((c["version"], c["published_at"][:16]) for c in landed) == [
        (1, "2025-01-01T00:30"),
        (1, "2025-01-01T00:30"),
        (2, "2025-01-02T09:06"),
        (2, "2025-01-02T09:06"),
    ]
    assert record["withdrawal"] is None

    withdrawn = json.loads(archive.read(f"{stems[1]}.json"))
    assert withdrawn["status"] == "withdrawn"
    with Session(engine_for(room.url)) as session:  # who and when: as the audit log has it
        logged = session.exec(
            select(AuditEntry).where(
                AuditEntry.action == "post.withdraw", AuditEntry.object_id == str(traffic)
            )
        ).one()
    assert withdrawn["withdrawal"] == {
        "reason": "管制已提前解除",
        "by": {"username": "kaili-editor"},
        "at": logged.at.astimezone(BEIJING).isoformat(timespec="seconds"),
    }
    assert {(c["status"], c["withdrawn_at"]) for c in withdrawn["deliveries"]} == {
        ("withdrawn", "2025-06-16T09:00:00+08:00")
    }
    assert {c["account"]["name"] for c in withdrawn["deliveries"]} == {
        "凯里发布",
        "凯里市应急管理局",
    }

    page = archive.read(f"{root}/index.html").decode()
    assert "凯里市防汛转移通知" in page and "凯里市交通管制公告" in page
    assert "凯里市新年安全提示" not in page and "未发布的草稿" not in page
    assert (
        page.count("微博「凯里发布」") == 2
    )  # once per post, though the flood notice has 2 versions
    assert "微博「凯里市应急管理局」（已撤回）" in page
    assert index["posts"][1]["landed"] == [
        {"platform": "weibo", "platform_label": "微博", "account": name, "withdrawn": True}
        for name in ("凯里发布", "凯里市应急管理局")
    ]
    assert f'href="posts/{flood:06d}.html"' in page
    for stem, data in ((stems[0], record), (stems[1], withdrawn)):
        html = archive.read(f"{stem}.html").decode()
        assert data["title"] in html
        for copy in data["deliveries"]:
            assert copy["account"]["name"] in html and copy["remote_url"] in html
        assert "<script" not in html and "<link" not in html and "src=" not in html
    assert "管制已提前解除" in archive.read(f"{stems[1]}.html").decode()


def test_the_year_is_counted_in_govhub_timezone_and_the_export_is_reproducible(
    newsroom: dict[str, Any], tmp_path: Path
) -> None:
    settings = get_settings()
    exported = datetime(2026, 2, 1, tzinfo=UTC)
    made = []
    for name in ("a.zip", "b.zip"):
        with Session(engine_for(settings.database_url)) as session:
            done = archive_year(
                session=session,
                year=2026,
                tz=settings.tz,
                timezone=settings.timezone,
                now=exported,
                target=tmp_path / name,
                hub_version="test",
            )
        assert done.posts == 1
        made.append((tmp_path / name).read_bytes())
    assert made[0] == made[1]
    archive, root = _open(tmp_path / "a.zip")
    index = json.loads(archive.read(f"{root}/index.json"))
    assert [p["title"] for p in index["posts"]] == ["凯里市新年安全提示"]

    empty = CliRunner().invoke(app, ["archive", "--year", "2024", "-o", str(tmp_path / "e.zip")])
    assert empty.exit_code == 0 and "0 posts of 2024" in empty.output
    refused = CliRunner().invoke(app, ["archive", "--year", "2999"])
    assert refused.exit_code == 2 and "--year" in refused.output
