"""Key events to Weibo through the database path: 40 key events in 10 minutes to one account,
within a plan a reviewer approved before the start, become approved posts with deliveries, never
more than 30 an hour, none lost. A key event outside any plan waits for a second person."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from hub.auditlog.models import AuditEntry
from hub.db import engine_for
from hub.delivery.models import Delivery
from hub.live import rules, service
from hub.live.models import LiveEntry, LiveFanout
from hub.posts.models import Approval, Post, PostVersion
from tests.integration.test_live_api import account, new_session

pytestmark = pytest.mark.integration


def test_forty_key_events_in_ten_minutes_are_paced_merged_and_all_sent(
    client: TestClient, auth: dict[str, dict[str, str]], guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    weibo = account(url, "522601", "weibo")
    editor = auth["kaili-editor"]
    live = new_session(
        client, editor, target_account_ids=[weibo], plan="审议营商环境条例等议题的要点"
    )
    base = f"/api/v1/live-sessions/{live['id']}"
    plan = client.post(f"{base}/plan/approve", headers=auth["kaili-reviewer"])
    assert plan.status_code == 200, plan.text
    client.post(f"{base}/start", headers=editor)
    t0 = datetime.now(UTC)
    engine = engine_for(url)
    for i in range(40):
        response = client.post(
            f"{base}/entries",
            json={"text": f"第{i + 1}项要点内容", "key_event": True},
            headers=editor,
        )
        assert response.status_code == 201
    client.post(f"{base}/entries", json={"text": "普通条目"}, headers=editor)
    with Session(engine) as session:  # spread the key events over 10 minutes
        for entry in session.exec(select(LiveEntry)).all():
            entry.created_at = t0 + timedelta(seconds=15 * (entry.seq - 1))
            session.add(entry)
        session.commit()

    now = t0
    while now <= t0 + timedelta(minutes=30):  # the beat task every 3 s, in simulated time
        with Session(engine, expire_on_commit=False) as session:
            due = [e for e in session.exec(select(LiveEntry)).all() if e.created_at > now]
            for entry in due:  # entries not yet written at this simulated moment are held back
                entry.key_event = False
                session.add(entry)
            session.flush()
            service.fanout(session=session, now=now)
            for entry in due:
                entry.key_event = entry.seq <= 40
                session.add(entry)
            session.commit()
        now += timedelta(seconds=3)

    with Session(engine) as session:
        fanouts = session.exec(select(LiveFanout).order_by(col(LiveFanout.seq))).all()
        deliveries = session.exec(select(Delivery).where(Delivery.account_id == weibo)).all()
        versions = {v.post_id: v for v in session.exec(select(PostVersion)).all()}
        posts = {p.id: p for p in session.exec(select(Post)).all()}
        approvals = session.exec(select(Approval)).all()
        audit = session.exec(select(AuditEntry).where(AuditEntry.action == "post.approve")).all()
    assert [f.seq for f in fanouts] == list(range(1, 41))  # every key event once, none other
    assert rules.sends_in_any_window([d.created_at for d in deliveries]) <= 30
    by_post: dict[int, list[int]] = {}
    for f in fanouts:
        by_post.setdefault(f.post_id, []).append(f.seq)
    assert any(len(seqs) > 1 for seqs in by_post.values())  # some were merged
    for post_id, seqs in by_post.items():
        post, version = posts[post_id], versions[post_id]
        assert post.status.value == "publishing" and post.approved_version == 1
        text = version.overrides["weibo.text"]
        assert all(f"第{s}项要点内容" in version.body for s in seqs)
        assert all(f"第{s}项要点内容" in text for s in seqs) or f"#e{seqs[0]}" in text
    assert len(approvals) == len(by_post) and len(audit) == len(by_post)
    reviewer = plan.json()["plan_approved_by"]
    assert {a.reviewer_id for a in approvals} == {reviewer}  # the plan's reviewer, not the author
    assert {a.actor_id for a in audit} == {reviewer}
    delays = [
        d.created_at - (t0 + timedelta(seconds=15 * (seq - 1)))
        for d in deliveries
        for post_id, seqs in by_post.items()
        if d.post_id == post_id
        for seq in seqs
    ]
    assert max(delays) <= timedelta(minutes=10)
