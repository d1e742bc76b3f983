"""`govhub backup` / `govhub restore` (issue 16 item 5): the embedded SQLite database and the media
folder in one checked archive, restored into a fresh place and migrated to this hub's head."""

from __future__ import annotations

import io
import json
import sqlite3
import zipfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session, select
from typer.testing import CliRunner

from hub.cli import app
from hub.config import get_settings
from hub.db import engine_for
from hub.delivery import service as engine
from hub.delivery.models import Delivery
from hub.delivery.pacing import get_pacer
from hub.migrate import current, upgrade
from hub.web.app import create_app
from tests.factories import token_for

runner = CliRunner()


@pytest.fixture
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Backups cover the embedded SQLite database only (PostgreSQL: pg_dump, tested below)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'govhub.sqlite3'}"
    upgrade(url)
    yield url
    engine_for(url).dispose()


def _head() -> str:
    from alembic.script import ScriptDirectory

    from hub.migrate import alembic_config

    return ",".join(sorted(ScriptDirectory.from_config(alembic_config("")).get_heads()))


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (120, 80), (20, 90, 160)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _rows(url: str, query: str) -> list[tuple[object, ...]]:
    path = url.removeprefix("sqlite:///")
    with closing(sqlite3.connect(path)) as connection:
        return connection.execute(query).fetchall()


POSTS = "SELECT id, title, status, current_version FROM posts ORDER BY id"
DELIVERIES = (
    "SELECT id, post_id, status, remote_id, remote_url, published_at FROM deliveries ORDER BY id"
)
AUDIT = "SELECT id, at, actor_name, action, object_id, summary FROM audit_log ORDER BY id"


def _point_at(monkeypatch: pytest.MonkeyPatch, database: Path, media: Path) -> str:
    """Configure the hub as an operator would for the restore: another database and media dir."""
    url = f"sqlite:///{database}"
    monkeypatch.setenv("GOVHUB_DATABASE_URL", url)
    monkeypatch.setenv("GOVHUB_MEDIA_DIR", str(media))
    get_settings.cache_clear()
    return url


@pytest.fixture
def published(client: TestClient, auth: dict[str, dict[str, str]]) -> dict[str, object]:
    """A published post with an uploaded image, and a draft: what a backup must carry."""
    image = _jpeg()
    uploaded = client.post(
        "/api/v1/media",
        files={"file": ("flood.jpg", image, "image/jpeg")},
        headers=auth["kaili-editor"],
    )
    assert uploaded.status_code == 201, uploaded.text
    account = client.post(
        "/api/v1/accounts",
        json={"org_code": "522601", "platform": "hall", "name": "凯里发布厅"},
        headers=auth["admin"],
    ).json()["id"]
    post = client.post(
        "/api/v1/posts",
        json={
            "title": "凯里市防汛通知",
            "body": "请做好防汛准备。",
            "target_account_ids": [account],
            "images": [uploaded.json()["path"]],
        },
        headers=auth["kaili-editor"],
    ).json()["id"]
    assert client.post(f"/api/v1/posts/{post}/submit", headers=auth["kaili-editor"]).is_success
    assert client.post(f"/api/v1/posts/{post}/approve", headers=auth["kaili-reviewer"]).is_success
    url = get_settings().database_url
    with Session(engine_for(url)) as session:
        ids = session.exec(select(Delivery.id).where(Delivery.post_id == post)).all()
    for delivery_id in ids:
        with Session(engine_for(url)) as session:
            assert engine.publish(session=session, delivery_id=delivery_id, pacer=get_pacer()) == (
                "published"
            )
    draft = client.post(
        "/api/v1/posts", json={"title": "草稿", "body": "未发"}, headers=auth["kaili-editor"]
    ).json()["id"]
    return {"post": post, "draft": draft, "image": image, "path": uploaded.json()["path"]}


def test_a_backup_restored_into_a_fresh_directory_has_every_post_delivery_audit_entry_and_image(
    published: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = get_settings().database_url
    before = {q: _rows(source, q) for q in (POSTS, DELIVERIES, AUDIT)}
    assert len(before[POSTS]) == 2 and before[DELIVERIES] and len(before[AUDIT]) >= 5
    assert [d[2] for d in before[DELIVERIES]] == ["published"] * len(before[DELIVERIES])
    archive = tmp_path / "govhub-backup.zip"
    variants = Path(get_settings().media_dir) / "variants"  # derived, made again on demand
    (variants / ".locks").mkdir(parents=True)
    (variants / f"{'0' * 64}-wechat-thumb-65536.jpg").write_bytes(b"thumb")

    made = runner.invoke(app, ["backup", str(archive)])
    assert made.exit_code == 0, made.output
    assert f"2 posts, {len(before[DELIVERIES])} deliveries" in made.output
    manifest = json.loads(zipfile.ZipFile(archive).read("manifest.json"))
    assert manifest["migration_revision"] == _head()
    assert manifest["counts"] == {
        "posts": 2,
        "deliveries": len(before[DELIVERIES]),
        "audit_log": len(before[AUDIT]),
    }
    assert set(manifest["members"]) == {"database.sqlite3", f"media/{published['path']}"}

    fresh = tmp_path / "elsewhere"
    url = _point_at(monkeypatch, fresh / "var" / "govhub.sqlite3", fresh / "media")
    restored = runner.invoke(app, ["restore", str(archive)])
    assert restored.exit_code == 0, restored.output
    assert "2 posts" in restored.output and "1 media files" in restored.output

    assert {q: _rows(url, q) for q in before} == before
    assert current(url) == _head()
    assert (fresh / "media" / str(published["path"])).read_bytes() == published["image"]
    with TestClient(create_app()) as client:
        shown = client.get(
            f"/api/v1/posts/{published['post']}", headers=token_for("kaili-editor", url)
        )
        assert shown.status_code == 200
        assert shown.json()["title"] == "凯里市防汛通知"
        assert [d["status"] for d in shown.json()["deliveries"]] == ["published"]
        image = client.get(f"/media/{published['path']}")
        assert image.status_code == 200 and image.content == published["image"]


def test_an_older_backup_is_migrated_to_this_hubs_head_on_restore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = tmp_path / "old.sqlite3"
    upgrade(f"sqlite:///{old}", "0013")
    _point_at(monkeypatch, old, tmp_path / "old-media")
    archive = tmp_path / "old.zip"
    assert runner.invoke(app, ["backup", str(archive)]).exit_code == 0
    assert (
        json.loads(zipfile.ZipFile(archive).read("manifest.json"))["migration_revision"] == "0013"
    )

    url = _point_at(monkeypatch, tmp_path / "new" / "govhub.sqlite3", tmp_path / "new-media")
    restored = runner.invoke(app, ["restore", str(archive)])
    assert restored.exit_code == 0, restored.output
    assert f"migrated from 0013 to {_head()}" in restored.output
    assert current(url) == _head()


def _rewrite(archive: Path, target: Path, change: str) -> None:
    """Copy ``archive`` to ``target`` with one member altered, dropped or added; same manifest."""
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(target, "w") as out:
        for name in src.namelist():
            data = src.read(name)
            if change == "media" and name.startswith("media/"):
                data = data[:-3] + b"\x00\x00\x00"
            if change == "database" and name == "database.sqlite3":
                data = data.replace("凯里市防汛通知".encode(), "凯里市防汛通告".encode())
            if change == "dropped" and name.startswith("media/"):
                continue
            out.writestr(name, data)
        if change == "added":
            out.writestr("media/../../../etc/cron.d/evil", b"* * * * * root sh")


@pytest.mark.parametrize("change", ["media", "database", "dropped", "added"])
def test_a_tampered_archive_is_refused_and_nothing_is_restored(
    published: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    archive, tampered = tmp_path / "good.zip", tmp_path / "tampered.zip"
    assert runner.invoke(app, ["backup", str(archive)]).exit_code == 0
    _rewrite(archive, tampered, change)

    fresh = tmp_path / "elsewhere"
    _point_at(monkeypatch, fresh / "govhub.sqlite3", fresh / "media")
    refused = runner.invoke(app, ["restore", str(tampered), "--force"])
    assert refused.exit_code == 1, refused.output
    assert "does not match its manifest" in refused.output
    expected = {
        "media": f"media/{published['path']}: its checksum",
        "database": "database.sqlite3: its checksum",
        "dropped": f"media/{published['path']}: in the manifest but missing",
        "added": "media/../../../etc/cron.d/evil: not a database or media file name",
    }[change]
    assert expected in refused.output
    assert not (fresh / "govhub.sqlite3").exists() and not (fresh / "media").exists()
    assert not fresh.exists() or list(fresh.iterdir()) == []  # no staging left behind

    assert runner.invoke(app, ["restore", str(archive)]).exit_code == 0  # the intact one restores


def test_restore_refuses_a_database_that_holds_data_unless_forced(
    published: dict[str, object],
    client: TestClient,
    auth: dict[str, dict[str, str]],
    tmp_path: Path,
) -> None:
    url = get_settings().database_url
    archive = tmp_path / "backup.zip"
    assert runner.invoke(app, ["backup", str(archive)]).exit_code == 0
    later = client.post(
        "/api/v1/posts",
        json={"title": "备份之后的稿件", "body": "正文"},
        headers=auth["kaili-editor"],
    ).json()["id"]

    refused = runner.invoke(app, ["restore", str(archive)])
    assert refused.exit_code == 1
    assert "holds data" in refused.output and "--force" in refused.output
    assert later in [row[0] for row in _rows(url, POSTS)]  # nothing was touched

    forced = runner.invoke(app, ["restore", str(archive), "--force"])
    assert forced.exit_code == 0, forced.output
    assert later not in [row[0] for row in _rows(url, POSTS)]  # back to the backup's state
    assert len(_rows(url, POSTS)) == 2
    aside = [
        line.removeprefix("kept aside: ") for line in forced.output.splitlines() if "aside" in line
    ]
    database_aside = next(p for p in aside if ".sqlite3.before-restore-" in p)
    assert later in [
        row[0] for row in _rows(f"sqlite:///{database_aside}", POSTS)
    ]  # kept, not lost
    assert any("media.before-restore-" in p for p in aside)
    media = Path(get_settings().media_dir)
    assert (media / str(published["path"])).read_bytes() == published["image"]


def test_postgresql_is_pointed_to_pg_dump(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GOVHUB_DATABASE_URL", "postgresql+psycopg://govhub@127.0.0.1:1/govhub")
    get_settings.cache_clear()
    for command in (["backup", str(tmp_path / "b.zip")], ["restore", str(tmp_path / "b.zip")]):
        answer = runner.invoke(app, command)
        assert answer.exit_code == 2
        assert "pg_dump -Fc" in answer.output and "pg_restore" in answer.output
        assert "docs/operations.md" in answer.output
        assert len(answer.output.strip().splitlines()) == 1
    get_settings.cache_clear()


def test_a_backup_inside_the_media_folder_or_a_missing_folder_is_refused(
    guizhou: dict[str, str], tmp_path: Path
) -> None:
    media = Path(guizhou["GOVHUB_MEDIA_DIR"])
    media.mkdir(parents=True, exist_ok=True)
    inside = runner.invoke(app, ["backup", str(media / "b.zip")])
    assert inside.exit_code == 2 and "outside the media folder" in inside.output
    missing = runner.invoke(app, ["backup", str(tmp_path / "no" / "b.zip")])
    assert missing.exit_code == 2 and "no such directory" in missing.output
    assert list(media.iterdir()) == []
