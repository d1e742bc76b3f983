"""HTML pages: login, logout, the language switch and the editor's workbench (工作台).

Forms carry a CSRF token; page scripts send it as ``X-CSRF-Token`` (hub/web/deps.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.config import get_settings
from hub.errors import HubError
from hub.security import new_csrf_token, same_token
from hub.sqltypes import utcnow
from hub.users import service as users
from hub.web import i18n
from hub.web.dashboard import workbench
from hub.web.deps import SessionDep, SettingsDep, client_ip
from hub.web.i18n import _
from hub.web.pages import csrf_token, page_of, page_user, render, to_login

__all__ = ["check_csrf", "csrf_token", "page_user", "router"]

router = APIRouter(include_in_schema=False)


def check_csrf(request: Request, sent: str | None) -> None:
    if not same_token(sent, request.session.get("csrf")):
        raise HubError("缺少 CSRF 令牌或令牌不正确，请刷新页面后重试")


def safe_next(target: str | None) -> str:
    """Only a path on this site (never ``//host`` or ``http://...``)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, error: str = "", next: str = "/") -> Response:
    i18n.use_locale(i18n.locale_of(request))
    return render(request, "pages/login.html", None, error=error, next=safe_next(next))


@router.post("/login")
def login_submit(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    i18n.use_locale(i18n.locale_of(request))
    if not same_token(csrf, request.session.get("csrf")):
        return render(
            request,
            "pages/login.html",
            None,
            status_code=403,
            error=_("页面已过期，请重新登录（CSRF 校验失败）"),
            next=safe_next(next),
        )
    try:
        user = users.authenticate(
            session=session,
            username=username,
            password=password,
            client_ip=client_ip(request),
            now=utcnow(),
            max_failures=settings.login_max_failures,
            max_failures_per_ip=settings.login_max_failures_per_ip,
            lockout_seconds=settings.login_lockout_seconds,
        )
    except HubError as exc:
        message = (
            _("用户名或密码错误") if exc.status_code == 422 else _("登录失败次数过多，请稍后再试")
        )
        return render(
            request,
            "pages/login.html",
            None,
            status_code=exc.status_code if exc.status_code == 429 else 401,
            error=message,
            username=username,
            next=safe_next(next),
        )
    old = request.session.get("sid")
    if old:
        users.close_session(session=session, sid=str(old))
    sid = users.open_session(session=session, user=user, now=utcnow(), client_ip=client_ip(request))
    request.session.clear()
    request.session.update({"sid": sid, "csrf": new_csrf_token()})
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request, session: SessionDep, csrf: Annotated[str, Form()] = "") -> Response:
    """Sign this browser out on the server too: a copy of the cookie stops working."""
    check_csrf(request, csrf)
    sid = request.session.get("sid")
    if sid:
        users.close_session(session=session, sid=str(sid))
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/lang/{locale}")
def switch_language(locale: str, next: str = "/") -> Response:
    """Choose the interface language; it sticks in a cookie for a year."""
    chosen = i18n.normalise(locale) or i18n.DEFAULT_LOCALE
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        i18n.COOKIE,
        chosen,
        max_age=365 * 24 * 3600,
        samesite="lax",
        httponly=True,
        secure=get_settings().public_base_url.startswith("https://"),
    )
    return response


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: SessionDep) -> Response:
    page = page_of(request, session)
    if page is None:
        return to_login(request)
    notice = request.session.pop("notice", "")  # one-time message, e.g. after OAuth binding
    settings = get_settings()
    bench = workbench(
        session=session, user=page.user, actor=page.actor, now=utcnow(), tz=settings.tz
    )
    return render(request, "pages/home.html", page, notice=notice, bench=bench, now=utcnow())
