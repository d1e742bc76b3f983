"""The demo's Weibo and WeChat accounts, bound to the simulators over their HTTP control API."""

from __future__ import annotations

import secrets
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from connectors.sandbox.app import start_sandboxes
from connectors.wechat import sign
from hub.accounts.demo import DEMO_ORGS, bind_sandbox_accounts
from hub.accounts.models import Account, Platform
from hub.accounts.service import credentials_of
from hub.config import get_settings
from hub.db import engine_for
from hub.sqltypes import utcnow
from hub.web.app import create_app
from tests.factories import credentials_key, token_for


def _bound(database_url: str) -> dict[tuple[int, str], int]:
    with Session(engine_for(database_url)) as session:
        rows = session.exec(
            select(Account).where(
                col(Account.platform).in_([Platform("weibo"), Platform("wechat")])
            )
        ).all()
        return {(a.org_id, a.platform.value): a.id for a in rows if a.id is not None}


def test_demo_accounts_work_and_are_rebound_after_the_sandbox_restarts(
    guizhou: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = guizhou["GOVHUB_DATABASE_URL"]
    bearer = token_for("kaili-editor", url)
    seen: list[dict[tuple[int, str], int]] = []
    for _run in range(2):  # a new sandbox process has forgotten every token and app
        sandboxes, server = start_sandboxes(public_base_url="http://hall.test")
        try:
            monkeypatch.setenv("GOVHUB_WEIBO_API_BASE", f"{server.base_url}/weibo")
            monkeypatch.setenv("GOVHUB_WECHAT_API_BASE", f"{server.base_url}/wechat")
            get_settings.cache_clear()
            with httpx.Client() as client, Session(engine_for(url)) as session:
                lines = bind_sandbox_accounts(
                    session=session,
                    client=client,
                    sandbox_url=server.base_url,
                    public_base_url="http://hall.test",
                    credentials_key=credentials_key(),
                    now=utcnow(),
                )
                session.commit()
            assert len(lines) == 2 * len(DEMO_ORGS)
            seen.append(_bound(url))

            with TestClient(create_app()) as hub:
                kaili = [
                    a
                    for a in hub.get("/api/v1/accounts", headers=bearer).json()
                    if a["platform"] in ("weibo", "wechat")
                ]
                assert sorted(a["platform"] for a in kaili) == ["wechat", "weibo"]
                for account in kaili:
                    test = hub.post(f"/api/v1/accounts/{account['id']}/test", headers=bearer)
                    assert test.json()["ok"] is True, test.json()
                    assert account["status"] == "active"
                wechat_id = next(a["id"] for a in kaili if a["platform"] == "wechat")
                with Session(engine_for(url)) as session:
                    row = session.get(Account, wechat_id)
                    assert row is not None
                    token = credentials_of(row, credentials_key())["callback_token"]
                timestamp, nonce = str(int(time.time())), secrets.token_hex(4)
                handshake = hub.get(
                    f"/callbacks/wechat/{wechat_id}",
                    params={
                        "signature": sign(token, timestamp, nonce),
                        "timestamp": timestamp,
                        "nonce": nonce,
                        "echostr": "ok-123",
                    },
                )
                assert handshake.text == "ok-123"
        finally:
            sandboxes.close()
            server.stop()
    assert len(seen[0]) == 2 * len(DEMO_ORGS)
    assert seen[0] == seen[1]  # the same accounts, with new credentials
