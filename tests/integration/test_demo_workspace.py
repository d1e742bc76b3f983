"""What `govhub demo` seeds for the editor's workspace besides the live session: an open inbox
case (a Weibo comment, assigned, with its history) and two clocks, one running and one overdue,
seen on 互动留言, the 时限看板 and the 工作台 by the demo editor; seeding twice adds nothing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from hub.clocks.demo import DEMO_CLOCKS
from hub.clocks.models import Clock
from hub.db import engine_for
from hub.inbox.demo import DEMO_TEXT
from hub.inbox.models import Case, CaseEvent
from tests.integration.test_live_api import account
from tests.integration.test_live_pages import browser_as

pytestmark = pytest.mark.integration


def _section(html: str, heading: str) -> str:
    return html.split(heading, 1)[1].split("<h2", 1)[0]


def test_the_demo_seeds_an_inbox_case_and_a_running_and_an_overdue_clock(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    from hub.clocks.demo import seed_clocks
    from hub.inbox.demo import seed_case
    from hub.sqltypes import utcnow

    url = guizhou["GOVHUB_DATABASE_URL"]
    account(url, "522601", "weibo")
    for _time in range(2):  # every `govhub demo` start: still one case and two clocks
        with Session(engine_for(url)) as session:
            seed_case(session=session, now=utcnow())
            seed_clocks(session=session, now=utcnow())
            session.commit()
    with Session(engine_for(url)) as session:
        (case,) = session.exec(select(Case)).all()
        events = session.exec(select(CaseEvent).where(CaseEvent.case_id == case.id)).all()
        demo_subjects = {subject for _kind, subject, _ago in DEMO_CLOCKS}
        clocks = [c for c in session.exec(select(Clock)).all() if c.subject in demo_subjects]
    assert case.channel.value == "weibo_comment" and case.status.value == "assigned"
    assert [e.kind for e in events] == ["created", "assign"]
    assert len(clocks) == 2

    running, overdue = (subject for _kind, subject, _ago in DEMO_CLOCKS)
    with browser_as("kaili-editor") as (browser, _csrf):
        inbox = browser.get("/inbox").text
        assert DEMO_TEXT[:80] in inbox and f'href="/inbox/cases/{case.id}"' in inbox
        page = browser.get(f"/inbox/cases/{case.id}").text
        assert "凯里市民小杨" in page and "微博评论" in page
        board = browser.get("/clocks").text
        assert overdue in _section(board, "已逾期") and running not in _section(board, "已逾期")
        assert running in _section(board, "即将到期与进行中")
        home = browser.get("/").text
        assert running in home and overdue in home  # 工作台: due within a day / overdue
