"""Compliance clocks through the API, the posts hooks, the Excel summary and the dashboard."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlmodel import Session, select

from hub.clocks import export, obligations, service
from hub.config import get_settings
from hub.db import engine_for
from hub.orgs.service import get_by_code
from hub.posts.models import Post, Urgency
from hub.users.models import User

Auth = dict[str, dict[str, str]]


def open_clock(
    client: TestClient, headers: dict[str, str], kind: str, org: str, started: str, **extra: Any
) -> Any:
    response = client.post(
        "/api/v1/clocks",
        json={"kind": kind, "org_code": org, "subject": f"{kind} {started}", "started_at": started}
        | extra,
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_deadlines_follow_the_official_calendar(client: TestClient, auth: Auth) -> None:
    disclosure = open_clock(
        client, auth["kaili-editor"], "disclosure", "522601", "2026-09-30T10:00:00+08:00"
    )
    # National Day 10-01..10-07 off, Sat 10-10 a make-up working day: 5 working days -> 10-13
    assert disclosure["due_at"] == "2026-10-13T23:59:59+08:00"
    assert disclosure["calendar_confirmed"] is True
    assert disclosure["status"] == "overdue"  # it is past 2026-10-13 and nothing was released
    assert disclosure["org_code"] == "522601" and disclosure["post_ids"] == []

    emergency = open_clock(
        client, auth["kaili-editor"], "emergency", "522601", "2026-11-20T14:30:00Z"
    )  # 22:30 in Guizhou
    assert emergency["started_at"] == "2026-11-20T22:30:00+08:00"
    assert emergency["due_at"] == "2026-11-21T01:30:00+08:00"

    far = open_clock(
        client, auth["kaili-editor"], "interpretation", "522601", "2099-01-01T09:00:00+08:00"
    )
    assert far["due_at"] == "2099-01-15T23:59:59+08:00"
    assert far["calendar_confirmed"] is False
    assert far["status"] == "running"


def test_bad_input_is_a_clear_422(client: TestClient, auth: Auth) -> None:
    base = {
        "kind": "emergency",
        "org_code": "522601",
        "subject": "山洪",
        "started_at": "2026-11-20T08:00:00+08:00",
    }
    cases = {
        "kind": ("earthquake", "未知的时限类型 'earthquake'"),
        "org_code": ("999999", "999999"),
        "started_at": ("2026-11-20T08:00:00", "须带时区"),
    }
    for field, (value, message) in cases.items():
        response = client.post(
            "/api/v1/clocks", json=base | {field: value}, headers=auth["kaili-editor"]
        )
        assert response.status_code == 422, response.text
        assert message in response.json()["detail"]
    allowed = client.post(
        "/api/v1/clocks", json=base | {"kind": "earthquake"}, headers=auth["kaili-editor"]
    ).json()["detail"]
    assert "disclosure" in allowed and "hot_topic" in allowed
    for broken in ({"started_at": "yesterday"}, {"subject": ""}):
        response = client.post("/api/v1/clocks", json=base | broken, headers=auth["kaili-editor"])
        assert response.status_code == 422
    assert client.get("/api/v1/clocks?status=late", headers=auth["admin"]).status_code == 422


def test_stop_and_cancel(client: TestClient, auth: Auth) -> None:
    editor = auth["kaili-editor"]
    recent = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    on_time = open_clock(client, editor, "emergency", "522601", recent)
    stopped = client.post(f"/api/v1/clocks/{on_time['id']}/stop", headers=editor)
    assert stopped.status_code == 200 and stopped.json()["status"] == "met"
    again = client.post(f"/api/v1/clocks/{on_time['id']}/stop", headers=editor)
    assert again.status_code == 409
    assert again.json()["detail"] == f"时限 {on_time['id']} 已结束（按时完成）"
    client.cookies.set("govhub_lang", "en")  # the language switch: the same refusal in English
    english = client.post(f"/api/v1/clocks/{on_time['id']}/stop", headers=editor)
    client.cookies.delete("govhub_lang")
    assert english.json()["detail"] == f"Clock {on_time['id']} has already ended (Met on time)"

    late = open_clock(client, editor, "emergency", "522601", "2026-11-20T22:30:00+08:00")
    answered = client.post(
        f"/api/v1/clocks/{late['id']}/stop",
        json={"stopped_at": "2026-11-21T02:00:00+08:00"},
        headers=editor,
    ).json()
    assert answered["status"] == "met_late"
    assert answered["stopped_at"] == "2026-11-21T02:00:00+08:00"

    mistake = open_clock(client, editor, "hot_topic", "522601", "2026-11-02T09:00:00+08:00")
    no_reason = client.post(f"/api/v1/clocks/{mistake['id']}/cancel", json={}, headers=editor)
    assert no_reason.status_code == 422
    cancelled = client.post(
        f"/api/v1/clocks/{mistake['id']}/cancel", json={"reason": "重复登记"}, headers=editor
    ).json()
    assert cancelled["status"] == "cancelled" and cancelled["cancelled_reason"] == "重复登记"
    overdue = open_clock(client, editor, "hot_topic", "522601", "2026-11-03T09:00:00+08:00")

    def ids(status: str) -> list[int]:
        listed = client.get("/api/v1/clocks", params={"status": status}, headers=editor).json()
        return [c["id"] for c in listed]

    assert ids("met") == [on_time["id"]]
    assert ids("met_late") == [late["id"]]
    assert ids("cancelled") == [mistake["id"]]
    assert ids("overdue") == [overdue["id"]]
    assert ids("running") == []
    log = client.get("/api/v1/audit-log", params={"action": "clock."}, headers=auth["admin"]).json()
    assert [e["action"] for e in reversed(log["items"])] == [
        "clock.start",
        "clock.stop",
        "clock.start",
        "clock.stop",
        "clock.start",
        "clock.cancel",
        "clock.start",
    ]


def test_a_calendar_override_shifts_running_deadlines(client: TestClient, auth: Auth) -> None:
    editor = auth["kaili-editor"]
    clock = open_clock(client, editor, "disclosure", "522601", "2026-09-30T10:00:00+08:00")
    day_off = {"date": "2026-10-12", "is_workday": False, "note": "地方性假日"}
    refused = client.post("/api/v1/calendar-overrides", json=day_off, headers=editor)
    assert refused.status_code == 403
    set_ = client.post("/api/v1/calendar-overrides", json=day_off, headers=auth["admin"])
    assert set_.status_code == 201 and set_.json()["clocks_redated"] == 1
    assert client.get("/api/v1/calendar-overrides", headers=editor).json() == [
        {"date": "2026-10-12", "is_workday": False, "note": "地方性假日", "clocks_redated": 0}
    ]
    shifted = client.get(f"/api/v1/clocks/{clock['id']}", headers=editor).json()
    assert shifted["due_at"] == "2026-10-14T23:59:59+08:00"
    new = open_clock(client, editor, "disclosure", "522601", "2026-09-30T11:00:00+08:00")
    assert new["due_at"] == "2026-10-14T23:59:59+08:00"

    removed = client.delete("/api/v1/calendar-overrides/2026-10-12", headers=auth["admin"])
    assert removed.status_code == 200 and removed.json()["clocks_redated"] == 2
    back = client.get(f"/api/v1/clocks/{clock['id']}", headers=editor).json()
    assert back["due_at"] == "2026-10-13T23:59:59+08:00"

    # next century: weekdays are a guess until the admin confirms the year's arrangement
    far = open_clock(client, editor, "interpretation", "522601", "2099-01-01T09:00:00+08:00")
    assert far["calendar_confirmed"] is False
    confirmed = client.post(
        "/api/v1/calendar-years", json={"year": 2099, "note": "国办通知"}, headers=auth["admin"]
    )
    assert confirmed.status_code == 201 and confirmed.json()["clocks_redated"] == 1
    far_now = client.get(f"/api/v1/clocks/{far['id']}", headers=editor).json()
    assert far_now["calendar_confirmed"] is True


def test_editors_see_their_subtree_and_supervisors_everything(
    client: TestClient, auth: Auth
) -> None:
    body = {"kind": "hot_topic", "subject": "舆情", "started_at": "2026-11-26T09:00:00+08:00"}
    refused = client.post(
        "/api/v1/clocks", json=body | {"org_code": "522622"}, headers=auth["kaili-editor"]
    )
    assert refused.status_code == 403
    reviewer = client.post(
        "/api/v1/clocks", json=body | {"org_code": "522601"}, headers=auth["kaili-reviewer"]
    )
    assert reviewer.status_code == 403
    kaili = open_clock(client, auth["kaili-editor"], "hot_topic", "522601", body["started_at"])
    huangping = open_clock(
        client, auth["huangping-editor"], "hot_topic", "522622", body["started_at"]
    )
    province = open_clock(
        client, auth["prov-editor"], "emergency", "520000-xwb", body["started_at"]
    )

    def codes(who: str, **params: str) -> set[str]:
        response = client.get("/api/v1/clocks", params=params, headers=auth[who])
        assert response.status_code == 200, response.text
        return {c["org_code"] for c in response.json()}

    assert codes("kaili-editor") == {"522601"}
    assert codes("qdn-editor") == {"522601", "522622"}
    assert codes("supervisor") == {"522601", "522622", "520000-xwb"}
    assert codes("supervisor", org="522600") == {"522601", "522622"}
    assert codes("kaili-reviewer") == {"522601"}
    other = client.get("/api/v1/clocks", params={"org": "522622"}, headers=auth["kaili-editor"])
    assert other.status_code == 403
    foreign = client.post(f"/api/v1/clocks/{huangping['id']}/stop", headers=auth["kaili-editor"])
    assert foreign.status_code == 404  # outside the reach: as if it did not exist
    assert (
        client.get(f"/api/v1/clocks/{province['id']}", headers=auth["kaili-editor"]).status_code
        == 404
    )
    assert (
        client.get(f"/api/v1/clocks/{kaili['id']}", headers=auth["supervisor"]).status_code == 200
    )


def _post(session: Session, urgency: Urgency, title: str) -> Post:
    author = session.exec(select(User).where(User.username == "kaili-editor")).one()
    post = Post(
        org_id=get_by_code(session=session, code="522601").id,  # type: ignore[arg-type]
        author_id=author.id,  # type: ignore[arg-type]
        title=title,
        urgency=urgency,
    )
    session.add(post)
    session.flush()
    return post


def test_publishing_an_urgent_post_stops_its_clock(
    client: TestClient, auth: Auth, guizhou: dict[str, str]
) -> None:
    t0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)  # 16:00 in Guizhou
    with Session(engine_for(guizhou["GOVHUB_DATABASE_URL"])) as session:
        quick, slow, routine = (
            _post(session, Urgency.emergency, "山体滑坡处置情况"),
            _post(session, Urgency.hot_topic, "网传停水情况说明"),
            _post(session, Urgency.routine, "周末文化活动"),
        )
        ids = quick.id, slow.id, routine.id
        for post in (quick, slow, routine):
            service.start_for_post(
                session=session,
                post_id=post.id,  # type: ignore[arg-type]
                org_id=post.org_id,
                urgency=post.urgency.value,
                title=post.title,
                started_at=t0,
            )
        session.commit()
    with Session(engine_for(guizhou["GOVHUB_DATABASE_URL"])) as session:
        service.stop_for_post(session=session, post_id=ids[0], published_at=t0 + timedelta(hours=2))
        # hot topic: same day, i.e. 23:59:59 local; published the next morning
        service.stop_for_post(
            session=session, post_id=ids[1], published_at=t0 + timedelta(hours=17)
        )
        service.stop_for_post(session=session, post_id=ids[2], published_at=t0)
        session.commit()
    with Session(engine_for(guizhou["GOVHUB_DATABASE_URL"])) as session:  # a later delivery
        service.stop_for_post(session=session, post_id=ids[0], published_at=t0 + timedelta(hours=9))
        session.commit()

    clocks = client.get("/api/v1/clocks", headers=auth["kaili-editor"]).json()
    by_post = {tuple(c["post_ids"]): c for c in clocks}
    assert set(by_post) == {(ids[0],), (ids[1],)}  # the routine post started none
    emergency = by_post[(ids[0],)]
    assert (emergency["kind"], emergency["status"]) == ("emergency", "met")
    assert emergency["stopped_at"] == "2026-11-20T18:00:00+08:00"  # the first delivery counts
    assert emergency["subject"] == "山体滑坡处置情况"
    hot = by_post[(ids[1],)]
    assert (hot["kind"], hot["due_at"], hot["status"]) == (
        "hot_topic",
        "2026-11-20T23:59:59+08:00",
        "met_late",
    )


def test_monthly_summary_in_excel(client: TestClient, auth: Auth) -> None:
    editor = auth["kaili-editor"]
    met = open_clock(client, editor, "emergency", "522601", "2026-10-05T10:00:00+08:00")
    client.post(
        f"/api/v1/clocks/{met['id']}/stop",
        json={"stopped_at": "2026-10-05T11:00:00+08:00"},
        headers=editor,
    )
    late = open_clock(client, editor, "emergency", "522601", "2026-10-05T10:00:00+08:00")
    client.post(
        f"/api/v1/clocks/{late['id']}/stop",
        json={"stopped_at": "2026-10-05T14:00:00+08:00"},
        headers=editor,
    )
    open_clock(client, editor, "disclosure", "522601", "2026-10-09T10:00:00+08:00")  # overdue
    # 01:00 on 1 October in Guizhou is still 30 September in UTC: it counts for October
    open_clock(client, editor, "hot_topic", "522601", "2026-09-30T17:00:00Z")
    cancelled = open_clock(client, editor, "hot_topic", "522601", "2026-10-20T09:00:00+08:00")
    client.post(f"/api/v1/clocks/{cancelled['id']}/cancel", json={"reason": "误登"}, headers=editor)
    open_clock(client, editor, "emergency", "522601", "2026-11-02T09:00:00+08:00")  # November
    open_clock(client, auth["huangping-editor"], "hot_topic", "522622", "2026-10-08T09:00:00+08:00")

    response = client.get(
        "/api/v1/clocks/summary.xlsx", params={"month": "2026-10"}, headers=auth["supervisor"]
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(response.content))
    rows = [list(r) for r in book["汇总"].iter_rows(values_only=True)]
    assert rows[0] == export.SUMMARY_HEADERS
    by_code = {r[0]: r for r in rows[1:] if r and r[0] in ("522601", "522622")}
    #                          opened met late overdue running cancelled rate
    assert by_code["522601"][1] == "凯里市"
    assert by_code["522601"][2:] == [5, 1, 1, 2, 0, 1, "25%"]
    assert by_code["522622"][2:] == [1, 0, 0, 1, 0, 0, "0%"]
    assert book["明细"].max_row == 1 + 6

    own = client.get(
        "/api/v1/clocks/summary.xlsx", params={"month": "2026-10"}, headers=auth["huangping-editor"]
    )
    own_rows = list(load_workbook(io.BytesIO(own.content))["汇总"].iter_rows(values_only=True))
    assert [r[0] for r in own_rows[1:] if r and r[0] and str(r[0]).isdigit()] == ["522622"]
    bad = client.get(
        "/api/v1/clocks/summary.xlsx", params={"month": "2026-13"}, headers=auth["supervisor"]
    )
    assert bad.status_code == 422 and "2026-10" in bad.json()["detail"]


def test_recurring_obligations_are_met_by_records(
    client: TestClient, auth: Auth, guizhou: dict[str, str]
) -> None:
    settings = get_settings()
    policy = service.policy_in_force(settings)
    with Session(engine_for(guizhou["GOVHUB_DATABASE_URL"])) as session:
        obligations.refresh_obligations(
            session=session,
            policy=policy,
            today=date(2026, 11, 10),
            tz=settings.tz,
            since=date(2026, 10, 1),
        )
        session.commit()
    press = client.get(
        "/api/v1/obligations", params={"kind": "press_conference"}, headers=auth["supervisor"]
    ).json()
    assert [(o["org_code"], o["period"], o["status"]) for o in press] == [
        ("520000-xwb", "2026-11", "open"),
        ("520000-xwb", "2026-10", "missed"),
    ]
    held = client.post(
        "/api/v1/obligation-records",
        json={
            "kind": "press_conference",
            "org_code": "520000-xwb",
            "held_on": "2026-11-03",
            "title": "全省防汛救灾新闻发布会",
        },
        headers=auth["prov-editor"],
    )
    assert held.status_code == 201, held.text
    november = client.get(
        "/api/v1/obligations",
        params={"period": "2026-11", "kind": "press_conference"},
        headers=auth["prov-editor"],
    ).json()
    assert [(o["status"], o["met_at"]) for o in november] == [("met", "2026-11-03")]

    wrong = client.post(
        "/api/v1/obligation-records",
        json={
            "kind": "press_conference",
            "org_code": "522601",
            "held_on": "2026-11-03",
            "title": "x",
        },
        headers=auth["kaili-editor"],
    )
    assert wrong.status_code == 422 and "没有press_conference义务" in wrong.json()["detail"]
    unknown = client.post(
        "/api/v1/obligation-records",
        json={"kind": "banquet", "org_code": "522601", "held_on": "2026-11-03", "title": "x"},
        headers=auth["kaili-editor"],
    )
    assert unknown.status_code == 422 and "self_inspection_report" in unknown.json()["detail"]
    report = client.post(
        "/api/v1/obligation-records",
        json={
            "kind": "self_inspection_report",
            "org_code": "522601",
            "held_on": "2026-11-20",
            "title": "凯里市2026年度政务公开自查报告",
        },
        headers=auth["kaili-editor"],
    )
    assert report.status_code == 201
    year = client.get(
        "/api/v1/obligations",
        params={"kind": "self_inspection_report", "org": "522601"},
        headers=auth["kaili-editor"],
    ).json()
    assert [(o["period"], o["status"], o["due_at"]) for o in year] == [
        ("2026", "met", "2026-12-31T23:59:59+08:00")
    ]


def _login(client: TestClient, username: str) -> str:
    page = client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf
    client.post(
        "/login",
        data={"username": username, "password": f"{username}-password", "csrf": csrf.group(1)},
        follow_redirects=False,
    )
    dashboard = client.get("/clocks")
    token = re.search(r'name="csrf" value="([^"]+)"', dashboard.text)
    assert token
    return token.group(1)


def test_dashboard_shows_overdue_unconfirmed_and_opens_clocks(
    client: TestClient, auth: Auth
) -> None:
    assert client.get("/clocks", follow_redirects=False).status_code == 303
    open_clock(client, auth["kaili-editor"], "disclosure", "522601", "2026-09-30T10:00:00+08:00")
    open_clock(
        client, auth["huangping-editor"], "interpretation", "522622", "2099-01-01T09:00:00+08:00"
    )

    csrf = _login(client, "kaili-editor")
    page = client.get("/clocks").text
    assert "时限看板" in page and "已逾期" in page
    assert "disclosure 2026-09-30T10:00:00+08:00" in page
    assert "日历未确认" not in page  # the 2099 clock is Huangping's, outside Kaili's scope

    forged = client.post(
        "/clocks",
        data={
            "kind": "hot_topic",
            "org_code": "522601",
            "subject": "无令牌",
            "started_at": "2026-11-26T09:00",
        },
    )
    assert forged.status_code == 403
    opened = client.post(
        "/clocks",
        data={
            "kind": "hot_topic",
            "org_code": "522601",
            "subject": "网传学校停课情况回应",
            "started_at": "2026-11-26T09:00",
            "csrf": csrf,
        },
        follow_redirects=False,
    )
    assert opened.status_code == 303
    listed = client.get(
        "/api/v1/clocks", params={"status": "overdue"}, headers=auth["kaili-editor"]
    ).json()
    made = [c for c in listed if c["subject"] == "网传学校停课情况回应"]
    assert made and made[0]["started_at"] == "2026-11-26T09:00:00+08:00"  # the form's local time
    refused = client.post(
        "/clocks",
        data={
            "kind": "hot_topic",
            "org_code": "522622",
            "subject": "越权",
            "started_at": "2026-11-26T09:00",
            "csrf": csrf,
        },
    )
    assert refused.status_code == 422 and "无权" in refused.text

    client.post("/logout", data={"csrf": csrf})
    _login(client, "supervisor")
    matrix = client.get("/clocks").text
    assert "全省矩阵" in matrix and "日历未确认" in matrix and "黄平县" in matrix
