"""A platform defined only in the tests: a community notice board (社区公告栏).

The worked example of docs/adding-a-platform.md. It needs no HTTP: the "platform" is an
in-process :class:`NoticeBoard`, shared by every connector built in this process. Tests add it to
the hub with ``connectors.registry.register(BulletinConnector)`` (fixture ``bulletin`` in
tests/integration/test_plugin_platform.py); a packaged platform names its class in the
``govhub.connectors`` entry-point group instead.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

from connectors.base import (
    Account,
    Checkpoint,
    Content,
    CredentialField,
    Limits,
    PlatformInfo,
    Problem,
    Published,
    PublishOutcome,
    RemotePost,
    Rendition,
    Wiring,
)
from connectors.errors import AuthExpired, Rejected
from connectors.markup import markdown_to_text

PLATFORM = "bulletin"
TEXT_MAX = 500


@dataclass
class Notice:
    remote_id: str
    board: str
    key: str  # the hub's idempotency key
    title: str
    text: str
    created_at: datetime


@dataclass
class NoticeBoard:
    """The platform: boards by name, each with an access key and its notices."""

    keys: dict[str, str] = field(default_factory=dict)
    notices: dict[str, Notice] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def open_board(self, name: str, key: str) -> None:
        with self._lock:
            self.keys[name] = key

    def on(self, board: str) -> list[Notice]:
        with self._lock:
            return [n for n in self.notices.values() if n.board == board]

    def reset(self) -> None:
        with self._lock:
            self.keys.clear()
            self.notices.clear()
            self.calls.clear()


BOARD = NoticeBoard()


class BulletinConnector:
    """Posts a plain-text notice (title, text, link) on a community board."""

    platform: ClassVar[str] = PLATFORM
    limits: ClassVar[Limits] = Limits(text_max=TEXT_MAX, title_max=40, concurrency=2)
    info: ClassVar[PlatformInfo] = PlatformInfo(
        key=PLATFORM,
        label_zh="社区公告栏",
        label_en="Community board",
        audit_label_zh="社区公告栏",
        audit_label_en="community notice board",
        credentials=(
            CredentialField("board", secret=False, label="公告栏名称"),
            CredentialField("access_key", label="访问密钥"),
        ),
        order=50,
    )

    def __init__(self, board: NoticeBoard) -> None:
        self._board = board

    @classmethod
    def from_wiring(cls, wiring: Wiring) -> BulletinConnector:
        return cls(BOARD)

    def __repr__(self) -> str:
        return "BulletinConnector()"

    def render(self, content: Content) -> Rendition:
        text = content.overrides.get("bulletin.text") or markdown_to_text(content.body).strip()
        return Rendition(platform=PLATFORM, title=content.title, text=text, link=content.link)

    def check(self, rendition: Rendition) -> list[Problem]:
        problems = []
        if len(rendition.text) > TEXT_MAX:
            problems.append(
                Problem(
                    "bulletin.too_long",
                    f"公告正文超过{TEXT_MAX}字（当前{len(rendition.text)}字），请删减",
                    field="body",
                )
            )
        if len(rendition.title) > 40:
            problems.append(Problem("bulletin.title_too_long", "公告标题超过40字", field="title"))
        return problems

    def _open(self, account: Account) -> str:
        board = account.credentials.get("board", "")
        if self._board.keys.get(board) != account.credentials.get("access_key"):
            raise AuthExpired("公告栏访问密钥无效，请更新账号凭据", platform=PLATFORM)
        return board

    def _count(self, call: str) -> None:
        with self._board._lock:
            self._board.calls[call] = self._board.calls.get(call, 0) + 1

    def publish(
        self,
        account: Account,
        rendition: Rendition,
        *,
        idempotency_key: str,
        checkpoint: Checkpoint | None = None,
    ) -> PublishOutcome:
        board = self._open(account)
        self._count("publish")
        with self._board._lock:
            for notice in self._board.notices.values():
                if notice.board == board and notice.key == idempotency_key:
                    return Published(notice.remote_id, self._url(notice), notice.created_at)
            notice = Notice(
                remote_id=str(next(self._board._ids)),
                board=board,
                key=idempotency_key,
                title=rendition.title,
                text=f"{rendition.text}\n{rendition.link}".strip(),
                created_at=datetime.now(UTC),
            )
            self._board.notices[notice.remote_id] = notice
        return Published(notice.remote_id, self._url(notice), notice.created_at)

    def poll(self, account: Account, ref: str) -> PublishOutcome:
        self._open(account)
        notice = self._board.notices.get(ref)
        if notice is None:
            raise Rejected(f"公告 {ref} 不存在", platform=PLATFORM)
        return Published(notice.remote_id, self._url(notice), notice.created_at)

    def withdraw(self, account: Account, remote_id: str) -> None:
        self._open(account)
        self._count("withdraw")
        with self._board._lock:
            self._board.notices.pop(remote_id, None)  # already gone = done

    def recent(self, account: Account, since: str | None = None) -> list[RemotePost]:
        board = self._open(account)
        posts = [
            RemotePost(n.remote_id, n.created_at, self._url(n), n.text)
            for n in self._board.on(board)
            if since is None or int(n.remote_id) > int(since)
        ]
        return sorted(posts, key=lambda p: int(p.remote_id), reverse=True)

    @staticmethod
    def _url(notice: Notice) -> str:
        return f"https://board.example/{notice.board}/{notice.remote_id}"
