"""Authentication (OAuth2 password form -> bearer token) and user administration."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from pydantic import BaseModel
from sqlmodel import select

from hub.auditlog.service import record
from hub.orgs.models import Org
from hub.orgs.service import resolve_code
from hub.security import issue_token
from hub.sqltypes import utcnow
from hub.users import service
from hub.users.models import User, UserCreate, UserPublic
from hub.users.rules import Action
from hub.web.deps import PrincipalDep, SessionDep, SettingsDep, client_ip

router = APIRouter(prefix="/api/v1", tags=["auth", "users"])


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
    data: UserCreate, request: Request, principal: PrincipalDep, session: SessionDep
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
    record(
        session=session,
        actor_id=principal.user.id,
        actor_name=principal.user.username,
        action="user.create",
        object_type="user",
        object_id=user.id,
        org_id=org.id,
        summary=f"{user.username} ({user.role.value}) @ {org.name}",
        client_ip=client_ip(request),
    )
    session.commit()
    return to_public(user, org)
