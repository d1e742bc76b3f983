"""Activity ingestion against the Weibo sandbox over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from connectors.sandbox.server import serve
from connectors.sandbox.weibo import WeiboSandbox
from hub.accounts.models import Account, AccountCreate, Platform
from hub.accounts.service import create as create_account
from hub.audit.ingest import ingest_all
from hub.audit.models import AccountActivity
from hub.cli import app as cli
from hub.config import get_settings
from hub.db import engine_for
from hub.delivery.models import HallEntry
from hub.orgs.service import get_by_code
from hub.sqltypes import utcnow
from tests.factories import credentials_key

DAY = 24 * 3600


@pytest.fixture
def weibo(guizhou: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[WeiboSandbox]:
    sandbox = WeiboSandbox()
    server = serve(sandbox)
    monkeypatch.setenv("GOVHUB_WEIBO_API_BASE", server.base_url)
    get_settings.cache_clear()
    yield sandbox
    server.stop()
    get_settings.cache_clear()


def _account(url: str, org_code: str, name: str, token: str, uid: str) -> int:
    with Session(engine_for(url)) as session:
        account = create_account(
            session=session,
            data=AccountCreate(
                org_code=org_code,
                platform=Platform("weibo"),
                name=name,
                handle=uid,
                interaction_channel=True,
                credentials={"access_token": token, "uid": uid},
            ),
            credentials_key=credentials_key(),
            org=get_by_code(session=session, code=org_code),
        )
        session.commit()
        assert account.id is not None
        return account.id


def test_posts_made_on_weibo_reach_activity_and_the_hall_once(
    weibo: WeiboSandbox,
    client: TestClient,
    auth: dict[str, dict[str, str]],
    guizhou: dict[str, str],
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    kaili_token, kaili_uid = weibo.mint_token()
    quiet_token, quiet_uid = weibo.mint_token()
    expired_token, expired_uid = weibo.mint_token(expires_in=0)
    kaili = _account(url, "522601", "凯里发布", kaili_token, kaili_uid)
    quiet = _account(url, "522622", "黄平发布", quiet_token, quiet_uid)
    expired = _account(url, "522623", "施秉发布", expired_token, expired_uid)

    first = weibo.create_post(kaili_uid, "凯里市召开防汛工作会议")
    second = weibo.create_post(kaili_uid, "凯里市发布高温预警")
    weibo.advance(-15 * DAY)  # a post made 15 days ago
    weibo.create_post(quiet_uid, "黄平县旅游推介")
    weibo.advance(15 * DAY)
    weibo.create_post(expired_uid, "施秉县通知")

    report = ingest_all(settings=get_settings())
    assert (report.accounts_ok, report.accounts_failed, report.new_posts) == (2, 1, 3)
    assert [o.account_id for o in report.failures] == [expired]

    with Session(engine_for(url)) as session:
        hall = session.exec(
            select(HallEntry).where(HallEntry.source == "ingested").order_by(col(HallEntry.id))
        ).all()
        assert {(h.account_id, h.remote_id, h.text) for h in hall} == {
            (kaili, str(first.id), "凯里市召开防汛工作会议"),
            (kaili, str(second.id), "凯里市发布高温预警"),
            (quiet, str(weibo.posts(quiet_uid)[0].id), "黄平县旅游推介"),
        }
        assert all(h.url.endswith(str(h.remote_id)) for h in hall)
        assert len(session.exec(select(AccountActivity)).all()) == 3

    accounts = {
        a["id"]: a
        for a in client.get("/api/v1/accounts", headers=auth["admin"]).json()
        if a["id"] in (kaili, quiet, expired)
    }
    assert accounts[expired]["status"] == "needs_reauth"
    assert accounts[kaili]["status"] == "active"
    assert accounts[kaili]["last_activity_at"] is not None

    # A second pass asks only for what is new (since_id) and records nothing twice.
    again = ingest_all(settings=get_settings())
    assert (again.accounts_ok, again.accounts_failed, again.new_posts) == (2, 0, 0)
    third = weibo.create_post(kaili_uid, "凯里市公布整改结果")
    result = CliRunner().invoke(cli, ["activity", "ingest"])
    assert result.exit_code == 0, result.output
    assert "1 new posts" in result.output
    with Session(engine_for(url)) as session:
        assert len(session.exec(select(AccountActivity)).all()) == 4
        assert session.get(Account, kaili).last_seen_remote_id == str(third.id)  # type: ignore[union-attr]

    # The audit sees the ingested activity: 15 days of silence fails under national-2019.
    today = utcnow().astimezone(get_settings().tz).date()
    body = client.get(
        "/api/v1/audits/matrix",
        params={"as_of": today.isoformat(), "policy": "national-2019"},
        headers=auth["supervisor"],
    ).json()
    verdicts = {a["id"]: a for a in body["accounts"]}
    assert [f["text_zh"] for f in verdicts[quiet]["findings"]] == ["已15天未更新"]
    assert verdicts[quiet]["verdict"] == "fail"
    assert verdicts[kaili]["findings"] == []
    # Nothing could be read from the expired account: no update on record, and its token.
    assert {f["code"] for f in verdicts[expired]["findings"]} == {
        "inactive",
        "credentials_expired",
    }


def test_an_account_blocked_on_the_platform_is_flagged_by_ingestion_as_by_a_send(
    weibo: WeiboSandbox,
    client: TestClient,
    auth: dict[str, dict[str, str]],
    guizhou: dict[str, str],
) -> None:
    """Ingestion reads every account daily: when the platform says the account's setup blocks it
    (21321, the app is not audited), the admin sees it flagged with what to do — not only when a
    post fails to go out."""
    url = guizhou["GOVHUB_DATABASE_URL"]
    token, uid = weibo.mint_token()
    kaili = _account(url, "522601", "凯里发布", token, uid)
    weibo.config.app_audited = False

    report = ingest_all(settings=get_settings())
    assert (report.accounts_ok, report.accounts_failed) == (0, 1)

    shown = client.get(f"/api/v1/accounts/{kaili}", headers=auth["admin"]).json()
    assert shown["status"] == "misconfigured"
    assert shown["attention_code"] == "21321" and "open.weibo.com" in shown["attention"]
