"""The editor's workspace (issue 18): the 稿件 page, the workbench, review, admin and audit pages,
as a browser sees them (HTTP with a session cookie)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.integration.test_editor_pages import login

pytestmark = pytest.mark.integration


def _post(client: TestClient, headers: dict[str, str], **body: object) -> int:
    created = client.post("/api/v1/posts", json={"body": "正文", **body}, headers=headers)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def _hall_account(client: TestClient, auth: dict[str, dict[str, str]]) -> int:
    made = client.post(
        "/api/v1/accounts",
        json={"org_code": "522601", "platform": "hall", "name": "凯里发布厅"},
        headers=auth["admin"],
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def _titles(html: str) -> list[str]:
    table = html[html.index('id="posts"') :]
    return re.findall(r'<a href="/[^"]+">([^<]+)</a>', table[: table.index("</table>")])


def test_the_posts_page_finds_my_posts_and_my_orgs_within_reach(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    kaili = auth["kaili-editor"]
    _post(client, kaili, title="凯里市防汛通知", body="请做好防汛准备。")
    _post(
        client,
        kaili,
        title="凯里市交通提示",
        body="春节期间凯里南站加开列车。",
        urgency="hot_topic",
    )
    _post(client, auth["huangping-editor"], title="黄平县防汛通知", body="防汛")
    login(client, "kaili-editor")

    page = client.get("/posts")
    assert page.status_code == 200
    assert set(_titles(page.text)) == {"凯里市防汛通知", "凯里市交通提示"}  # not another county's
    assert "稿件" in page.text and 'href="/posts"' in page.text  # in the menu

    assert _titles(client.get("/posts?q=防汛").text) == ["凯里市防汛通知"]  # title
    assert _titles(client.get("/posts?q=加开列车").text) == ["凯里市交通提示"]  # body
    assert _titles(client.get("/posts?urgency=hot_topic").text) == ["凯里市交通提示"]
    assert _titles(client.get("/posts?status=published").text) == []
    assert "没有符合条件的稿件" in client.get("/posts?status=published").text
    assert client.get("/posts?since=2001-01-01&until=2001-12-31").text.count("data-post=") == 0
    assert client.get("/posts?since=yesterday").status_code == 200  # a bad date is said, not 500
    assert "日期格式应为" in client.get("/posts?since=yesterday").text

    drafts = client.get("/drafts", follow_redirects=False)
    assert drafts.status_code == 303
    assert drafts.headers["location"].startswith("/posts?status=drafts")
    assert set(_titles(client.get(drafts.headers["location"]).text)) == {
        "凯里市防汛通知",
        "凯里市交通提示",
    }
    # the prefecture sees its counties' posts too (reach)
    client.cookies.clear()
    login(client, "qdn-editor")
    assert len(_titles(client.get("/posts").text)) == 3


def test_the_posts_page_pages(client: TestClient, auth: dict[str, dict[str, str]]) -> None:
    for n in range(31):
        _post(client, auth["kaili-editor"], title=f"稿件{n:02d}")
    login(client, "kaili-editor")
    first = client.get("/posts")
    assert first.text.count("data-post=") == 30
    assert "第 1 / 2 页" in first.text and "page_no=2" in first.text
    second = client.get("/posts?page_no=2")
    assert _titles(second.text) == ["稿件00"]  # the oldest change last


def test_the_workbench_shows_my_posts_in_review_and_the_board_explains_no_copies(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    account = _hall_account(client, auth)
    post = _post(client, auth["kaili-editor"], title="待审的通知", target_account_ids=[account])
    submitted = client.post(f"/api/v1/posts/{post}/submit", headers=auth["kaili-editor"])
    assert submitted.status_code == 200, submitted.text
    login(client, "kaili-editor")
    home = client.get("/").text
    waiting = home[home.index('id="h-waiting"') : home.index('id="h-review"')]
    assert "待审的通知" in waiting and "待审核" in waiting
    board = client.get(f"/posts/{post}/board")
    assert board.status_code == 200
    assert "稿件批准后才会生成投递" in board.text
    client.cookies.clear()
    login(client, "kaili-reviewer")
    home = client.get("/").text
    assert "待审的通知" in home[home.index('id="h-review"') :]


def test_a_blocked_submission_is_explained_in_chinese_naming_the_platform(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    none = _post(client, auth["kaili-editor"], title="无账号")
    refused = client.post(f"/api/v1/posts/{none}/submit", headers=auth["kaili-editor"])
    assert refused.status_code == 422
    assert refused.json()["detail"] == "请先选择至少一个发布账号，再提交审核"

    wechat = client.post(
        "/api/v1/accounts",
        json={
            "org_code": "522601",
            "platform": "wechat",
            "name": "凯里发布",
            "credentials": {"app_id": "wxkaili", "app_secret": "s" * 32},
        },
        headers=auth["admin"],
    )
    assert wechat.status_code == 201, wechat.text
    post = _post(
        client, auth["kaili-editor"], title="没有封面", target_account_ids=[wechat.json()["id"]]
    )
    refused = client.post(f"/api/v1/posts/{post}/submit", headers=auth["kaili-editor"])
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert detail.startswith("提交审核前请先解决以下问题：微信公众号：")
    assert "wechat" not in detail and "fix these" not in detail


def test_the_weibo_preview_carries_the_one_picture_the_status_is_sent_with(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    from tests.integration.test_editor_pages import png

    weibo = client.post(
        "/api/v1/accounts",
        json={
            "org_code": "522601",
            "platform": "weibo",
            "name": "凯里微博",
            "credentials": {"access_token": "t" * 32},
        },
        headers=auth["admin"],
    )
    assert weibo.status_code == 201, weibo.text
    paths = []
    for _ in range(2):
        sent = client.post(
            "/api/v1/media",
            files={"file": ("p.png", png(), "image/png")},
            headers=auth["kaili-editor"],
        )
        paths.append(sent.json()["path"])
    post = _post(
        client,
        auth["kaili-editor"],
        title="两张图",
        images=paths,
        target_account_ids=[weibo.json()["id"]],
    )
    previews = client.get(f"/api/v1/posts/{post}/preview", headers=auth["kaili-editor"]).json()
    card = next(p for p in previews if p["platform"] == "weibo")
    assert [url.split("/media/")[1] for url in card["images"]] == paths[:1]  # Weibo sends one
    login(client, "kaili-editor")
    assert 'id="weibo-pics"' in client.get(f"/posts/{post}/edit").text


def test_the_review_page_compares_with_the_last_submitted_version_and_names_the_author(
    client: TestClient, auth: dict[str, dict[str, str]], guizhou: dict[str, str]
) -> None:
    from sqlmodel import Session, select

    from hub.db import engine_for
    from hub.users.models import User

    with Session(engine_for(guizhou["GOVHUB_DATABASE_URL"])) as session:
        user = session.exec(select(User).where(User.username == "kaili-editor")).one()
        user.display_name = "王小凯"
        session.add(user)
        session.commit()
    editor, reviewer = auth["kaili-editor"], auth["kaili-reviewer"]
    account = _hall_account(client, auth)
    post = _post(client, editor, title="送审稿", body="第一句。", target_account_ids=[account])
    for body in ("第一句。第二句。", "第一句。第二句。第三句。"):  # autosaves: versions 2 and 3
        assert client.patch(f"/api/v1/posts/{post}", json={"body": body}, headers=editor).is_success
    assert client.post(f"/api/v1/posts/{post}/submit", headers=editor).is_success
    login(client, "kaili-reviewer")
    first = client.get(f"/review/{post}").text
    assert "这是首次送审，没有可比较的版本" in first  # not "第 2 版" against an autosave
    assert "王小凯" in first and "kaili-editor" not in first

    rejected = client.post(
        f"/api/v1/posts/{post}/reject", json={"reason": "补充时间"}, headers=reviewer
    )
    assert rejected.is_success, rejected.text
    for body in ("改一。", "改二：时间为明日9时。"):  # two more autosaves: versions 4 and 5
        assert client.patch(f"/api/v1/posts/{post}", json={"body": body}, headers=editor).is_success
    assert client.post(f"/api/v1/posts/{post}/submit", headers=editor).is_success
    second = client.get(f"/review/{post}").text
    assert "第 3 版（上次送审）" in second  # the version the reviewer rejected
    assert "第 4 版" not in second


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_an_admin_creates_a_user_from_the_users_page(client: TestClient) -> None:
    login(client, "admin")
    page = client.get("/admin/users")
    assert page.status_code == 200 and "新建用户" in page.text
    form = {
        "csrf": _csrf(page.text),
        "username": "kaili-new",
        "display_name": "凯里新人",
        "role": "editor",
        "org_code": "522601",
        "password": "Kaili-Editor-2026!",
    }
    made = client.post("/admin/users", data=form, follow_redirects=False)
    assert made.status_code == 303
    shown = client.get("/admin/users").text
    assert "已创建用户 kaili-new" in shown and "凯里新人" in shown
    again = client.post("/admin/users", data=form, follow_redirects=True)
    assert "用户名 kaili-new 已被使用" in again.text
    weak = client.post("/admin/users", data={**form, "username": "x2", "password": "short"})
    assert "密码太短" in weak.text
    client.cookies.clear()
    # the new user logs in with the password the admin set
    form_page = client.get("/login").text
    done = client.post(
        "/login",
        data={"username": "kaili-new", "password": form["password"], "csrf": _csrf(form_page)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    editor = client.get("/admin/users")
    assert editor.status_code == 403
    assert client.post("/admin/users", data={**form, "csrf": "x"}).status_code == 403


def test_an_admin_lists_imports_and_edits_orgs(client: TestClient, guizhou: dict[str, str]) -> None:
    from hub.users.models import Role
    from tests.factories import make_user

    login(client, "admin")
    page = client.get("/admin/orgs?q=5226")
    assert page.status_code == 200
    assert "黔东南" in page.text and "机构管理" in page.text
    assert 'href="/admin/orgs"' in page.text  # in the admin's menu
    csv = "code,name,level,parent_code,livelihood\n522699,凯里新区,new_area,522600,是\n"
    imported = client.post(
        "/admin/orgs/import",
        data={"csrf": _csrf(page.text)},
        files={"file": ("orgs.csv", csv.encode("gb18030"), "text/csv")},
        follow_redirects=True,
    )
    assert "新增 1" in imported.text
    assert "凯里新区" in client.get("/admin/orgs?q=522699").text
    assert "凯里新区" in client.get("/admin/orgs?livelihood=1").text
    edited = client.post(
        "/admin/orgs/522699",
        data={"csrf": _csrf(page.text), "name": "凯里经济开发区", "livelihood": ""},
        follow_redirects=True,
    )
    assert "名称 凯里新区 → 凯里经济开发区" in edited.text and "民生领域：否" in edited.text
    assert "凯里经济开发区" not in client.get("/admin/orgs?livelihood=1").text
    bad = client.post(
        "/admin/orgs/import",
        data={"csrf": _csrf(page.text)},
        files={"file": ("orgs.csv", b"code,name\n1,x\n", "text/csv")},
        follow_redirects=True,
    )
    assert "导入失败（未做任何修改）" in bad.text

    # a county admin cannot import or edit beyond its county
    make_user(guizhou["GOVHUB_DATABASE_URL"], "kaili-admin", Role.admin, "522601")
    client.cookies.clear()
    login(client, "kaili-admin")
    page = client.get("/admin/orgs")
    assert "黔东南苗族侗族自治州" not in page.text
    outside = client.post(
        "/admin/orgs/import",
        data={"csrf": _csrf(page.text)},
        files={"file": ("orgs.csv", csv.encode(), "text/csv")},
        follow_redirects=True,
    )
    assert "不在您的管理范围内" in outside.text
    assert (
        client.post("/admin/orgs/522600", data={"csrf": _csrf(page.text), "name": "x"}).status_code
        == 404
    )
    client.cookies.clear()
    login(client, "kaili-editor")
    assert client.get("/admin/orgs").status_code == 403


def test_the_accounts_page_offers_a_new_account_form_with_each_platforms_fields(
    client: TestClient,
) -> None:
    login(client, "admin")
    page = client.get("/accounts").text
    assert "新增账号" in page
    wechat = page[page.index('data-platform-fields="wechat"') :]
    wechat = wechat[: wechat.index("</fieldset>")]
    assert "AppID" in wechat and "AppSecret" in wechat
    assert 'name="app_secret" type="password"' in wechat
    client.cookies.clear()
    login(client, "kaili-editor")
    assert "新增账号" not in client.get("/accounts").text


def test_an_unknown_url_answers_a_chinese_page_to_browsers_and_json_to_api_clients(
    client: TestClient,
) -> None:
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    anonymous = client.get("/no-such-page", headers=browser)
    assert anonymous.status_code == 404
    assert "页面不存在" in anonymous.text and "<html" in anonymous.text
    login(client, "kaili-editor")
    page = client.get("/admin/nothing", headers=browser)
    assert page.status_code == 404
    assert "页面不存在" in page.text and 'href="/posts"' in page.text  # the house layout, menu
    api = client.get("/api/v1/nothing", headers=browser)
    assert api.status_code == 404 and api.json() == {"detail": "Not Found"}
    script = client.get("/no-such-page", headers={"Accept": "application/json"})
    assert script.status_code == 404 and script.json() == {"detail": "Not Found"}


def test_the_supervisors_calendar_links_posts_to_a_page_it_may_read(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    from datetime import UTC, datetime, timedelta

    from hub.config import get_settings

    when = datetime.now(UTC) + timedelta(minutes=5)
    soon, day = when.isoformat(), when.astimezone(get_settings().tz).date().isoformat()
    post = _post(client, auth["kaili-editor"], title="日历里的稿件", scheduled_at=soon)
    login(client, "supervisor")
    page = client.get(f"/calendar?view=month&day={day}").text
    link = re.search(r'<a href="([^"]+)">日历里的稿件</a>', page)
    assert link, page
    assert link.group(1) == f"/review/{post}"
    opened = client.get(link.group(1))
    assert opened.status_code == 200 and "日历里的稿件" in opened.text
    client.cookies.clear()
    login(client, "kaili-editor")  # the author still goes to the editor
    page = client.get(f"/calendar?view=month&day={day}").text
    assert f'<a href="/posts/{post}/edit">日历里的稿件</a>' in page


def test_the_audit_page_saves_and_compares_checks_and_reads_in_chinese(
    client: TestClient, guizhou: dict[str, str]
) -> None:
    import io
    from datetime import date

    from openpyxl import load_workbook
    from sqlmodel import Session

    from hub.db import engine_for
    from hub.orgs.models import OrgLevel
    from hub.orgs.service import OrgRow, import_rows
    from tests.integration.test_matrix_audit import TODAY, build_matrix

    url = guizhou["GOVHUB_DATABASE_URL"]
    build_matrix(url)
    with Session(engine_for(url)) as session:  # a county with no account at all
        row = OrgRow("522698", "无号县", OrgLevel.county, "522600")
        import_rows(session=session, rows=[row], today=date(2014, 1, 1))
        session.commit()
    login(client, "supervisor")
    page = client.get("/audit", params={"as_of": TODAY.isoformat()})
    assert page.status_code == 200
    html = page.text
    assert "POST /api/v1/audits" not in html
    assert '<select id="policy" name="policy">' in html
    assert '<option value="guizhou-2013"' in html and '<option value="national-2019"' in html
    nohao = html[html.index(">无号县</a>") :]
    assert "无账号" in nohao[: nohao.index("</tr>")]  # not "100" beside 不合格
    drill = client.get("/audit/orgs/522698", params={"as_of": TODAY.isoformat()})
    assert "无账号，不计分" in drill.text and "100 分" not in drill.text

    for as_of in ("2014-06-30", TODAY.isoformat()):  # 保存本次检查结果, twice
        saved = client.post(
            "/audit/runs",
            data={"csrf": _csrf(html), "as_of": as_of, "policy": "guizhou-2013"},
            follow_redirects=True,
        )
        assert saved.status_code == 200
    assert "已保存 2 次" in saved.text and "好转机构" in saved.text

    xlsx = client.get(
        "/api/v1/audits/matrix.xlsx",
        params={"as_of": TODAY.isoformat()},
        headers={"Accept": "*/*"},
    )
    book = load_workbook(io.BytesIO(xlsx.content))
    sheet = book["贵阳市"]
    problems = [c.value for c in sheet[3]].index("问题")
    rows = {r[1]: r for r in sheet.iter_rows(min_row=4, values_only=True)}
    assert "政务微博：已20天未更新" in rows["南明区"][problems]  # the finding names its platform


def test_the_audit_log_page_reads_in_chinese(
    client: TestClient, auth: dict[str, dict[str, str]]
) -> None:
    _post(client, auth["kaili-editor"], title="防汛通知")
    login(client, "supervisor")
    page = client.get("/audit-log?action=post.").text
    assert "新建稿件" in page and "「防汛通知」（常规）" in page
    assert "(routine)" not in page


def test_the_schedule_field_says_beijing_time(client: TestClient) -> None:
    login(client, "kaili-editor")
    page = client.get("/compose").text
    label = page[page.index('<label for="scheduled">') :]
    label = label[: label.index("</label>")]
    assert "北京时间" in label and "Asia/Shanghai" not in label


def test_the_api_docs_load_their_assets_from_this_server(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "cdn" not in docs.text.lower()
    scripts = re.findall(r'src="([^"]+)"', docs.text)
    styles = re.findall(r'href="(/[^"]+\.css)"', docs.text)
    assert scripts and styles
    for asset in scripts + styles:
        assert asset.startswith("/"), asset
        served = client.get(asset)
        assert served.status_code == 200 and len(served.content) > 100, asset
    assert "<script>" not in docs.text  # no inline script: the CSP holds
    assert client.get("/openapi.json").json()["info"]["title"] == "govhub"


def test_the_hall_home_has_one_search_box(client: TestClient) -> None:
    home = client.get("/hall?q=防汛")
    assert home.status_code == 200
    assert home.text.count('type="search"') == 1
    assert '<input type="hidden" name="q" value="防汛">' in home.text  # filters keep the query


def test_make_demo_takes_a_port() -> None:
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    dry = subprocess.run(
        ["make", "-n", "demo", "PORT=9000"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "govhub demo --port 9000" in dry.stdout
