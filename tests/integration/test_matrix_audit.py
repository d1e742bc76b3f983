"""The matrix audit on the Guizhou matrix: JSON, XLSX, CSV, saved runs, spokespersons, page.

Scenario (everything else is complete: every prefecture, livelihood department and county has a
Weibo and a WeChat account opened 2014-01-15 that posted three days before each audit date; every
prefecture and provincial department has a filed spokesperson):

- 黄平县 (522622) and 花溪区 (520111) have no WeChat account;
- 凯里市 (522601) opened its WeChat account on 2014-08-01, after the county deadline 2014-06-30;
- 贵阳市 (520100) opened its Weibo on 2014-05-10, after the prefecture deadline 2014-03-31;
- 南明区 (520102) Weibo has been silent for 20 days at "today";
- 乌当区 (520112) WeChat has no interaction channel;
- 省交通运输厅 (520000-jtt) has no spokesperson;
- 六盘水市 (520200) has a spokesperson but no assistant (新闻助理, §1); the others have both;
- 遵义市 (520300) changed its spokesperson on 2026-01-05 and has not filed the change.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlmodel import Session, select
from typer.testing import CliRunner

from hub.accounts.models import Account, AccountCreate, Platform
from hub.accounts.service import create as create_account
from hub.audit.models import AccountActivity, SpokespersonCreate, SpokespersonRole
from hub.audit.spokespersons import appoint
from hub.cli import app as cli
from hub.db import engine_for
from hub.delivery.models import Delivery, DeliveryStatus
from hub.orgs.models import Org, OrgLevel
from hub.posts.models import Post, PostStatus
from hub.users.models import Role
from tests.factories import credentials_key, make_user

DEADLINE_DAY = date(2014, 6, 30)
TODAY = date(2026, 3, 2)
NO_WECHAT = {"522622", "520111"}
LATE = {("522601", "wechat"): date(2014, 8, 1), ("520100", "weibo"): date(2014, 5, 10)}
SILENT = ("520102", "weibo")
NO_CHANNEL = ("520112", "wechat")
CREDENTIALS = {
    Platform("weibo"): {"access_token": "2.00sandbox"},
    Platform("wechat"): {"app_id": "wx0000", "app_secret": "secret"},
}


def _noon(day: date) -> datetime:
    return datetime.combine(day, time(4), tzinfo=UTC)  # 12:00 in Shanghai


def build_matrix(url: str) -> None:
    with Session(engine_for(url)) as session:
        orgs = list(session.exec(select(Org)).all())
        for org in orgs:
            if org.level in (OrgLevel.prefecture, OrgLevel.new_area, OrgLevel.county) or (
                org.level is OrgLevel.department and org.livelihood
            ):
                platforms = [Platform("weibo"), Platform("wechat")]
            else:
                platforms = [Platform("weibo")]  # province, other departments: one account
            for platform in platforms:
                if platform == "wechat" and org.code in NO_WECHAT:
                    continue
                key = (org.code, platform.value)
                account = create_account(
                    session=session,
                    data=AccountCreate(
                        org_code=org.code,
                        platform=platform,
                        name=f"{org.name}{'政务微博' if platform == 'weibo' else '微信'}",
                        opened_on=LATE.get(key, date(2014, 1, 15)),
                        interaction_channel=key != NO_CHANNEL,
                        credentials=CREDENTIALS[platform],
                    ),
                    credentials_key=credentials_key(),
                    org=org,
                )
                days = [DEADLINE_DAY - timedelta(days=3)]
                days.append(TODAY - timedelta(days=20 if key == SILENT else 3))
                for day in days:
                    session.add(
                        AccountActivity(
                            account_id=account.id,  # type: ignore[arg-type]
                            remote_id=f"{account.id}-{day.isoformat()}",
                            posted_at=_noon(day),
                            excerpt="日常发布",
                        )
                    )
            needs_spokesperson = org.level in (OrgLevel.prefecture, OrgLevel.new_area) or (
                org.level is OrgLevel.department
            )
            if needs_spokesperson and org.code != "520000-jtt":
                appoint(
                    session=session,
                    org=org,
                    data=SpokespersonCreate(
                        name=f"{org.name}发言人",
                        appointed_on=date(2013, 11, 1),
                        filed_on=date(2013, 11, 10),
                        published_on=date(2013, 11, 10),
                    ),
                )
                if org.code != "520200":
                    appoint(
                        session=session,
                        org=org,
                        data=SpokespersonCreate(
                            name=f"{org.name}新闻助理",
                            role=SpokespersonRole.assistant,
                            appointed_on=date(2013, 11, 1),
                        ),
                    )
            if org.code == "520300":
                appoint(
                    session=session,
                    org=org,
                    data=SpokespersonCreate(name="新任发言人", appointed_on=date(2026, 1, 5)),
                )
        session.commit()


def _findings(body: dict[str, Any]) -> set[tuple[str, str, str | None]]:
    return {(f["code"], f["org_code"], f["platform"]) for f in body["findings"]}


def _audit(
    client: TestClient, headers: dict[str, str], as_of: date, policy: str | None = None
) -> dict[str, Any]:
    params = {"as_of": as_of.isoformat()} | ({"policy": policy} if policy else {})
    response = client.get("/api/v1/audits/matrix", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_audit_at_the_county_deadline_lists_exactly_the_gaps(
    client: TestClient, auth: dict[str, dict[str, str]], guizhou: dict[str, str]
) -> None:
    build_matrix(guizhou["GOVHUB_DATABASE_URL"])
    body = _audit(client, auth["supervisor"], DEADLINE_DAY, "guizhou-2013")

    assert _findings(body) == {
        ("missing", "522622", "wechat"),
        ("missing", "520111", "wechat"),
        ("missing", "522601", "wechat"),  # its account opened a month later
        ("opened_late", "520100", "weibo"),
        ("spokesperson_missing", "520000-jtt", None),
        ("assistant_missing", "520200", None),
    }
    texts = {f["org_code"]: f["text_zh"] for f in body["findings"]}
    assert texts["522622"] == "未开通微信公众号"
    assert texts["520100"] == "开通晚于规定期限（2014-03-31），实际2014-05-10"
    assert texts["520000-jtt"] == "未配备新闻发言人"
    assert texts["520200"] == "未配备新闻发言人助理"

    orgs = {o["code"]: o for o in body["orgs"]}
    assert orgs["522622"]["verdict"] == "fail"
    assert (orgs["520100"]["verdict"], orgs["520100"]["score"]) == ("pass", 90)
    assert orgs["522623"]["verdict"] == "pass"
    assert orgs["520000-xwb"]["verdict"] == "pass"
    assert (orgs["520200"]["verdict"], orgs["520200"]["score"]) == ("pass", 95)

    prefectures = {p["code"]: p for p in body["prefectures"]}
    qdn = prefectures["522600"]
    assert (qdn["required"], qdn["covered"]) == (2 + 16 * 2, 2 + 16 * 2 - 2)
    assert qdn["orgs_audited"] - qdn["orgs_passed"] == 2  # 凯里, 黄平
    assert len(body["prefectures"]) == 10  # nine prefectures and 贵安新区
    assert body["province"]["orgs_audited"] - body["province"]["orgs_passed"] == 4


def test_audit_today_adds_activity_and_filing_checks(
    client: TestClient, auth: dict[str, dict[str, str]], guizhou: dict[str, str]
) -> None:
    build_matrix(guizhou["GOVHUB_DATABASE_URL"])
    body = _audit(client, auth["supervisor"], TODAY)  # national-2019 + guizhou-2013

    assert body["policy"] == "national-2019+guizhou-2013"
    assert _findings(body) == {
        ("missing", "522622", "wechat"),
        ("missing", "520111", "wechat"),
        ("opened_late", "522601", "wechat"),
        ("opened_late", "520100", "weibo"),
        ("inactive", "520102", "weibo"),
        ("no_interaction", "520112", "wechat"),
        ("spokesperson_missing", "520000-jtt", None),
        ("spokesperson_not_filed", "520300", None),
        ("assistant_missing", "520200", None),
    }
    by_code = {f["code"]: f for f in body["findings"]}
    assert by_code["inactive"]["text_zh"] == "已20天未更新"
    assert by_code["inactive"]["veto"] is True
    assert by_code["spokesperson_not_filed"]["text_zh"] == "新闻发言人变更未在1个月内公开并备案"
    accounts = {(a["org_code"], a["platform"]): a for a in body["accounts"]}
    assert accounts[SILENT]["verdict"] == "fail"
    assert accounts[SILENT]["last_activity_at"].startswith("2026-02-10")
    assert accounts[("522601", "wechat")]["score"] == 90


def test_a_copy_the_hub_published_counts_as_activity_before_ingestion(
    client: TestClient, auth: dict[str, dict[str, str]], guizhou: dict[str, str]
) -> None:
    """南明区's Weibo published through the hub yesterday: the audit sees it at once, with no
    ingestion run since (a failed copy counts for nothing)."""
    url = guizhou["GOVHUB_DATABASE_URL"]
    build_matrix(url)
    yesterday = _noon(TODAY - timedelta(days=1))
    with Session(engine_for(url)) as session:
        org = session.exec(select(Org).where(Org.code == SILENT[0])).one()
        account = session.exec(
            select(Account).where(Account.org_id == org.id, Account.platform == SILENT[1])
        ).one()
        editor = make_user(url, "nanming-editor", Role.editor, SILENT[0])
        for number, status in enumerate((DeliveryStatus.published, DeliveryStatus.failed)):
            post = Post(
                org_id=org.id,  # type: ignore[arg-type]
                author_id=editor.id,  # type: ignore[arg-type]
                title=f"通报{number}",
                status=PostStatus.published,
                approved_version=1,
            )
            session.add(post)
            session.flush()
            session.add(
                Delivery(
                    post_id=post.id,  # type: ignore[arg-type]
                    version=1,
                    account_id=account.id,  # type: ignore[arg-type]
                    status=status,
                    published_at=yesterday if status is DeliveryStatus.published else None,
                )
            )
        session.commit()

    body = _audit(client, auth["supervisor"], TODAY)

    assert ("inactive", SILENT[0], SILENT[1]) not in _findings(body)
    accounts = {(a["org_code"], a["platform"]): a for a in body["accounts"]}
    assert accounts[SILENT]["last_activity_at"].startswith((TODAY - timedelta(days=1)).isoformat())
    assert accounts[SILENT]["verdict"] == "pass"
    # an audit as of a day before that publication still finds the account silent
    earlier = _audit(client, auth["supervisor"], TODAY - timedelta(days=2))
    assert ("inactive", SILENT[0], SILENT[1]) in _findings(earlier)


def test_xlsx_has_a_summary_and_one_sheet_per_prefecture(
    client: TestClient, auth: dict[str, dict[str, str]], guizhou: dict[str, str]
) -> None:
    build_matrix(guizhou["GOVHUB_DATABASE_URL"])
    params = {"as_of": DEADLINE_DAY.isoformat(), "policy": "guizhou-2013"}
    response = client.get("/api/v1/audits/matrix.xlsx", params=params, headers=auth["supervisor"])
    assert response.status_code == 200
    assert "matrix-audit-2014-06-30.xlsx" in response.headers["content-disposition"]
    book = load_workbook(io.BytesIO(response.content))
    assert book.sheetnames[0] == "汇总"
    assert "黔东南苗族侗族自治州" in book.sheetnames
    assert "贵安新区" in book.sheetnames
    assert book.sheetnames[-1] == "省本级及省直部门"
    assert len(book.sheetnames) == 1 + 10 + 1

    summary = book["汇总"]
    assert summary["A3"].value == "地区" and summary["C3"].value == "应开通（个）"
    province = next(r for r in summary.iter_rows(min_row=4, values_only=True) if r[0] == "全省")
    body = _audit(client, auth["supervisor"], DEADLINE_DAY, "guizhou-2013")
    assert province[2:4] == (body["province"]["required"], body["province"]["covered"])
    counts = {r[1]: r[2] for r in summary.iter_rows(min_row=4, values_only=True) if r[1]}
    assert counts["missing"] == 3 and counts["opened_late"] == 1

    qdn = book["黔东南苗族侗族自治州"]
    assert qdn.freeze_panes == "A4"
    assert qdn.page_setup.orientation == "landscape"
    assert qdn.print_title_rows == "$1:$3"
    rows = {r[1]: r for r in qdn.iter_rows(min_row=4, values_only=True)}
    assert len(rows) == 17  # the prefecture and its 16 counties
    huangping = rows["黄平县"]
    assert huangping[4] == "未开通" and huangping[6] == "不合格"
    assert huangping[7] == "未开通微信公众号"
    assert rows["施秉县"][3:7] == ("合格", "合格", 100, "合格")


def test_csv_opens_in_excel_and_lists_every_audited_org(
    client: TestClient, auth: dict[str, dict[str, str]], guizhou: dict[str, str]
) -> None:
    build_matrix(guizhou["GOVHUB_DATABASE_URL"])
    params = {"as_of": DEADLINE_DAY.isoformat(), "policy": "guizhou-2013"}
    response = client.get("/api/v1/audits/matrix.csv", params=params, headers=auth["supervisor"])
    assert response.status_code == 200
    assert response.content.startswith("\ufeff".encode())  # Excel reads it as UTF-8
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    body = _audit(client, auth["supervisor"], DEADLINE_DAY, "guizhou-2013")
    assert len(rows) == sum(o["audited"] for o in body["orgs"])
    kaili = next(r for r in rows if r["机构代码"] == "522601")
    assert (kaili["地区"], kaili["结论"], kaili["问题"]) == (
        "黔东南苗族侗族自治州",
        "不合格",
        "未开通微信公众号",
    )


def test_only_supervisors_and_admins_audit_and_bad_input_is_explained(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    for path in ("/api/v1/audits/matrix", "/api/v1/audits/matrix.xlsx", "/api/v1/audits/runs"):
        assert client.get(path, headers=auth["kaili-editor"]).status_code == 403
    assert client.get("/api/v1/audits/matrix", headers=auth["admin"]).status_code == 200

    bad_date = client.get(
        "/api/v1/audits/matrix", params={"as_of": "2014-13-45"}, headers=auth["supervisor"]
    )
    assert bad_date.status_code == 422
    assert "检查基准日（as_of）应为 2014-06-30 这样的日期" in bad_date.json()["detail"]
    bad_policy = client.get(
        "/api/v1/audits/matrix", params={"policy": "hunan-2015"}, headers=auth["supervisor"]
    )
    assert bad_policy.status_code == 422
    assert "hunan-2015" in bad_policy.json()["detail"]
    assert "unknown preset" in bad_policy.json()["detail"]


def test_saved_runs_compare_what_improved_and_regressed(
    client: TestClient, auth: dict[str, dict[str, str]], guizhou: dict[str, str]
) -> None:
    build_matrix(guizhou["GOVHUB_DATABASE_URL"])
    headers = auth["supervisor"]
    old = client.post(
        "/api/v1/audits/runs",
        json={"as_of": "2014-06-30", "policy": "guizhou-2013", "note": "县级期限"},
        headers=headers,
    )
    assert old.status_code == 201, old.text
    new = client.post(
        "/api/v1/audits/runs",
        json={"as_of": TODAY.isoformat(), "policy": "guizhou-2013"},
        headers=headers,
    )
    assert new.status_code == 201
    assert client.post(
        "/api/v1/audits/runs", json={"as_of": "2014-06-30"}, headers=auth["kaili-editor"]
    ).status_code in (403,)

    runs = client.get("/api/v1/audits/runs", headers=headers).json()
    assert [r["id"] for r in runs] == [new.json()["id"], old.json()["id"]]
    assert runs[1]["summary"]["finding_counts"]["missing"] == 3
    assert runs[1]["created_by"] == "supervisor"

    compared = client.get(
        "/api/v1/audits/compare",
        params={"from": old.json()["id"], "to": new.json()["id"]},
        headers=headers,
    ).json()
    changes = {o["code"]: o["change"] for o in compared["orgs"] if o["change"] != "unchanged"}
    assert changes == {"522601": "improved", "520300": "regressed"}
    moved = {(f["change"], f["code"], f["org_code"]) for f in compared["findings"]}
    assert ("improved", "missing", "522601") in moved
    assert ("regressed", "opened_late", "522601") in moved
    assert ("regressed", "spokesperson_not_filed", "520300") in moved
    assert compared["findings_summary"] == {"improved": 1, "regressed": 2, "unchanged": 5}

    log = client.get(
        "/api/v1/audit-log", params={"action": "matrix_audit"}, headers=auth["admin"]
    ).json()
    entries = log["items"] if isinstance(log, dict) else log
    assert len(entries) == 2

    missing = client.get(
        "/api/v1/audits/compare", params={"from": 999, "to": new.json()["id"]}, headers=headers
    )
    assert missing.status_code == 404


def test_spokespersons_are_kept_by_their_org_with_history_and_filing(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    first = client.post(
        "/api/v1/orgs/522601/spokespersons",
        json={"name": "张三", "appointed_on": "2024-01-02", "phone": "0855-1234567"},
        headers=auth["kaili-editor"],
    )
    assert first.status_code == 201, first.text
    second = client.post(
        "/api/v1/orgs/522601/spokespersons",
        json={"name": "李四", "appointed_on": "2026-10-01", "filed_on": "2026-10-08"},
        headers=auth["kaili-editor"],
    )
    assert second.status_code == 201
    assert (
        client.post(
            "/api/v1/orgs/520100/spokespersons",
            json={"name": "王五", "appointed_on": "2026-10-01"},
            headers=auth["kaili-editor"],
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/api/v1/orgs/522601/spokespersons",
            json={"name": "王五", "appointed_on": "2026-10-01"},
            headers=auth["supervisor"],
        ).status_code
        == 403
    )

    overview = client.get("/api/v1/orgs/522601/spokespersons", headers=auth["supervisor"]).json()
    assert overview["current"]["spokesperson"]["name"] == "李四"
    assert overview["current"]["assistant"] is None
    assert [p["name"] for p in overview["history"]] == ["李四", "张三"]
    assert overview["history"][1]["ended_on"] == "2026-10-01"
    assert overview["filing"]["due_on"] == "2026-11-01"
    assert overview["filing"]["status"] == "overdue"  # filed, never published; today is later

    done = client.patch(
        f"/api/v1/orgs/522601/spokespersons/{second.json()['id']}",
        json={"published_on": "2026-10-09"},
        headers=auth["kaili-editor"],
    )
    assert done.status_code == 200
    overview = client.get("/api/v1/orgs/522601/spokespersons", headers=auth["supervisor"]).json()
    assert overview["filing"]["status"] == "filed"
    log = client.get(
        "/api/v1/audit-log", params={"action": "spokesperson"}, headers=auth["admin"]
    ).json()
    entries = log["items"] if isinstance(log, dict) else log
    assert len(entries) == 3


def _login(client: TestClient, username: str) -> None:
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    client.post(
        "/login",
        data={"username": username, "password": f"{username}-password", "csrf": token.group(1)},
    )


def test_audit_page_shows_chart_grid_trend_and_drill_down(
    client: TestClient, auth: dict[str, dict[str, str]], guizhou: dict[str, str]
) -> None:
    build_matrix(guizhou["GOVHUB_DATABASE_URL"])
    for as_of in ("2014-06-30", TODAY.isoformat()):
        client.post(
            "/api/v1/audits/runs",
            json={"as_of": as_of, "policy": "guizhou-2013"},
            headers=auth["supervisor"],
        )
    _login(client, "supervisor")
    page = client.get("/audit", params={"as_of": "2014-06-30", "policy": "guizhou-2013"})
    assert page.status_code == 200
    html = page.text
    assert "<svg" in html and "各市（州）政务新媒体账号覆盖率" in html
    assert "黔东南苗族侗族自治州" in html and "94.1%" in html  # 32 of 34 required pairs
    assert re.search(
        r'href="/audit/orgs/522622[^"]*">黄平县</a></th>\s*<td class="cell pass"', html
    )
    assert 'class="cell missing" title="未开通">未开通' in html
    assert "好转机构 1" in html and "退步机构 1" in html
    assert "http://" not in html.replace("http://hall.test", "")  # no external assets

    drill = client.get("/audit/orgs/520102", params={"as_of": TODAY.isoformat()})
    assert drill.status_code == 200
    assert "南明区政务微博" in drill.text and "已20天未更新" in drill.text
    assert "2026-02-10 12:00" in drill.text  # its latest post, in Beijing time

    bad = client.get("/audit", params={"as_of": "yesterday"})
    assert bad.status_code == 422 and "检查基准日（as_of）应为" in bad.text


def test_audit_pages_speak_english_when_chosen(
    client: TestClient, auth: dict[str, dict[str, str]], guizhou: dict[str, str]
) -> None:
    """Issue 18: the words, the states and the findings in English; the exports stay Chinese."""
    build_matrix(guizhou["GOVHUB_DATABASE_URL"])
    _login(client, "supervisor")
    client.get("/lang/en", params={"next": "/audit"})
    html = client.get("/audit", params={"as_of": "2014-06-30", "policy": "guizhou-2013"}).text
    assert "Government new media matrix audit" in html and "政务新媒体矩阵检查" not in html
    assert 'class="cell missing" title="Not opened">Not opened' in html
    assert "黔东南苗族侗族自治州" in html  # org names are data

    drill = client.get("/audit/orgs/520102", params={"as_of": TODAY.isoformat()}).text
    assert "No update for 20 days" in drill and "已20天未更新" not in drill
    assert "Not updated for long" in drill and "Back to the matrix audit" in drill

    csv_text = client.get("/api/v1/audits/matrix.csv", params={"as_of": "2014-06-30"}).text
    assert "未开通" in csv_text

    client.get("/lang/zh_CN", params={"next": "/audit"})
    back = client.get("/audit/orgs/520102", params={"as_of": TODAY.isoformat()}).text
    assert "已20天未更新" in back and "返回矩阵检查" in back


def test_audit_page_is_closed_to_editors(client: TestClient) -> None:
    _login(client, "kaili-editor")
    page = client.get("/audit")
    assert page.status_code == 403
    assert "仅对督查人员和管理员开放" in page.text


def test_cli_writes_the_audit_in_each_format(guizhou: dict[str, str], tmp_path: Path) -> None:
    build_matrix(guizhou["GOVHUB_DATABASE_URL"])
    runner = CliRunner()
    base = ["audit", "--as-of", "2014-06-30", "--policy", "guizhou-2013"]
    result = runner.invoke(cli, [*base, "--format", "xlsx", "-o", str(tmp_path / "a.xlsx")])
    assert result.exit_code == 0, result.output
    assert "6 findings" in result.output
    assert load_workbook(tmp_path / "a.xlsx").sheetnames[0] == "汇总"
    assert runner.invoke(cli, [*base, "-o", str(tmp_path / "a.json")]).exit_code == 0
    body = json.loads((tmp_path / "a.json").read_text("utf-8"))
    assert len(body["findings"]) == 6
    assert runner.invoke(cli, [*base, "-o", str(tmp_path / "a.csv")]).exit_code == 0
    assert (tmp_path / "a.csv").read_bytes().startswith(b"\xef\xbb\xbf")

    bad = runner.invoke(cli, ["audit", "--as-of", "30/06/2014", "-o", str(tmp_path / "b.csv")])
    assert bad.exit_code == 1 and "检查基准日（as_of）应为" in bad.output
