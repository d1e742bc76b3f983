"""Pages for one's own account (我的账户: change password, sign out everywhere) and for user
administration (用户管理: disable/enable, reset a password). Forms post with a CSRF token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import select

from hub.auditlog.service import audit
from hub.errors import Conflict, Forbidden, HubError, NotFound
from hub.notify.views import notify_choices
from hub.orgs import service as orgs
from hub.orgs.models import Org
from hub.sqltypes import Id, utcnow
from hub.users import service as users
from hub.users.models import Role, User
from hub.users.passwords import RULE
from hub.users.rules import Access, Action, access, scope_path
from hub.users.who import Who
from hub.web import i18n
from hub.web.deps import SessionDep, client_ip
from hub.web.i18n import _
from hub.web.pages import Page, page_of, refuse, render, to_login
from hub.web.views import check_csrf

router = APIRouter(include_in_schema=False)


def _audit(
    request: Request, session: SessionDep, page: Page, user: User, action: str, summary: str
) -> None:
    audit(
        session,
        Who(page.user, page.actor, client_ip(request)),
        action,
        "user",
        user.id,
        org_id=user.org_id,
        summary=summary,
    )


# -- my account ---------------------------------------------------------------------------------


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, session: SessionDep) -> Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    return render(
        request,
        "pages/account.html",
        page,
        notice=request.session.pop("notice", ""),
        error=request.session.pop("error", ""),
        rule=_(RULE),
        sessions=users.open_sessions(session=session, user_id=page.user.id or 0),
        **notify_choices(session, page.user),
    )


@router.post("/account/password")
def change_password(
    request: Request,
    session: SessionDep,
    csrf: Annotated[str, Form()] = "",
    current_password: Annotated[str, Form()] = "",
    new_password: Annotated[str, Form()] = "",
    confirm_password: Annotated[str, Form()] = "",
) -> Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    check_csrf(request, csrf)
    try:
        if new_password != confirm_password:
            raise HubError("两次输入的新密码不一致")
        users.change_password(
            session=session, user=page.user, current=current_password, new=new_password
        )
    except HubError as exc:
        session.rollback()
        request.session["error"] = i18n.error_text(exc, request)
        return RedirectResponse("/account", status_code=303)
    _audit(
        request,
        session,
        page,
        page.user,
        "user.password_change",
        "修改了自己的密码，并签退所有会话",
    )
    session.commit()
    # every other browser and token is signed out; this browser continues on a fresh session
    sid = users.open_session(
        session=session, user=page.user, now=utcnow(), client_ip=client_ip(request)
    )
    request.session["sid"] = sid
    request.session["notice"] = "密码已修改。其他设备上的登录和所有 API 令牌已失效。"
    return RedirectResponse("/account", status_code=303)


@router.post("/account/sign-out-everywhere")
def sign_out_everywhere(
    request: Request, session: SessionDep, csrf: Annotated[str, Form()] = ""
) -> Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    check_csrf(request, csrf)
    ended = users.revoke_everywhere(session=session, user=page.user)
    _audit(
        request,
        session,
        page,
        page.user,
        "user.sign_out_everywhere",
        f"在所有设备上退出登录（{ended} 个网页会话，所有 API 令牌）",
    )
    session.commit()
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


# -- user administration ------------------------------------------------------------------------


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, session: SessionDep) -> Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    if not page.may(Action.user_manage):
        return refuse(request, page, 403, "用户管理仅对管理员开放。")
    rows = session.exec(
        select(User, Org)
        .join(Org)
        .where(Org.path.startswith(scope_path(page.actor, Action.user_manage)))
        .order_by(Org.path, User.username)
    ).all()
    scope = scope_path(page.actor, Action.user_manage)
    return render(
        request,
        "pages/users.html",
        page,
        rows=[(u, o) for u, o in rows if page.may(Action.user_manage, o)],
        notice=request.session.pop("notice", ""),
        error=request.session.pop("error", ""),
        rule=_(RULE),
        roles=[r.value for r in Role],
        org_choices=session.exec(
            select(Org).where(Org.path.startswith(scope)).order_by(Org.path).limit(1000)
        ).all(),
    )


@router.post("/admin/users")
def create_user(
    request: Request,
    session: SessionDep,
    csrf: Annotated[str, Form()] = "",
    username: Annotated[str, Form()] = "",
    display_name: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
    org_code: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    """新建用户: the same checks as ``POST /api/v1/users`` (reach, may_assign, password rule)."""
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    if not page.may(Action.user_manage):
        return refuse(request, page, 403, "用户管理仅对管理员开放。")
    check_csrf(request, csrf)
    username = username.strip()
    try:
        if role not in Role.__members__:
            raise HubError("请选择角色")
        if not username:
            raise HubError("请填写用户名")
        if len(username) > 80 or len(display_name) > 80 or len(org_code) > 32:
            raise HubError("用户名和姓名不能超过80个字符")
        org = orgs.get_by_code(session=session, code=org_code.strip())
        if access(page.actor, Action.user_manage, org.path) is not Access.allowed:
            raise NotFound("没有代码为 %(code)r 的机构", code=org_code.strip())
        users.check_assign(session=session, actor=page.actor, role=Role(role), org=org)
        user = users.create(
            session=session,
            username=username,
            password=password,
            role=Role(role),
            org_code=org.code,
            display_name=display_name.strip(),
        )
    except NotFound:
        session.rollback()
        request.session["error"] = _("机构代码不存在或不在您的管理范围内")
        return RedirectResponse("/admin/users", status_code=303)
    except Forbidden:
        session.rollback()
        request.session["error"] = _(
            "您不能在该机构授予这一角色：只能在本机构及下级机构内，且不能超出您自己的范围"
        )
        return RedirectResponse("/admin/users", status_code=303)
    except Conflict:
        session.rollback()
        request.session["error"] = _("用户名 %(name)s 已被使用") % {"name": username}
        return RedirectResponse("/admin/users", status_code=303)
    except HubError as exc:
        session.rollback()
        request.session["error"] = i18n.error_text(exc, request)
        return RedirectResponse("/admin/users", status_code=303)
    _audit(request, session, page, user, "user.create", f"{user.username}（{role}）@ {org.name}")
    session.commit()
    request.session["notice"] = _("已创建用户 %(name)s。") % {"name": user.username}
    return RedirectResponse("/admin/users", status_code=303)


def _managed(request: Request, session: SessionDep, user_id: int) -> tuple[Page, User] | Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    user = session.get(User, user_id)
    if user is None:
        return refuse(request, page, 404)
    verdict = access(
        page.actor, Action.user_manage, orgs.get(session=session, org_id=user.org_id).path
    )
    if verdict is not Access.allowed:  # outside the reach it reads like a missing user
        return refuse(request, page, 404 if verdict is Access.hidden else 403)
    return page, user


@router.post("/admin/users/{user_id}/active")
def set_active(
    user_id: Id,
    request: Request,
    session: SessionDep,
    csrf: Annotated[str, Form()] = "",
    active: Annotated[str, Form()] = "",
) -> Response:
    found = _managed(request, session, user_id)
    if isinstance(found, Response):
        return found
    page, user = found
    check_csrf(request, csrf)
    enable = active == "1"
    try:
        changed = users.set_active(session=session, user=user, active=enable, by=page.user)
    except HubError as exc:
        request.session["error"] = i18n.error_text(exc, request)
        return RedirectResponse("/admin/users", status_code=303)
    if changed:
        _audit(
            request,
            session,
            page,
            user,
            "user.enable" if enable else "user.disable",
            f"{user.username}：" + ("启用" if enable else "停用（已签退所有会话和令牌）"),
        )
    session.commit()
    request.session["notice"] = (
        f"已启用 {user.username}。" if enable else f"已停用 {user.username}，其所有登录已失效。"
    )
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{user_id}/password")
def reset_password(
    user_id: Id,
    request: Request,
    session: SessionDep,
    csrf: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    found = _managed(request, session, user_id)
    if isinstance(found, Response):
        return found
    page, user = found
    check_csrf(request, csrf)
    try:
        users.reset_password(session=session, user=user, password=password)
    except HubError as exc:
        session.rollback()
        request.session["error"] = f"{user.username}：{i18n.error_text(exc, request)}"
        return RedirectResponse("/admin/users", status_code=303)
    _audit(
        request,
        session,
        page,
        user,
        "user.password_reset",
        f"重置 {user.username} 的密码，并签退其所有会话",
    )
    session.commit()
    request.session["notice"] = f"已重置 {user.username} 的密码，其所有登录已失效。"
    return RedirectResponse("/admin/users", status_code=303)
