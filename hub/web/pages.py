"""What every HTML page needs: the logged-in user, their rights, rendering and refusal pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from hub.config import get_settings
from hub.notify.service import unread_count
from hub.orgs.models import Org
from hub.security import new_csrf_token
from hub.users.models import Role, User
from hub.users.rules import Action, Actor, may
from hub.users.service import actor_of
from hub.web import i18n
from hub.web.deps import web_session_user
from hub.web.i18n import _
from hub.web.templating import get_templates


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = new_csrf_token()
        request.session["csrf"] = token
    return str(token)


def page_user(request: Request, session: Session) -> User | None:
    return web_session_user(request, session, get_settings())


@dataclass(frozen=True)
class Page:
    """The person looking at a page, as the templates and the one rule need them."""

    user: User
    org: Org | None
    actor: Actor
    csrf: str
    unread: int = 0  # the bell in the top bar

    def may(self, action: Action, org: Org | None = None) -> bool:
        return may(self.actor, action, org.path if org is not None else None)


def query_day(value: str) -> date | None:
    """A ``YYYY-MM-DD`` query parameter; ``None`` when empty or malformed (the page says so)."""
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def page_of(request: Request, session: Session) -> Page | None:
    user = page_user(request, session)
    if user is None:
        return None
    request.scope["govhub_user_locale"] = user.locale
    i18n.use_locale(i18n.locale_of(request, user.locale))
    return Page(
        user=user,
        org=session.get(Org, user.org_id),
        actor=actor_of(session=session, user=user),
        csrf=csrf_token(request),
        unread=unread_count(session, user.id or 0),
    )


def to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def render(
    request: Request, name: str, page: Page | None, status_code: int = 200, **context: Any
) -> Response:
    base: dict[str, Any] = {
        "page": page,
        "user": page.user if page else None,
        "org": page.org if page else None,
        "csrf": page.csrf if page else csrf_token(request),
        "timezone": get_settings().timezone,
        "path": request.url.path,
    }
    if page is not None and page.user.role == Role.admin:
        from hub.system import stalled_processes

        base["stalled"] = stalled_processes()  # the banner: publishing or the schedule stopped
    base.update(context)
    response = get_templates().TemplateResponse(request, name, base, status_code=status_code)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def refuse(request: Request, page: Page | None, status_code: int, message: str = "") -> Response:
    """A 403/404 page in words (never whether a post outside one's scope exists)."""
    i18n.use_locale(i18n.locale_of(request, page.user.locale if page else None))
    if status_code == 403:
        from hub.web.app import audit_refusal

        if page is not None:
            request.state.govhub_user = (page.user.id, page.user.username, page.user.org_id)
        audit_refusal(request, message or "forbidden page")
    titles = {403: _("无权访问"), 404: _("页面不存在")}
    return render(
        request,
        "pages/error.html",
        page,
        status_code=status_code,
        title=titles.get(status_code, _("出错了")),
        message=message
        or (
            _("该内容不在您的权限范围内。")
            if status_code == 403
            else _("您要找的内容不存在或已被删除。")
        ),
    )
