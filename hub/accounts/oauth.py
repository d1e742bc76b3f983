"""Binding an account by OAuth (授权绑定): the authorization-code flow, pages only.

Any platform whose connector implements ``connectors.base.Binds`` (Weibo) is bound this way;
``{platform}`` below is its key, and the words come from its label. Other platforms: 404.

1. ``GET /accounts/{id}/{platform}/authorize`` (logged in *in a browser*: a bearer token is refused;
   ``account.bind`` on the account's org) redirects to Weibo's consent page with a signed
   ``state`` (account, user, a random nonce also kept in that browser's session; 10 minutes).
2. The platform sends the browser to ``GET /oauth/{platform}/callback?code=..&state=..``: the state is
   checked, and so is the browser: it must hold the same nonce in its session and be logged in
   as the user who started the flow (a stolen callback URL opened elsewhere binds nothing). Then
   the code is exchanged for a token, the token and its expiry stored (encrypted) on the
   account, the account set active, parked deliveries resumed, and the user sent home with a
   message. Every refusal is a page that says in Chinese what to do next.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from connectors.base import Binds
from connectors.errors import ConnectorError
from hub.accounts import service
from hub.accounts.models import Account, AccountStatus, AccountUpdate
from hub.auditlog.service import record
from hub.config import Settings
from hub.delivery import channels
from hub.delivery.service import enqueue, resume_parked
from hub.errors import HubError, NotFound
from hub.orgs import service as orgs
from hub.platforms import label as platform_label
from hub.sqltypes import Id, utcnow
from hub.users.models import User
from hub.users.rules import Action, may
from hub.users.service import actor_of
from hub.web import i18n
from hub.web.deps import (
    NotAuthenticated,
    SessionDep,
    SettingsDep,
    client_ip,
    current_principal,
    web_session_user,
)
from hub.web.templating import get_templates

router = APIRouter(include_in_schema=False)

STATE_MAX_AGE_SECONDS = 10 * 60


def state_salt(platform: str) -> str:
    return f"govhub.{platform}-oauth"


def callback_path(platform: str) -> str:
    return f"/oauth/{platform}/callback"


def session_key(platform: str) -> str:
    """Where the browser's session keeps the flow's nonce."""
    return f"{platform}_oauth_nonce"


@dataclass(frozen=True)
class BindState:
    account_id: int
    user_id: int
    nonce: str  # the flow started in a browser session holding the same nonce


def _serializer(settings: Settings, platform: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=state_salt(platform))


def sign_state(settings: Settings, state: BindState, platform: str) -> str:
    return _serializer(settings, platform).dumps(
        {"a": state.account_id, "u": state.user_id, "n": state.nonce}
    )


def read_state(settings: Settings, token: str, platform: str) -> BindState | None:
    """The state if it is ours and younger than 10 minutes, else None."""
    try:
        data: Any = _serializer(settings, platform).loads(token, max_age=STATE_MAX_AGE_SECONDS)
        return BindState(int(data["a"]), int(data["u"]), str(data.get("n", "")))
    except (BadSignature, SignatureExpired, AttributeError, KeyError, TypeError, ValueError):
        return None


def redirect_uri(settings: Settings, platform: str) -> str:
    return settings.public_base_url.rstrip("/") + callback_path(platform)


def binding_connector(settings: Settings, platform: str) -> Binds:
    """The platform's connector, if it binds accounts by OAuth; else 404."""
    from connectors.registry import UnknownPlatform

    try:
        connector = channels.connector_for(platform, settings)
    except UnknownPlatform:
        raise NotFound("没有平台 %(platform)r", platform=platform) from None
    if not isinstance(connector, Binds):
        raise NotFound("%(platform)s账号不通过 OAuth 绑定", platform=platform)
    return connector


def _page(request: Request, platform: str, message: str, status_code: int) -> Response:
    return get_templates().TemplateResponse(
        request,
        "pages/account_bind.html",
        {"title": f"绑定{platform_label(platform)}账号", "message": message},
        status_code=status_code,
    )


@router.get("/accounts/{account_id}/{platform}/authorize")
def authorize(
    account_id: Id, platform: str, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    """Send the account owner to the platform to approve the hub's app."""
    connector = binding_connector(settings, platform)
    name = platform_label(platform)
    try:
        principal = current_principal(request, session, settings)
    except NotAuthenticated:
        return RedirectResponse("/login", status_code=303)
    account = service.get(session=session, account_id=account_id)
    principal.reach(  # permission before state: 404 outside the reach, 403 without the right
        Action.account_bind,
        orgs.get(session=session, org_id=account.org_id),
        NotFound("账号 %(account_id)s 不存在", account_id=account_id),
    )
    if not principal.via_cookie:
        return _page(
            request,
            platform,
            f"{name}授权绑定只能在浏览器中发起：请在浏览器中登录 govhub，在「账号」页面点击「重新授权」。"
            "使用 API 令牌不能发起绑定。",
            403,
        )
    if account.platform != platform:
        raise HubError(
            "账号 %(account_id)s 不是%(platform)s账号",
            field="account_id",
            account_id=account_id,
            platform=platform,
        )
    nonce = secrets.token_urlsafe(16)
    request.session[session_key(platform)] = nonce
    state = sign_state(settings, BindState(account_id, principal.user.id or 0, nonce), platform)
    url = connector.authorize_url(redirect_uri(settings, platform), state)
    return RedirectResponse(url, status_code=303)


@router.get("/oauth/{platform}/callback", response_class=HTMLResponse)
def callback(
    platform: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    code: str = "",
    state: str = "",
    error: str = "",
) -> Response:
    """The platform's redirect back: store the new token and resume the account's parked
    deliveries."""
    connector = binding_connector(settings, platform)
    name = platform_label(platform)

    def page(message: str, status_code: int) -> Response:
        return _page(request, platform, message, status_code)

    if error:
        return page(f"{name}授权未完成（已取消或被拒绝），账号未绑定。如需绑定请重新发起。", 400)
    bind = read_state(settings, state, platform)
    if bind is None:
        return page(
            "授权链接无效或已过期（有效期10分钟），账号未绑定。请回到账号页面重新发起绑定。",
            400,
        )
    if not bind.nonce or not secrets.compare_digest(
        bind.nonce, str(request.session.get(session_key(platform), ""))
    ):
        return page("授权不是从本浏览器发起的，账号未绑定。请在本浏览器中重新发起绑定。", 400)
    browser_user = web_session_user(request, session, settings)
    if browser_user is None or browser_user.id != bind.user_id:
        return page(
            "本浏览器未登录发起绑定的 govhub 账户（或登录已过期），账号未绑定。请登录后重新发起绑定。",
            403,
        )
    if not code:
        return page(f"{name}没有返回授权码，账号未绑定。请重新发起绑定。", 400)
    account = session.get(Account, bind.account_id)
    user = session.get(User, bind.user_id)
    if account is None or account.platform != platform:
        return page("要绑定的账号已不存在。", 404)
    org = orgs.get(session=session, org_id=account.org_id)
    if (
        user is None
        or not user.is_active
        or not may(actor_of(session=session, user=user), Action.account_bind, org.path)
    ):
        return page("您无权绑定该账号。", 403)
    try:
        token = connector.exchange_code(code, redirect_uri(settings, platform))
    except ConnectorError as exc:
        return page(f"向{name}换取令牌失败：{exc.message}。请稍后重新发起绑定。", 502)
    credentials = {
        "access_token": token.access_token,
        "expires_at": token.expires_at.isoformat(),
    }
    if token.uid:
        credentials["uid"] = token.uid
    request.session.pop(session_key(platform), None)
    now = utcnow()
    service.update(
        session=session,
        account=account,
        data=AccountUpdate(
            credentials=credentials,
            status=AccountStatus.active,
            handle=account.handle or token.uid or None,
        ),
        credentials_key=settings.credentials_key,
    )
    resumed = resume_parked(session=session, account_id=bind.account_id, now=now)
    expires = token.expires_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")
    record(
        session=session,
        actor_id=user.id,
        actor_name=user.username,
        action="account.bind",
        object_type="account",
        object_id=account.id,
        org_id=org.id,
        summary=f"{name}授权绑定「{account.name}」，令牌有效期至 {expires}；恢复 {len(resumed)} 条待发",
        client_ip=client_ip(request),
    )
    session.commit()
    if resumed:
        enqueue(resumed)
    i18n.use_locale(i18n.locale_of(request, user.locale))  # the notice shows on the next page
    notice = i18n._("%(platform)s账号「%(account)s」已授权绑定，令牌有效期至 %(expires)s。") % {
        "platform": i18n.platform_label(platform),
        "account": account.name,
        "expires": expires,
    }
    if resumed:
        notice += i18n._("已恢复发送 %(n)s 条因授权过期而暂停的稿件。") % {"n": len(resumed)}
    request.session["notice"] = notice
    return RedirectResponse("/", status_code=303)
