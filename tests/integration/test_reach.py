"""Reach end to end: the pull against the Weibo and WeChat simulators over real HTTP stores
per-copy per-day counts; the API, the delivery board, the ranking page and the audit export
show them; the reach rule hides other orgs; failures back off."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlmodel import Session, select
from typer.testing import CliRunner

from connectors.sandbox.server import serve
from connectors.sandbox.wechat import WechatSandbox
from connectors.sandbox.weibo import Fault, WeiboSandbox
from hub.accounts.models import AccountCreate, Platform
from hub.accounts.service import create as create_account
from hub.cli import app as cli
from hub.config import get_settings
from hub.db import engine_for
from hub.delivery.models import Delivery, DeliveryStatus
from hub.orgs.service import get_by_code
from hub.posts.models import Post, PostStatus, PostVersion
from hub.reach.models import ReachCount, ReachPull
from hub.reach.service import pull_all
from hub.sqltypes import utcnow
from hub.users.models import User
from tests.factories import credentials_key
from tests.integration.test_editor_pages import login

pytestmark = pytest.mark.integration


@dataclass
class Platforms:
    weibo: WeiboSandbox
    wechat: WechatSandbox


@pytest.fixture
def sandboxes(guizhou: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Platforms]:
    weibo, wechat = WeiboSandbox(), WechatSandbox(publish_delay=0.0)
    weibo_server, wechat_server = serve(weibo), serve(wechat)
    monkeypatch.setenv("GOVHUB_WEIBO_API_BASE", weibo_server.base_url)
    monkeypatch.setenv("GOVHUB_WECHAT_API_BASE", wechat_server.base_url)
    get_settings.cache_clear()
    yield Platforms(weibo, wechat)
    wechat.close()
    weibo_server.stop()
    wechat_server.stop()
    get_settings.cache_clear()


@dataclass
class Matrix:
    post_id: int
    other_post_id: int
    kaili_weibo: int
    kaili_wechat: int
    huangping_weibo: int
    status_id: str
    huangping_status_id: str
    msgid: str


def _account(
    session: Session, org_code: str, platform: str, name: str, creds: dict[str, str]
) -> int:
    account = create_account(
        session=session,
        data=AccountCreate(
            org_code=org_code, platform=Platform(platform), name=name, credentials=creds
        ),
        credentials_key=credentials_key(),
        org=get_by_code(session=session, code=org_code),
    )
    assert account.id is not None
    return account.id


def _post(
    session: Session, org_code: str, title: str, copies: list[tuple[int, str, str, datetime]]
) -> int:
    """A published post with one published delivery per (account, remote id, msg_data_id, at)."""
    org = get_by_code(session=session, code=org_code)
    author = session.exec(select(User).where(User.username == "kaili-editor")).one()
    post = Post(
        org_id=org.id,  # type: ignore[arg-type]
        author_id=author.id,  # type: ignore[arg-type]
        title=title,
        status=PostStatus.published,
        approved_version=1,
        released_at=utcnow(),
    )
    session.add(post)
    session.flush()
    assert post.id is not None
    session.add(
        PostVersion(
            post_id=post.id,
            version=1,
            title=title,
            body="正文",
            content_hash="0" * 64,
            author_id=author.id,  # type: ignore[arg-type]
        )
    )
    for account_id, remote_id, msg_data_id, at in copies:
        session.add(
            Delivery(
                post_id=post.id,
                version=1,
                account_id=account_id,
                status=DeliveryStatus.published,
                remote_id=remote_id,
                remote_url=f"https://example.test/{remote_id}",
                msg_data_id=msg_data_id,
                published_at=at,
            )
        )
    return post.id


@pytest.fixture
def matrix(sandboxes: Platforms, guizhou: dict[str, str]) -> Matrix:
    """凯里市 published one post to its Weibo (today) and its WeChat (yesterday); 黄平县 one
    post to its Weibo. Readers have reposted, commented, liked, read and shared."""
    url = guizhou["GOVHUB_DATABASE_URL"]
    weibo, wechat = sandboxes.weibo, sandboxes.wechat
    kaili_token, kaili_uid = weibo.mint_token()
    hp_token, hp_uid = weibo.mint_token()
    wechat.add_app("wxkaili0001", "kaili-secret")
    now = utcnow()
    yesterday = now - timedelta(days=1)
    status = weibo.create_post(kaili_uid, "凯里市召开防汛工作会议")
    hp_status = weibo.create_post(hp_uid, "黄平县发布旅游线路")
    article = wechat.add_publication(
        "wxkaili0001", title="凯里市召开防汛工作会议", create_time=int(yesterday.timestamp())
    )
    weibo.set_counts(status.id, reposts=12, comments=3, attitudes=40)
    weibo.set_counts(hp_status.id, reposts=2, comments=1, attitudes=5)
    msgid = f"{article['msg_data_id']}_1"
    day = yesterday.astimezone(get_settings().tz).date()
    wechat.set_article_day("wxkaili0001", msgid, day, int_page_read_count=300, share_count=21)
    with Session(engine_for(url)) as session:
        kaili_weibo = _account(
            session, "522601", "weibo", "凯里发布", {"access_token": kaili_token, "uid": kaili_uid}
        )
        kaili_wechat = _account(
            session,
            "522601",
            "wechat",
            "凯里发布微信",
            {"app_id": "wxkaili0001", "app_secret": "kaili-secret"},
        )
        huangping = _account(
            session, "522622", "weibo", "黄平发布", {"access_token": hp_token, "uid": hp_uid}
        )
        post_id = _post(
            session,
            "522601",
            "凯里市召开防汛工作会议",
            [
                (kaili_weibo, str(status.id), "", now),
                (kaili_wechat, str(article["article_id"]), str(article["msg_data_id"]), yesterday),
            ],
        )
        other = _post(
            session, "522622", "黄平县发布旅游线路", [(huangping, str(hp_status.id), "", now)]
        )
        session.commit()
    return Matrix(
        post_id,
        other,
        kaili_weibo,
        kaili_wechat,
        huangping,
        str(status.id),
        str(hp_status.id),
        msgid,
    )


def _counts(url: str) -> dict[tuple[int, str], int]:
    with Session(engine_for(url)) as session:
        rows = session.exec(select(ReachCount)).all()
        return {(r.account_id, r.metric): r.value for r in rows}


def test_the_pull_stores_each_copys_counts_and_a_repull_replaces_the_day(
    matrix: Matrix, sandboxes: Platforms, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    report = pull_all(settings=get_settings())
    assert report.failures == [] and len(report.outcomes) == 3, report.outcomes
    assert _counts(url) == {
        (matrix.kaili_weibo, "reposts"): 12,
        (matrix.kaili_weibo, "comments"): 3,
        (matrix.kaili_weibo, "likes"): 40,
        (matrix.kaili_wechat, "reads"): 300,
        (matrix.kaili_wechat, "shares"): 21,
        (matrix.huangping_weibo, "reposts"): 2,
        (matrix.huangping_weibo, "comments"): 1,
        (matrix.huangping_weibo, "likes"): 5,
    }
    # paced: nobody is due again right away
    assert pull_all(settings=get_settings()).outcomes == []

    sandboxes.weibo.set_counts(matrix.status_id, reposts=20, comments=4, attitudes=41)
    result = CliRunner().invoke(cli, ["reach", "pull", "--account", str(matrix.kaili_weibo)])
    assert result.exit_code == 0, result.output
    assert "1/1 copies" in result.output
    counts = _counts(url)
    assert counts[(matrix.kaili_weibo, "reposts")] == 20  # the day was replaced, not added to
    with Session(engine_for(url)) as session:
        assert len(session.exec(select(ReachCount)).all()) == 8


def test_a_failing_account_backs_off_and_the_others_are_pulled(
    matrix: Matrix, sandboxes: Platforms, guizhou: dict[str, str]
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    sandboxes.weibo.add_fault(Fault("count", code=10001, times=1))  # system busy, once
    now = utcnow()
    report = pull_all(settings=get_settings(), now=now)
    failed = [o.account_id for o in report.failures]
    assert len(failed) == 1 and failed[0] in (matrix.kaili_weibo, matrix.huangping_weibo)
    interval = timedelta(minutes=get_settings().reach_interval_minutes)
    with Session(engine_for(url)) as session:
        state = session.get(ReachPull, failed[0])
        assert state is not None
        assert (state.failures, state.next_pull_at) == (1, now + interval)
        assert "繁忙" in state.last_error
    # a second failure in a row waits twice as long
    sandboxes.weibo.add_fault(Fault("count", code=10001, times=1))
    later = now + interval
    too_early = pull_all(settings=get_settings(), now=later - timedelta(minutes=1))
    assert too_early.outcomes == [] and too_early.not_due == 3
    again = pull_all(settings=get_settings(), now=later, account_ids=failed)
    assert [o.account_id for o in again.failures] == failed
    with Session(engine_for(url)) as session:
        state = session.get(ReachPull, failed[0])
        assert state is not None and state.next_pull_at == later + 2 * interval
    # then it recovers and is paced normally
    recovered = pull_all(settings=get_settings(), now=later + 2 * interval, account_ids=failed)
    assert [o.account_id for o in recovered.outcomes if not o.error] == failed
    with Session(engine_for(url)) as session:
        state = session.get(ReachPull, failed[0])
        assert state is not None and (state.failures, state.last_error) == (0, "")


def test_the_api_shows_reach_per_channel_and_ranks_within_reach(
    matrix: Matrix, client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    pull_all(settings=get_settings())
    body = client.get(f"/api/v1/posts/{matrix.post_id}/reach", headers=auth["kaili-editor"])
    assert body.status_code == 200, body.text
    data = body.json()
    channels = {c["platform"]: c for c in data["channels"]}
    assert channels["weibo"]["totals"] == {"reposts": 12, "comments": 3, "likes": 40}
    assert channels["wechat"]["totals"] == {"reads": 300, "shares": 21}
    assert [f["label"] for f in channels["wechat"]["fields"]] == ["阅读", "分享"]
    assert [f["label"] for f in channels["weibo"]["fields"]] == ["转发", "评论", "点赞"]
    assert data["totals"]["reads"] == 300 and data["totals"]["reposts"] == 12

    ranking = client.get("/api/v1/orgs/522600/reach", headers=auth["qdn-editor"])
    assert ranking.status_code == 200, ranking.text
    ranked = ranking.json()
    assert [(a["rank"], a["name"]) for a in ranked["accounts"]] == [
        (1, "凯里发布微信"),
        (2, "凯里发布"),
        (3, "黄平发布"),
    ]
    orgs = {o["key"]: o for o in ranked["orgs"]}
    assert orgs["522601"]["rank"] == 1
    assert orgs["522601"]["counts"] == {
        "reposts": 12,
        "comments": 3,
        "likes": 40,
        "reads": 300,
        "shares": 21,
    }
    assert orgs["522622"]["counts"] == {"reposts": 2, "comments": 1, "likes": 5}
    by_reposts = client.get(
        "/api/v1/orgs/522600/reach", params={"by": "reposts"}, headers=auth["supervisor"]
    ).json()
    assert [a["name"] for a in by_reposts["accounts"]][:2] == ["凯里发布", "黄平发布"]

    # outside one's reach: as if missing
    assert client.get("/api/v1/orgs/522600/reach", headers=auth["kaili-editor"]).status_code == 404
    assert client.get("/api/v1/orgs/nope/reach", headers=auth["kaili-editor"]).status_code == 404
    hidden = client.get(f"/api/v1/posts/{matrix.other_post_id}/reach", headers=auth["kaili-editor"])
    assert hidden.status_code == 404
    # bad input is explained, never a 500
    bad = client.get(
        "/api/v1/orgs/522601/reach", params={"since": "2026-13-01"}, headers=auth["kaili-editor"]
    )
    assert bad.status_code == 422 and "日期格式" in bad.json()["detail"]
    backwards = client.get(
        "/api/v1/orgs/522601/reach",
        params={"since": "2026-11-20", "until": "2026-11-01"},
        headers=auth["kaili-editor"],
    )
    assert backwards.status_code == 422 and "开始日期不能晚于结束日期" in backwards.json()["detail"]


def test_the_board_and_the_ranking_page_show_reach(
    matrix: Matrix, client: TestClient, guizhou: dict[str, str]
) -> None:
    pull_all(settings=get_settings())
    login(client, "kaili-editor")
    board = client.get(f"/posts/{matrix.post_id}/board")
    assert board.status_code == 200
    section = board.text[board.text.index('id="reach-title"') :]
    weibo = re.search(r'data-platform="weibo".*?</table>', section, re.S)
    wechat = re.search(r'data-platform="wechat".*?</table>', section, re.S)
    assert weibo and wechat
    assert re.findall(r'<td class="num">([\d,]+)</td>', weibo.group(0))[:3] == ["12", "3", "40"]
    assert re.findall(r'<td class="num">([\d,]+)</td>', wechat.group(0))[:2] == ["300", "21"]
    assert "转发" in weibo.group(0) and "阅读" in wechat.group(0)

    client.post("/logout", data={"csrf": ""})
    login(client, "supervisor")
    page = client.get("/reach", params={"org": "522600"})
    assert page.status_code == 200
    assert "<svg" in page.text and "凯里市" in page.text
    assert "https://" not in re.sub(r'href="https://example\.test[^"]*"', "", page.text)  # no CDN
    assert client.get("/reach", params={"org": "522600", "since": "x"}).status_code == 200


def test_the_matrix_audit_export_has_reach_columns_without_changing_verdicts(
    matrix: Matrix, client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    today = utcnow().astimezone(get_settings().tz).date().isoformat()
    before = client.get(
        "/api/v1/audits/matrix", params={"as_of": today}, headers=auth["supervisor"]
    ).json()
    pull_all(settings=get_settings())
    after = client.get(
        "/api/v1/audits/matrix", params={"as_of": today}, headers=auth["supervisor"]
    ).json()
    assert [(o["code"], o["verdict"], o["score"]) for o in after["orgs"]] == [
        (o["code"], o["verdict"], o["score"]) for o in before["orgs"]
    ]
    assert after["reach"]["orgs"]["522601"]["reads"] == 300
    assert after["reach"]["accounts"][str(matrix.kaili_weibo)]["likes"] == 40

    response = client.get(
        "/api/v1/audits/matrix.xlsx", params={"as_of": today}, headers=auth["supervisor"]
    )
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content))["黔东南苗族侗族自治州"]
    headers = [c.value for c in sheet[3]]
    columns = {str(h).split("（")[0]: i for i, h in enumerate(headers) if h}
    assert {"转发", "评论", "点赞", "阅读", "分享"} <= set(columns)
    kaili = next(r for r in sheet.iter_rows(min_row=4, values_only=True) if r[1] == "凯里市")
    assert kaili[columns["阅读"]] == 300 and kaili[columns["转发"]] == 12
    huangping = next(r for r in sheet.iter_rows(min_row=4, values_only=True) if r[1] == "黄平县")
    assert huangping[columns["点赞"]] == 5 and huangping[columns["阅读"]] == 0

    login(client, "supervisor")
    page = client.get("/audit/orgs/522601", params={"as_of": today})
    assert page.status_code == 200
    assert "阅读 300 · 分享 21" in page.text and "不计入得分" in page.text
