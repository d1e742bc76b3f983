"""The admin's 机构管理 page: orgs in reach (search, livelihood filter, paging), CSV import, and
editing one org (name — the old one kept as history —, the livelihood and press-office flags,
the WeChat comments default), and one org's group robot (set, test, clear). Forms post with the
CSRF token; every change is an audit event."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from annotated_types import Le
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import col, func, select

from hub.auditlog.service import record
from hub.errors import HubError, NotFound
from hub.notify import rules as notify_rules
from hub.notify import service as notify
from hub.orgs import service as orgs
from hub.orgs.models import Org
from hub.users.rules import Access, Action, access, scope_path
from hub.users.who import Who
from hub.web import i18n
from hub.web.deps import SessionDep, client_ip
from hub.web.i18n import _
from hub.web.pages import Page, page_of, refuse, render, to_login
from hub.web.views import check_csrf

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
IMPORT_MAX_BYTES = 2 * 1024 * 1024


def _audit(
    request: Request, page: Page, session: SessionDep, org: Org, action: str, summary: str
) -> None:
    record(
        session=session,
        actor_id=page.user.id,
        actor_name=page.user.username,
        action=action,
        object_type="org",
        object_id=org.code,
        org_id=org.id,
        summary=summary,
        client_ip=client_ip(request),
    )


def _admin(request: Request, session: SessionDep) -> Page | Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    if not page.may(Action.org_manage):
        return refuse(request, page, 403, _("机构管理仅对管理员开放。"))
    return page


@router.get("/admin/orgs", response_class=HTMLResponse)
def orgs_page(
    request: Request,
    session: SessionDep,
    q: str = "",
    livelihood: str = "",
    page_no: Annotated[int, Le(1_000_000)] = 1,
) -> Response:
    page = _admin(request, session)
    if isinstance(page, Response):
        return page
    q = q.strip()[:100]
    page_no = max(page_no, 1)
    query = select(Org).where(col(Org.path).startswith(scope_path(page.actor, Action.org_manage)))
    if q:
        query = query.where(
            col(Org.name).contains(q, autoescape=True)
            | col(Org.code).startswith(q, autoescape=True)
        )
    if livelihood == "1":
        query = query.where(Org.livelihood == True)  # noqa: E712 (SQL)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(
        query.order_by(col(Org.path)).offset((page_no - 1) * PAGE_SIZE).limit(PAGE_SIZE)
    ).all()
    filters = {"q": q, "livelihood": "1" if livelihood == "1" else ""}
    return render(
        request,
        "pages/orgs.html",
        page,
        rows=rows,
        total=total,
        page_no=page_no,
        pages=max((int(total) + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        filters=filters,
        query=urlencode({k: v for k, v in filters.items() if v}),
        notice=request.session.pop("notice", ""),
        error=request.session.pop("error", ""),
    )


@router.post("/admin/orgs/import")
async def import_orgs(
    request: Request,
    session: SessionDep,
    file: Annotated[UploadFile, File()],
    csrf: Annotated[str, Form()] = "",
) -> Response:
    page = _admin(request, session)
    if isinstance(page, Response):
        return page
    check_csrf(request, csrf)
    data = await file.read(IMPORT_MAX_BYTES + 1)
    try:
        if len(data) > IMPORT_MAX_BYTES:
            raise HubError("文件超过 2 MB")
        rows = orgs.parse_csv(orgs.decode_csv(data))
        if not rows:
            raise HubError("文件中没有机构")
        report = orgs.import_rows(session=session, rows=rows, today=date.today())
        scope = scope_path(page.actor, Action.org_manage)
        outside = [
            row.code
            for row in rows
            if not orgs.get_by_code(session=session, code=row.code).path.startswith(scope)
        ]
        if outside:  # the file reaches beyond this admin's subtree: nothing of it is kept
            raise HubError("以下机构不在您的管理范围内：%(codes)s", codes="、".join(outside[:10]))
    except HubError as exc:
        session.rollback()
        request.session["error"] = _("导入失败（未做任何修改）：%(why)s") % {
            "why": i18n.error_text(exc, request)
        }
        return RedirectResponse("/admin/orgs", status_code=303)
    summary = (
        f"导入 {len(rows)} 行：新增 {report.created}，改名 {report.renamed}，"
        f"更新 {report.updated}，未变 {report.unchanged}"
    )
    if page.org is not None:
        _audit(request, page, session, page.org, "org.import", summary)
    session.commit()
    request.session["notice"] = _(
        "导入 %(rows)s 行：新增 %(created)s，改名 %(renamed)s，更新 %(updated)s，未变 %(unchanged)s"
    ) % {
        "rows": len(rows),
        "created": report.created,
        "renamed": report.renamed,
        "updated": report.updated,
        "unchanged": report.unchanged,
    }
    return RedirectResponse("/admin/orgs", status_code=303)


@router.post("/admin/orgs/{code}")
def edit_org(
    code: str,
    request: Request,
    session: SessionDep,
    csrf: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    livelihood: Annotated[str, Form()] = "",
    press_office: Annotated[str, Form()] = "",
    wechat_comments: Annotated[str, Form()] = "",
) -> Response:
    page = _admin(request, session)
    if isinstance(page, Response):
        return page
    try:
        org = orgs.get_by_code(session=session, code=code[:32])
    except NotFound:
        return refuse(request, page, 404)
    verdict = access(page.actor, Action.org_manage, org.path)
    if verdict is not Access.allowed:
        return refuse(request, page, 404 if verdict is Access.hidden else 403)
    check_csrf(request, csrf)
    name = name.strip()
    if not name or len(name) > 200:
        request.session["error"] = _("%(code)s：名称不能为空，也不能超过200个字符") % {
            "code": org.code
        }
        return RedirectResponse(f"/admin/orgs?q={org.code}", status_code=303)
    if wechat_comments not in orgs.WECHAT_COMMENTS:
        wechat_comments = org.wechat_comments
    changes = []
    if name != org.name:
        changes.append(f"名称 {org.name} → {name}")
        orgs.rename(session=session, org=org, new_name=name, today=date.today())
    for attr, word, value in (
        ("livelihood", "民生领域", livelihood == "1"),
        ("press_office", "新闻办", press_office == "1"),
    ):
        if getattr(org, attr) != value:
            changes.append(f"{word}：{'是' if value else '否'}")
            setattr(org, attr, value)
    if wechat_comments != org.wechat_comments:
        changes.append(f"微信留言默认：{wechat_comments}")
        org.wechat_comments = wechat_comments
    if changes:
        session.add(org)
        _audit(request, page, session, org, "org.update", "；".join(changes))
        session.commit()
        request.session["notice"] = _("已保存 %(name)s：%(changes)s") % {
            "name": org.name,
            "changes": "；".join(changes),
        }
    else:
        request.session["notice"] = _("%(name)s 没有改动。") % {"name": org.name}
    return RedirectResponse(f"/admin/orgs?q={org.code}", status_code=303)


# -- an org's group robot (the page of PUT /api/v1/notifications/org-robot/{code}) ---------------


def _robot_org(request: Request, session: SessionDep, code: str) -> tuple[Page, Org] | Response:
    """Reach before rights: 404 outside the user's subtree, 403 without ``org.manage``."""
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    try:
        org = orgs.get_by_code(session=session, code=code[:32])
    except NotFound:
        return refuse(request, page, 404)
    verdict = access(page.actor, Action.org_manage, org.path)
    if verdict is not Access.allowed:
        return refuse(
            request,
            page,
            404 if verdict is Access.hidden else 403,
            _("群机器人仅由本机构的管理员设置。"),
        )
    return page, org


@router.get("/admin/orgs/{code}/robot", response_class=HTMLResponse)
def org_robot_page(code: str, request: Request, session: SessionDep) -> Response:
    found = _robot_org(request, session, code)
    if isinstance(found, Response):
        return found
    page, org = found
    robot = notify.robot_of(session, org_id=org.id)
    return render(
        request,
        "pages/org_robot.html",
        page,
        target=org,
        robot=robot,
        robot_host=notify.robot_host(robot.url) if robot else "",
        flavors=[(f.value, _(label)) for f, label in notify_rules.FLAVOR_LABELS.items()],
        notice=request.session.pop("notice", ""),
        error=request.session.pop("error", ""),
    )


@router.post("/admin/orgs/{code}/robot")
def org_robot_action(
    code: str,
    request: Request,
    session: SessionDep,
    csrf: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "save",
    flavor: Annotated[str, Form()] = "",
    url: Annotated[str, Form()] = "",
    secret: Annotated[str, Form()] = "",
) -> Response:
    found = _robot_org(request, session, code)
    if isinstance(found, Response):
        return found
    page, org = found
    check_csrf(request, csrf)
    who = Who(page.user, page.actor, client_ip(request))
    back = RedirectResponse(f"/admin/orgs/{org.code}/robot", status_code=303)
    if action == "test":
        why = notify.try_org_robot(session, org=org, who=who)
        session.commit()
        if why:
            request.session["error"] = _("测试失败：%(why)s") % {"why": why}
        else:
            request.session["notice"] = _("测试消息已送达，请在群里查看。")
        return back
    if action == "clear":
        url = ""
    elif not url.strip():
        request.session["error"] = _("请填写群机器人地址。")
        return back
    try:
        notify.set_org_robot(
            session, org=org, flavor=flavor, url=url[:1000], secret=secret[:200], who=who
        )
    except HubError as exc:
        session.rollback()
        request.session["error"] = _("未保存：%(why)s") % {"why": i18n.error_text(exc, request)}
        return back
    session.commit()
    request.session["notice"] = (
        _("已清除群机器人。") if action == "clear" else _("已保存群机器人。")
    )
    return back
