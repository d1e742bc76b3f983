"""WeChat through the API and the engine: publish and push (群发), and a lost submit answer.

Posts are written, submitted and approved through the REST API; the engine runs in-process
against the WeChat sandbox over real HTTP (``run_worker`` = one sweep and one publish task at a
chosen moment), so the grace period is crossed by passing ``now``, never by sleeping.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from connectors.sandbox.wechat import Fault, WechatSandbox
from hub.config import get_settings
from hub.db import engine_for
from hub.delivery import service
from hub.delivery.models import Delivery, DeliveryStatus
from hub.sqltypes import utcnow
from hub.users.models import Role
from hub.web.app import create_app
from tests.engine.conftest import Matrix, counties, cover_image, post_body, wait_for
from tests.engine.test_takeover import attempts, run_worker, status
from tests.factories import make_user, token_for

pytestmark = pytest.mark.integration


class Newsroom:
    """An editor and a reviewer of the province, and an admin, talking to the API."""

    def __init__(self, matrix: Matrix, client: TestClient, media_dir: Path) -> None:
        url = matrix.database_url
        make_user(url, "gov-editor", Role.editor, "520000")
        make_user(url, "gov-reviewer", Role.reviewer, "520000")
        self.matrix, self.client, self.media = matrix, client, media_dir
        self.editor = token_for("gov-editor", url)
        self.reviewer = token_for("gov-reviewer", url)
        self.admin = token_for("admin", url)

    def set_kind(self, account: int, kind: str) -> None:
        answer = self.client.patch(
            f"/api/v1/accounts/{account}", json={"kind": kind}, headers=self.admin
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["kind"] == kind

    def draft(self, accounts: list[int], **extra: Any) -> int:
        body = post_body(target_account_ids=accounts, images=[cover_image(self.media)], **extra)
        created = self.client.post("/api/v1/posts", json=body, headers=self.editor)
        assert created.status_code == 201, created.text
        return int(created.json()["id"])

    def submit(self, post_id: int) -> Any:
        return self.client.post(f"/api/v1/posts/{post_id}/submit", headers=self.editor)

    def approve(self, post_id: int) -> dict[str, Any]:
        approved = self.client.post(f"/api/v1/posts/{post_id}/approve", headers=self.reviewer)
        assert approved.status_code == 200, approved.text
        return dict(approved.json())

    def publish(self, accounts: list[int], **extra: Any) -> int:
        post_id = self.draft(accounts, **extra)
        submitted = self.submit(post_id)
        assert submitted.status_code == 200, submitted.text
        self.approve(post_id)
        return post_id

    def deliveries(self, post_id: int) -> list[dict[str, Any]]:
        answer = self.client.get(f"/api/v1/posts/{post_id}", headers=self.editor)
        assert answer.status_code == 200, answer.text
        return list(answer.json()["deliveries"])


@pytest.fixture
def newsroom(matrix: Matrix, hub_env: dict[str, str]) -> Iterator[Newsroom]:
    with TestClient(create_app()) as client:
        yield Newsroom(matrix, client, Path(hub_env["GOVHUB_MEDIA_DIR"]))


@pytest.fixture
def sandbox(matrix: Matrix) -> WechatSandbox:
    return matrix.platforms.wechat


def one_account(matrix: Matrix) -> int:
    (account,) = matrix.add_accounts(counties(matrix.database_url, 1), ("wechat",))
    return account


def delivery_of(matrix: Matrix, post_id: int, account: int) -> Delivery:
    return next(d for d in matrix.deliveries(post_id) if d.account_id == account)


def poll(delivery_id: int) -> str:
    with Session(engine_for(get_settings().database_url), expire_on_commit=False) as session:
        return service.poll(session=session, delivery_id=delivery_id, now=utcnow())


# -- publish and push ---------------------------------------------------------------------------


def test_push_chosen_in_the_api_mass_sends_once_with_the_clientmsgid(
    matrix: Matrix, newsroom: Newsroom, sandbox: WechatSandbox
) -> None:
    account = one_account(matrix)
    newsroom.set_kind(account, "subscription")
    quota = newsroom.client.get("/api/v1/accounts/push-quota", headers=newsroom.editor).json()
    assert {q["account_id"]: q["words"] for q in quota}[account] == "今日剩余 1 次"

    post_id = newsroom.draft([account], wechat_modes={str(account): "push"}, wechat_comments="open")
    post = newsroom.client.get(f"/api/v1/posts/{post_id}", headers=newsroom.editor).json()
    assert post["wechat_modes"] == {str(account): "push"}
    assert post["wechat_comments"] == "open"
    assert newsroom.submit(post_id).status_code == 200
    newsroom.approve(post_id)
    delivery = delivery_of(matrix, post_id, account)
    assert delivery.id is not None

    assert run_worker(delivery.id) == "pending"
    appid = matrix.wechat_apps[account]
    [job] = sandbox.mass_jobs(appid)
    assert job["clientmsgid"] == f"{post_id}:{delivery.version}:{account}"
    assert job["need_open_comment"] == [1]
    assert sandbox.state(appid)["publications"] == [], "pushed, not freepublished"
    wait_for(lambda: poll(delivery.id) == "published", 30, "the push to finish")

    [shown] = newsroom.deliveries(post_id)
    assert shown["status"] == "published"
    assert shown["mode"] == "push"
    assert shown["msg_data_id"] == str(job["msg_data_id"])
    assert shown["remote_id"] == f"mass:{job['msg_id']}"
    assert len(sandbox.mass_jobs(appid)) == 1
    assert sandbox.calls(appid)["/cgi-bin/message/mass/sendall"] == 1
    quota = newsroom.client.get("/api/v1/accounts/push-quota", headers=newsroom.editor).json()
    assert {q["account_id"]: q["remaining"] for q in quota}[account] == 0


def test_a_push_over_quota_is_refused_at_submit_in_chinese(
    matrix: Matrix, newsroom: Newsroom
) -> None:
    account = one_account(matrix)
    newsroom.set_kind(account, "subscription")
    newsroom.publish([account], wechat_modes={str(account): "push"})  # today's one push

    second = newsroom.draft([account], wechat_modes={str(account): "push"})
    refused = newsroom.submit(second)
    assert refused.status_code == 422
    assert "今日群发次数已用完" in refused.text
    post = newsroom.client.get(f"/api/v1/posts/{second}", headers=newsroom.editor).json()
    assert post["status"] == "draft", "nothing was lost: the draft stays a draft"
    # publishing (no push) the same post is fine
    changed = newsroom.client.patch(
        f"/api/v1/posts/{second}",
        json={"wechat_modes": {str(account): "publish"}},
        headers=newsroom.editor,
    )
    assert changed.status_code == 200, changed.text
    assert newsroom.submit(second).status_code == 200


def test_push_needs_the_account_kind_and_a_wechat_account(
    matrix: Matrix, newsroom: Newsroom
) -> None:
    account = one_account(matrix)
    post_id = newsroom.draft([account], wechat_modes={str(account): "push"})
    refused = newsroom.submit(post_id)
    assert refused.status_code == 422
    assert "尚未设置类型" in refused.text
    bad_kind = newsroom.client.patch(
        f"/api/v1/accounts/{account}", json={"kind": "enterprise"}, headers=newsroom.admin
    )
    assert bad_kind.status_code == 422
    assert "订阅号" in bad_kind.text
    (weibo,) = matrix.add_accounts(counties(matrix.database_url, 2)[1:], ("weibo",))
    not_wechat = newsroom.client.post(
        "/api/v1/posts",
        json=post_body(target_account_ids=[weibo], wechat_modes={str(weibo): "push"}),
        headers=newsroom.editor,
    )
    assert not_wechat.status_code == 422
    assert "不是微信公众号" in not_wechat.text


def test_a_service_account_pushes_four_times_a_month(matrix: Matrix, newsroom: Newsroom) -> None:
    account = one_account(matrix)
    newsroom.set_kind(account, "service")
    for _ in range(4):
        newsroom.publish([account], wechat_modes={str(account): "push"})
    fifth = newsroom.draft([account], wechat_modes={str(account): "push"})
    refused = newsroom.submit(fifth)
    assert refused.status_code == 422
    assert "本月群发次数已用完" in refused.text


# -- a lost freepublish/submit answer -------------------------------------------------------------


@pytest.fixture
def audited(sandbox: WechatSandbox) -> Iterator[WechatSandbox]:
    """Publish jobs that take a minute, with the draft left in the box until they end."""
    sandbox.configure(draft_leaves="finish", publish_delay=60.0)
    yield sandbox
    sandbox.configure(draft_leaves="submit")


def lose_the_submit_answer(matrix: Matrix, newsroom: Newsroom, sandbox: WechatSandbox) -> int:
    account = one_account(matrix)
    appid = matrix.wechat_apps[account]
    sandbox.add_fault(Fault("/cgi-bin/freepublish/submit", mode="drop", appid=appid))
    post_id = newsroom.publish([account])
    delivery = delivery_of(matrix, post_id, account)
    assert delivery.id is not None
    assert run_worker(delivery.id) == "unconfirmed"
    assert len(sandbox.state(appid)["publications"]) == 1, "the platform did take the submit"
    return delivery.id


def test_a_lost_submit_answer_gives_exactly_one_copy(
    matrix: Matrix, newsroom: Newsroom, audited: WechatSandbox
) -> None:
    delivery_id = lose_the_submit_answer(matrix, newsroom, audited)
    row = status(delivery_id)
    appid = matrix.wechat_apps[row.account_id]
    assert audited.state(appid)["drafts"], "the draft is still in the box (under audit)"

    for seconds in (3, 15, 60):  # looks within the grace period: wait, never resubmit
        assert run_worker(delivery_id, later=timedelta(seconds=seconds)) == "unconfirmed"
        assert attempts(delivery_id)[-1] == "reconcile:unconfirmed"
    assert audited.calls(appid)["/cgi-bin/freepublish/submit"] == 1
    assert "不会重复提交" in status(delivery_id).error

    assert audited.finish_jobs(appid) == 1
    assert run_worker(delivery_id, later=timedelta(seconds=75)) == "published"
    row = status(delivery_id)
    assert row.remote_url.startswith("http://mp.weixin.qq.com/s/")
    [publication] = audited.state(appid)["publications"]
    assert row.remote_id == publication["article_id"]
    assert audited.calls(appid)["/cgi-bin/freepublish/submit"] == 1


def test_still_ambiguous_after_the_grace_period_is_left_to_a_person(
    matrix: Matrix, newsroom: Newsroom, audited: WechatSandbox
) -> None:
    delivery_id = lose_the_submit_answer(matrix, newsroom, audited)
    grace = timedelta(minutes=get_settings().wechat_reconcile_grace_minutes)
    assert run_worker(delivery_id, later=grace + timedelta(seconds=30)) == "unconfirmed"
    row = status(delivery_id)
    assert row.next_attempt_at is None, "the engine stops looking"
    assert "请在公众号后台" in row.error
    with Session(engine_for(get_settings().database_url)) as session:
        swept = service.sweep(session=session, now=utcnow() + grace * 3)
        session.commit()
    assert delivery_id not in swept["publish"]
    appid = matrix.wechat_apps[row.account_id]
    assert audited.calls(appid)["/cgi-bin/freepublish/submit"] == 1

    # the person checked the back office: it did go out
    [publication] = audited.state(appid)["publications"]
    marked = newsroom.client.post(
        f"/api/v1/deliveries/{delivery_id}/mark-published",
        json={"remote_url": "http://mp.weixin.qq.com/s/checked-by-hand"},
        headers=newsroom.editor,
    )
    assert marked.status_code == 200, marked.text
    assert marked.json()["status"] == DeliveryStatus.published.value
    assert publication["publish_id"]


def test_a_person_may_retry_an_unconfirmed_delivery(
    matrix: Matrix, newsroom: Newsroom, audited: WechatSandbox
) -> None:
    delivery_id = lose_the_submit_answer(matrix, newsroom, audited)
    too_soon = newsroom.client.post(
        f"/api/v1/deliveries/{delivery_id}/retry", headers=newsroom.editor
    )
    assert too_soon.status_code == 409
    assert "核对结束前不能重试" in too_soon.text
    grace = timedelta(minutes=get_settings().wechat_reconcile_grace_minutes)
    assert run_worker(delivery_id, later=grace + timedelta(seconds=30)) == "unconfirmed"
    retried = newsroom.client.post(
        f"/api/v1/deliveries/{delivery_id}/retry", headers=newsroom.editor
    )
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "queued"


def test_comments_default_to_the_orgs_setting_and_reach_draft_add(
    matrix: Matrix, newsroom: Newsroom, sandbox: WechatSandbox
) -> None:
    from datetime import date

    from sqlmodel import select

    from hub.orgs.models import Org
    from hub.orgs.service import import_rows, parse_csv

    account = one_account(matrix)
    with Session(engine_for(matrix.database_url)) as session:
        province = session.exec(select(Org).where(Org.code == "520000")).one()
        csv = (
            f"code,name,level,parent_code,wechat_comments\n520000,{province.name},province,,fans\n"
        )
        import_rows(session=session, rows=parse_csv(csv), today=date(2026, 11, 29))
        session.commit()
    org = newsroom.client.get("/api/v1/orgs/520000", headers=newsroom.editor).json()
    assert org["wechat_comments"] == "fans"

    post_id = newsroom.publish([account])  # no choice made: the org's setting
    post = newsroom.client.get(f"/api/v1/posts/{post_id}", headers=newsroom.editor).json()
    assert post["wechat_comments"] == "fans"
    delivery = delivery_of(matrix, post_id, account)
    assert delivery.id is not None
    assert run_worker(delivery.id) == "pending"
    [publication] = sandbox.state(matrix.wechat_apps[account])["publications"]
    received = publication["received"][0]
    assert (received["need_open_comment"], received["only_fans_can_comment"]) == (1, 1)
