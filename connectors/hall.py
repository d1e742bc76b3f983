"""The hub's own public release hall (发布厅) as a channel: synchronous and instant.

Publishing saves an entry through a :class:`HallStore`; the hub provides a database-backed store,
tests use :class:`MemoryHallStore`. The body is Markdown rendered to sanitised HTML
(:mod:`connectors.markup`) through ``templates/channels/hall.html.j2``. Publishing twice with the
same idempotency key returns the first entry: the hall never shows a post twice.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, Protocol

from markupsafe import Markup

from connectors.base import (
    Account,
    Checkpoint,
    Content,
    Limits,
    PlatformInfo,
    Problem,
    Published,
    PublishOutcome,
    RemotePost,
    Rendition,
    Wiring,
)
from connectors.errors import Rejected
from connectors.markup import markdown_to_html, markdown_to_text, sanitize_html
from connectors.markup import template_environment as _template_environment

PLATFORM = "hall"
TEMPLATE = "channels/hall.html.j2"
MB = 1024 * 1024


@dataclass(frozen=True)
class HallEntry:
    """One post on one account's stream of the release hall."""

    account_id: int
    idempotency_key: str
    title: str
    html: str
    text: str
    link: str = ""
    entry_id: str = ""
    url: str = ""
    created_at: datetime | None = None


class HallStore(Protocol):
    """Where hall entries live. ``save`` returns the existing entry for a known idempotency key."""

    def save(self, entry: HallEntry) -> HallEntry: ...

    def get(self, account_id: int, entry_id: str) -> HallEntry | None: ...

    def delete(self, account_id: int, entry_id: str) -> bool: ...

    def recent(self, account_id: int, since: str | None = None) -> list[HallEntry]:
        """Entries newer than entry ``since``, newest first."""
        ...


class MemoryHallStore:
    """A :class:`HallStore` in a dict (tests, demos). Entry ids are increasing integers."""

    def __init__(self, public_base_url: str, *, clock: Callable[[], datetime] | None = None):
        self._base = public_base_url.rstrip("/")
        self._clock = clock or (lambda: datetime.now(UTC))
        self._entries: dict[str, HallEntry] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryHallStore(entries={len(self._entries)})"

    def save(self, entry: HallEntry) -> HallEntry:
        with self._lock:
            for existing in self._entries.values():
                if (existing.account_id, existing.idempotency_key) == (
                    entry.account_id,
                    entry.idempotency_key,
                ):
                    return existing
            entry_id = str(next(self._ids))
            stored = replace(
                entry,
                entry_id=entry_id,
                url=f"{self._base}/hall/entries/{entry_id}",
                created_at=self._clock(),
            )
            self._entries[entry_id] = stored
            return stored

    def get(self, account_id: int, entry_id: str) -> HallEntry | None:
        with self._lock:
            entry = self._entries.get(entry_id)
        return entry if entry is not None and entry.account_id == account_id else None

    def delete(self, account_id: int, entry_id: str) -> bool:
        with self._lock:
            entry = self._entries.get(entry_id)
            if entry is None or entry.account_id != account_id:
                return False
            del self._entries[entry_id]
            return True

    def recent(self, account_id: int, since: str | None = None) -> list[HallEntry]:
        floor = int(since) if since and since.isdigit() else 0
        with self._lock:
            entries = [
                e
                for e in self._entries.values()
                if e.account_id == account_id and int(e.entry_id) > floor
            ]
        return sorted(entries, key=lambda e: int(e.entry_id), reverse=True)


class HallConnector:
    """Publishes to the release hall through a :class:`HallStore`."""

    platform: ClassVar[str] = PLATFORM
    limits: ClassVar[Limits] = Limits(
        title_max=100,
        image_max_bytes=10 * MB,
        image_types=("image/jpeg", "image/png", "image/gif", "image/webp"),
    )
    info: ClassVar[PlatformInfo] = PlatformInfo(
        key=PLATFORM,
        label_zh="发布厅",
        label_en="Release hall",
        audit_label_zh="发布厅",
        audit_label_en="release hall page",
        templates=("hall.html.j2",),
        order=30,
        audited=False,
        needs_credentials=False,
        builtin_channel=True,
    )

    def __init__(
        self,
        store: HallStore,
        *,
        public_base_url: str,
        templates_dir: str | Path | None = None,
    ) -> None:
        self._store = store
        self.public_base_url = public_base_url.rstrip("/")
        self._templates = _template_environment(templates_dir)

    @classmethod
    def from_wiring(cls, wiring: Wiring) -> HallConnector:
        return cls(
            wiring.service("hall_store", PLATFORM),
            public_base_url=wiring.settings.public_base_url,
        )

    def __repr__(self) -> str:
        return f"HallConnector(public_base_url={self.public_base_url!r})"

    def render(self, content: Content) -> Rendition:
        body = Markup(markdown_to_html(content.body))
        page = self._templates.get_template(TEMPLATE).render(
            title=content.title,
            body=body,
            images=content.images,
            org_name=content.org_name,
            published_at=content.published_at,
            link=content.link,
            correction_note=content.correction_note,
        )
        link = content.link or f"{self.public_base_url}/posts/{content.post_id}"
        return Rendition(
            platform=PLATFORM,
            text=content.summary or markdown_to_text(content.body),
            title=content.title,
            html=sanitize_html(page),
            link=link,
            images=content.images,
            meta={"post_id": str(content.post_id), "version": str(content.version)},
        )

    def check(self, rendition: Rendition) -> list[Problem]:
        problems = []
        if not rendition.title.strip():
            problems.append(Problem("hall.title_missing", "发布厅稿件标题不能为空", "title"))
        elif self.limits.title_max and len(rendition.title) > self.limits.title_max:
            problems.append(
                Problem(
                    "hall.title_too_long",
                    f"发布厅稿件标题超过{self.limits.title_max}字（当前{len(rendition.title)}字），请缩短",
                    "title",
                )
            )
        if not rendition.text.strip() and not rendition.images:
            problems.append(Problem("hall.empty", "发布厅稿件正文不能为空", "body"))
        return problems

    def publish(
        self,
        account: Account,
        rendition: Rendition,
        *,
        idempotency_key: str,
        checkpoint: Checkpoint | None = None,
    ) -> PublishOutcome:
        """Save the entry; the store is idempotent by key, so no checkpoint is needed."""
        entry = self._store.save(
            HallEntry(
                account_id=account.id,
                idempotency_key=idempotency_key,
                title=rendition.title,
                html=rendition.html,
                text=rendition.text,
                link=rendition.link,
            )
        )
        return Published(entry.entry_id, entry.url, entry.created_at)

    def poll(self, account: Account, ref: str) -> PublishOutcome:
        entry = self._store.get(account.id, ref)
        if entry is None:
            raise Rejected(
                "发布厅中没有这条稿件（可能已被撤回）", platform=PLATFORM, code="hall.gone"
            )
        return Published(entry.entry_id, entry.url, entry.created_at)

    def withdraw(self, account: Account, remote_id: str) -> None:
        """Delete the entry; an entry already gone counts as withdrawn."""
        self._store.delete(account.id, remote_id)

    def recent(self, account: Account, since: str | None = None) -> list[RemotePost]:
        return [
            RemotePost(e.entry_id, e.created_at or datetime.now(UTC), e.url, e.text)
            for e in self._store.recent(account.id, since)
        ]
