"""Approving a post to 1,000 accounts: 1,000 deliveries in one insert, 1,000 tasks on the broker
in one publish batch (embedded SQLite broker; the Redis broker with PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from connectors.variants import digest_of
from hub.accounts.models import AccountCreate, Platform
from hub.accounts.service import create as create_account
from hub.config import get_settings
from hub.db import engine_for
from hub.delivery import service as engine
from hub.delivery.models import Delivery
from hub.orgs.models import Org
from hub.users.models import Role
from scheduler.app import get_celery
from tests.engine.conftest import counties, cover_image
from tests.factories import make_user, token_for
from tests.images import press_photo

TARGETS = 1000


def add_accounts(database_url: str, n: int) -> list[int]:
    key = get_settings().credentials_key
    ids: list[int] = []
    with Session(engine_for(database_url)) as session:
        for i, code in enumerate(counties(database_url, n // 2)):
            org = session.exec(select(Org).where(Org.code == code)).one()
            for platform, creds in (
                ("wechat", {"app_id": f"wxbulk{i}", "app_secret": "s"}),
                ("weibo", {"access_token": f"t{i}", "uid": str(i)}),
            ):
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
        session.commit()
    return ids


def drain(queue: str = "celery") -> list[tuple[str, Any]]:
    """Every message on the broker's queue: (task name, args)."""
    found: list[tuple[str, Any]] = []
    with get_celery().connection_for_read() as connection:
        channel = connection.default_channel
        while (message := channel.basic_get(queue, no_ack=True)) is not None:
            args, _kwargs, _embed = message.decode()
            found.append((message.headers["task"], args))
    return found


def test_approving_a_thousand_targets_creates_and_enqueues_each_once(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    make_user(url, "gov-editor", Role.editor, "520000")
    make_user(url, "gov-reviewer", Role.reviewer, "520000")
    editor, reviewer = token_for("gov-editor", url), token_for("gov-reviewer", url)
    accounts = add_accounts(url, TARGETS)
    post = client.post(
        "/api/v1/posts",
        json={
            "title": "全省政务公开工作推进会召开",
            "body": "各地各部门要高度重视政务公开工作。",
            "target_account_ids": accounts,
            "images": [cover_image(Path(guizhou["GOVHUB_MEDIA_DIR"]))],
        },
        headers=editor,
    ).json()
    submitted = client.post(f"/api/v1/posts/{post['id']}/submit", headers=editor)
    assert submitted.status_code == 200, submitted.text
    drain()

    approved = client.post(f"/api/v1/posts/{post['id']}/approve", headers=reviewer)

    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "publishing"
    with Session(engine_for(url)) as session:
        rows = session.exec(select(Delivery).where(Delivery.post_id == post["id"])).all()
    assert sorted(d.account_id for d in rows) == sorted(accounts)  # one per account
    assert {str(d.status) for d in rows} == {"queued"}
    assert all(d.lease_until is not None for d in rows)  # the sweeper leaves them to the queue
    tasks = drain()
    assert sorted(tasks) == sorted(("delivery.publish", [d.id]) for d in rows)
    # costliest first: every WeChat copy is on the queue before the first Weibo copy
    wechat = set(accounts[0::2])
    account_of = {d.id: d.account_id for d in rows}
    kinds = ["wechat" if account_of[args[0]] in wechat else "weibo" for _, args in tasks]
    assert kinds == ["wechat"] * (TARGETS // 2) + ["weibo"] * (TARGETS // 2)


def test_a_failed_publish_batch_stores_nothing(hub_env: dict[str, str]) -> None:
    """The embedded broker stores a batch in one transaction: all of it, or none of it (the
    deliveries' rows are the outbox: the sweeper enqueues them again)."""
    app = get_celery()
    drain()
    with app.producer_or_acquire() as producer, producer.batch():
        for i in range(3):
            app.send_task("delivery.publish", args=[i], producer=producer)
    assert sorted(drain()) == [("delivery.publish", [i]) for i in range(3)]

    with pytest.raises(RuntimeError), app.producer_or_acquire() as producer, producer.batch():
        app.send_task("delivery.publish", args=[10], producer=producer)
        raise RuntimeError("the web process died mid-batch")
    engine.enqueue([11])
    assert drain() == [("delivery.publish", [11])]


def test_submitting_makes_the_press_photos_thumb_before_the_fan_out(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    """The variant is made once per picture when the version is submitted: the fan-out's WeChat
    copies read it (docs/delivery.md, "Image variants")."""
    url = guizhou["GOVHUB_DATABASE_URL"]
    make_user(url, "gov-editor", Role.editor, "520000")
    editor = token_for("gov-editor", url)
    media = Path(guizhou["GOVHUB_MEDIA_DIR"])
    media.mkdir(parents=True, exist_ok=True)
    photo = press_photo()
    (media / "press.jpg").write_bytes(photo)
    accounts = add_accounts(url, 2)
    post = client.post(
        "/api/v1/posts",
        json={
            "title": "全省政务公开工作推进会召开",
            "body": "各地各部门要高度重视政务公开工作。",
            "target_account_ids": accounts,
            "images": ["press.jpg"],
        },
        headers=editor,
    ).json()
    variants = media / "variants"
    assert not variants.exists()  # writing and previewing a draft makes nothing

    submitted = client.post(f"/api/v1/posts/{post['id']}/submit", headers=editor)

    assert submitted.status_code == 200, submitted.text
    [thumb] = [p for p in variants.iterdir() if not p.name.startswith(".")]
    assert thumb.name == f"{digest_of(photo)}-wechat-thumb-65536.jpg"
    assert len(thumb.read_bytes()) <= 64 * 1024
