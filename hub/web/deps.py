"""Request dependencies: who is calling (bearer token or session cookie) and what they may do."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from ipaddress import ip_address
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from hub.config import Settings, get_settings
from hub.db import get_session
from hub.errors import Forbidden, HubError, NotFound
from hub.orgs.models import Org
from hub.security import read_token, same_token
from hub.sqltypes import utcnow
from hub.users.models import User
from hub.users.rules import Access, Action, Actor, access, may
from hub.users.service import actor_of, session_user
from hub.users.who import Who

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class NotAuthenticated(HubError):
    status_code = 401


@dataclass(frozen=True)
class Principal:
    user: User
    actor: Actor
    via_cookie: bool

    def require(self, action: Action, org: Org | None = None) -> None:
        """Raise 403 unless the rule allows ``action`` on ``org`` (the one rule: users.rules.may)."""
        if not may(self.actor, action, org.path if org is not None else None):
            if org is None:
                raise Forbidden(
                    "您的角色（%(role)s）没有 %(action)s 权限",
                    role=self.user.role.value,
                    action=action.value,
                )
            raise Forbidden(
                "您的角色（%(role)s）在%(org)s没有 %(action)s 权限",
                role=self.user.role.value,
                action=action.value,
                org=org.name,
            )

    def allows(self, action: Action, org: Org | None = None) -> bool:
        return may(self.actor, action, org.path if org is not None else None)

    def reach(self, action: Action, org: Org, missing: NotFound) -> None:
        """Permission before state, for one object of ``org``: 404 (``missing``) when the org is
        outside the caller's reach, so its existence does not leak; 403 without the right."""
        verdict = access(self.actor, action, org.path)
        if verdict is Access.hidden:
            raise missing
        if verdict is Access.forbidden:
            self.require(action, org)


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def _trusted(address: str, settings: Settings) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in settings.trusted_networks)


def client_ip(request: Request, settings: Settings | None = None) -> str:
    """The client's address: the peer, unless the peer is a proxy in GOVHUB_TRUSTED_PROXIES; then
    the right-most X-Forwarded-For address that is not itself a trusted proxy. The one function
    every route, the login throttle and the audit log use."""
    settings = settings or get_settings()
    peer = request.client.host if request.client else ""
    if not peer or not _trusted(peer, settings):
        return peer
    forwarded = [
        part.strip()
        for header in request.headers.getlist("x-forwarded-for")
        for part in header.split(",")
        if part.strip()
    ]
    for address in reversed(forwarded):
        if not _trusted(address, settings):
            try:
                return str(ip_address(address))
            except ValueError:
                return peer  # garbage from the client: count it against the proxy's peer
    return peer


def web_session_user(request: Request, session: Session, settings: Settings) -> User | None:
    """The user of the browser session in the cookie (server-side: idle timeout, revocation)."""
    if "session" not in request.scope:
        return None
    sid = request.session.get("sid")
    if not sid:
        return None
    user = session_user(
        session=session,
        sid=str(sid),
        now=utcnow(),
        idle=timedelta(minutes=settings.session_idle_minutes),
        max_age=timedelta(hours=settings.session_max_hours),
    )
    if user is None:
        request.session.pop("sid", None)
    return user


def _user_from_request(request: Request, session: Session, settings: Settings) -> tuple[User, bool]:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        parsed = read_token(
            settings.secret_key, header[7:].strip(), settings.token_ttl_minutes * 60
        )
        user = session.get(User, parsed[0]) if parsed else None
        if user is None or parsed is None or user.token_version != parsed[1] or not user.is_active:
            raise NotAuthenticated("访问令牌无效或已过期，请重新登录")
        return user, False
    user = web_session_user(request, session, settings)
    if user is not None:
        return user, True
    raise NotAuthenticated("请先登录（POST /api/v1/auth/token）")


def current_principal(request: Request, session: SessionDep, settings: SettingsDep) -> Principal:
    user, via_cookie = _user_from_request(request, session, settings)
    request.state.govhub_user = (user.id, user.username, user.org_id)  # for refusals' audit entry
    request.scope["govhub_user_locale"] = user.locale  # the language of the errors (hub.web.app)
    if via_cookie and request.method in UNSAFE_METHODS:
        sent = request.headers.get("x-csrf-token")
        if not same_token(sent, request.session.get("csrf")):
            raise Forbidden("缺少 CSRF 令牌或令牌不正确，请刷新页面后重试")
    return Principal(user=user, actor=actor_of(session=session, user=user), via_cookie=via_cookie)


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def acting(request: Request, principal: PrincipalDep) -> Who:
    """The caller as services take them: the user, their reach and the address they called from
    (for the audit log)."""
    return Who(principal.user, principal.actor, client_ip(request))


WhoDep = Annotated[Who, Depends(acting)]
