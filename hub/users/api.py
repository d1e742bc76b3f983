"""Authentication (OAuth2 password form -> bearer token) and user administration."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from pydantic import BaseModel
from sqlmodel import select

from hub.auditlog.service import audit
from hub.errors import NotFound
from hub.orgs import service as orgs
from hub.orgs.models import Org
from hub.orgs.service import resolve_code
from hub.security import issue_token
from hub.sqltypes import Id, utcnow
from hub.users import service
from hub.users.models import (
    PasswordChange,
    PasswordReset,
    User,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from hub.users.rules import Action
from hub.web.deps import PrincipalDep, SessionDep, SettingsDep, WhoDep, client_ip

router = APIRouter(prefix="/api/v1", tags=["auth", "users"])


class Done(BaseModel):
    detail: str


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


def to_public(user: User, org: Org) -> UserPublic:
    return UserPublic(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        org_code=org.code,
        org_name=org.name,
        is_active=user.is_active,
    )


@router.post(
    "/auth/token",
    summary="Log in (OAuth2 password form) and get a bearer token",
    response_model=TokenResponse,
)
def login_for_token(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
) -> TokenResponse:
    user = service.authenticate(
        session=session,
        username=username,
        password=password,
        client_ip=client_ip(request),
        now=utcnow(),
        max_failures=settings.login_max_failures,
        max_failures_per_ip=settings.login_max_failures_per_ip,
        lockout_seconds=settings.login_lockout_seconds,
    )
    return TokenResponse(
        access_token=issue_token(settings.secret_key, user.id, user.token_version),  # type: ignore[arg-type]
        expires_in=settings.token_ttl_minutes * 60,
    )


@router.get("/me", summary="Who am I", response_model=UserPublic)
def me(principal: PrincipalDep, session: SessionDep) -> UserPublic:
    org = session.get(Org, principal.user.org_id)
    assert org is not None
    return to_public(principal.user, org)


@router.get("/users", summary="List users in my reach", response_model=list[UserPublic])
def list_users(principal: PrincipalDep, session: SessionDep) -> list[UserPublic]:
    principal.require(Action.user_manage)
    rows = session.exec(
        select(User, Org).join(Org).where(Org.path.startswith(principal.actor.org_path))
    ).all()
    return [to_public(u, o) for u, o in rows]


@router.post("/users", summary="Create a user", status_code=201, response_model=UserPublic)
def create_user(
    data: UserCreate, principal: PrincipalDep, who: WhoDep, session: SessionDep
) -> UserPublic:
    org = resolve_code(session=session, code=data.org_code)
    principal.require(Action.user_manage, org)
    service.check_assign(session=session, actor=principal.actor, role=data.role, org=org)
    user = service.create(
        session=session,
        username=data.username,
        password=data.password,
        role=data.role,
        org_code=data.org_code,
        display_name=data.display_name,
        email=data.email,
    )
    audit(
        session,
        who,
        "user.create",
        "user",
        user.id,
        org_id=org.id,
        summary=f"{user.username} ({user.role.value}) @ {org.name}",
    )
    session.commit()
    return to_public(user, org)


def _managed_user(principal: PrincipalDep, session: SessionDep, user_id: int) -> tuple[User, Org]:
    """The user ``user_id`` if the caller may manage users on that user's org: 403 without the
    right at all, 404 for a user outside the caller's reach (as for one that does not exist)."""
    principal.require(Action.user_manage)
    missing = NotFound("用户 %(user_id)s 不存在", user_id=user_id)
    user = session.get(User, user_id)
    if user is None:
        raise missing
    org = orgs.get(session=session, org_id=user.org_id)
    principal.reach(Action.user_manage, org, missing)
    return user, org


@router.patch("/users/{user_id}", summary="Disable/enable a user or edit their name and e-mail")
def update_user(
    user_id: Id,
    data: UserUpdate,
    principal: PrincipalDep,
    who: WhoDep,
    session: SessionDep,
) -> UserPublic:
    """``{"is_active": false}`` disables the user: every web session and bearer token of theirs
    stops working at once."""
    user, org = _managed_user(principal, session, user_id)
    changes: list[str] = []
    action = "user.update"
    if data.is_active is not None and service.set_active(
        session=session, user=user, active=data.is_active, by=principal.user
    ):
        changes.append("启用" if data.is_active else "停用（已签退所有会话和令牌）")
        action = "user.enable" if data.is_active else "user.disable"
    if data.display_name is not None and data.display_name.strip() != user.display_name:
        user.display_name = data.display_name.strip() or user.username
        changes.append(f"姓名改为「{user.display_name}」")
    if data.email is not None and data.email.strip() != user.email:
        user.email = data.email.strip()
        changes.append("邮箱已修改")
    if changes:
        session.add(user)
        audit(
            session,
            who,
            action,
            "user",
            user.id,
            org_id=org.id,
            summary=f"{user.username}：{'；'.join(changes)}",
        )
    session.commit()
    return to_public(user, org)


@router.post(
    "/users/{user_id}/password",
    summary="Reset a user's password (administrators); the user is signed out everywhere",
)
def reset_password(
    user_id: Id,
    data: PasswordReset,
    principal: PrincipalDep,
    who: WhoDep,
    session: SessionDep,
) -> Done:
    user, org = _managed_user(principal, session, user_id)
    service.reset_password(session=session, user=user, password=data.password)
    audit(
        session,
        who,
        "user.password_reset",
        "user",
        user.id,
        org_id=org.id,
        summary=f"重置 {user.username} 的密码，并签退其所有会话",
    )
    session.commit()
    return Done(detail=f"{user.username} 的密码已重置，其所有会话和令牌已失效")


@router.post(
    "/me/password",
    summary="Change my password (the current one is required); signs me out everywhere",
)
def change_my_password(
    data: PasswordChange, principal: PrincipalDep, who: WhoDep, session: SessionDep
) -> Done:
    user = principal.user
    service.change_password(
        session=session, user=user, current=data.current_password, new=data.new_password
    )
    audit(
        session,
        who,
        "user.password_change",
        "user",
        user.id,
        org_id=user.org_id,
        summary="修改了自己的密码，并签退所有会话",
    )
    session.commit()
    return Done(detail="密码已修改，所有会话和令牌已失效，请重新登录")


@router.post(
    "/me/sign-out-everywhere",
    summary="End every web session and bearer token of mine (this one too)",
)
def sign_out_everywhere(principal: PrincipalDep, who: WhoDep, session: SessionDep) -> Done:
    user = principal.user
    ended = service.revoke_everywhere(session=session, user=user)
    audit(
        session,
        who,
        "user.sign_out_everywhere",
        "user",
        user.id,
        org_id=user.org_id,
        summary=f"在所有设备上退出登录（{ended} 个网页会话，所有 API 令牌）",
    )
    session.commit()
    return Done(detail="已在所有设备上退出登录")
