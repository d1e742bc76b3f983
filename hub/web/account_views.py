"""Pages for one's own account (我的账户: change password, sign out everywhere) and for user
administration (用户管理: disable/enable, reset a password). Forms post with a CSRF token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import select

from hub.auditlog.service import audit
from hub.errors import HubError
from hub.orgs import service as orgs
from hub.orgs.models import Org
from hub.sqltypes import Id, utcnow
from hub.users import service as users
from hub.users.models import User
from hub.users.passwords import RULE
from hub.users.rules import Access, Action, access, scope_path
from hub.users.who import Who
from hub.web.deps import SessionDep, client_ip
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
        rule=RULE,
        sessions=users.open_sessions(session=session, user_id=page.user.id or 0),
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
        request.session["error"] = exc.message
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
    return render(
        request,
        "pages/users.html",
        page,
        rows=[(u, o) for u, o in rows if page.may(Action.user_manage, o)],
        notice=request.session.pop("notice", ""),
        error=request.session.pop("error", ""),
        rule=RULE,
    )


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
        request.session["error"] = exc.message
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
        request.session["error"] = f"{user.username}：{exc.message}"
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
