"""HTML pages: login, logout, the editor's home. Forms carry a CSRF token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.errors import HubError
from hub.orgs.models import Org
from hub.security import new_csrf_token, same_token
from hub.sqltypes import utcnow
from hub.users import service as users
from hub.users.models import User
from hub.web.deps import SessionDep, SettingsDep, client_ip
from hub.web.templating import get_templates

router = APIRouter(include_in_schema=False)


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = new_csrf_token()
        request.session["csrf"] = token
    return str(token)


def check_csrf(request: Request, sent: str | None) -> None:
    if not same_token(sent, request.session.get("csrf")):
        raise HubError("missing or wrong CSRF token; reload the page and try again")


def page_user(request: Request, session: SessionDep) -> User | None:
    user_id = request.session.get("user_id")
    if user_id is None:
        return None
    user = session.get(User, int(user_id))
    if user is None or not user.is_active or request.session.get("v") != user.token_version:
        return None
    return user


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, error: str = "") -> Response:
    return get_templates().TemplateResponse(
        request, "pages/login.html", {"csrf": csrf_token(request), "error": error}
    )


@router.post("/login")
def login_submit(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    if not same_token(csrf, request.session.get("csrf")):
        return get_templates().TemplateResponse(
            request,
            "pages/login.html",
            {"csrf": csrf_token(request), "error": "页面已过期，请重新登录（CSRF 校验失败）"},
            status_code=403,
        )
    try:
        user = users.authenticate(
            session=session,
            username=username,
            password=password,
            client_ip=client_ip(request),
            now=utcnow(),
            max_failures=settings.login_max_failures,
            lockout_seconds=settings.login_lockout_seconds,
        )
    except HubError as exc:
        message = "用户名或密码错误" if exc.status_code == 422 else "登录失败次数过多，请稍后再试"
        return get_templates().TemplateResponse(
            request,
            "pages/login.html",
            {"csrf": csrf_token(request), "error": message, "username": username},
            status_code=exc.status_code if exc.status_code == 429 else 401,
        )
    request.session.clear()
    request.session.update({"user_id": user.id, "v": user.token_version, "csrf": new_csrf_token()})
    return RedirectResponse("/", status_code=303)


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: SessionDep) -> Response:
    user = page_user(request, session)
    if user is None:
        return RedirectResponse("/login", status_code=303)
    org = session.get(Org, user.org_id)
    notice = request.session.pop("notice", "")  # one-time message, e.g. after OAuth binding
    return get_templates().TemplateResponse(
        request,
        "pages/home.html",
        {"user": user, "org": org, "csrf": csrf_token(request), "notice": notice},
    )
