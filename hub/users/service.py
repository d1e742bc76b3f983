"""Users: creation, authentication with throttling of repeated failures."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, select

from hub.auditlog.service import record
from hub.errors import Conflict, Forbidden, Invalid, NotFound, TooManyAttempts
from hub.orgs import service as orgs
from hub.orgs.models import Org, OrgLevel
from hub.security import DUMMY_HASH, hash_password, verify_password
from hub.users.models import LoginFailure, Role, User
from hub.users.rules import Actor, may_assign, reach_root

MIN_PASSWORD_LENGTH = 8


def create(
    *,
    session: Session,
    username: str,
    password: str,
    role: Role,
    org_code: str,
    display_name: str = "",
    email: str = "",
) -> User:
    username = username.strip()
    if not username:
        raise Invalid("the username must not be empty", field="username")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(
            f"the password must have at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )
    if session.exec(select(User).where(User.username == username)).first():
        raise Conflict(f"the username {username!r} is taken", field="username")
    org = orgs.get_by_code(session=session, code=org_code)
    user = User(
        username=username,
        display_name=display_name or username,
        email=email,
        password_hash=hash_password(password),
        role=role,
        org_id=org.id,  # type: ignore[arg-type]
    )
    session.add(user)
    session.flush()
    return user


def government_of(*, session: Session, org: Org) -> Org:
    """The government an org belongs to: itself, or for a department the nearest non-department
    ancestor (a department without one is its own government)."""
    current = org
    seen: set[int | None] = set()
    while current.level is OrgLevel.department and current.parent_id is not None:
        seen.add(current.id)
        parent = session.get(Org, current.parent_id)
        if parent is None or parent.id in seen:
            break
        current = parent
    return current


def actor_of(*, session: Session, user: User) -> Actor:
    org = session.get(Org, user.org_id)
    if org is None:
        raise NotFound("the user's organisation no longer exists")
    government = government_of(session=session, org=org)
    return Actor(
        user_id=user.id,  # type: ignore[arg-type]
        role=user.role,
        org_path=org.path,
        reach=reach_root(user.role, org.path, government.path),
    )


def check_assign(*, session: Session, actor: Actor, role: Role, org: Org) -> None:
    """Raise 403 unless ``actor`` may give a user ``role`` at ``org`` (users.rules.may_assign).

    Call it for a new user, and for a changed one both with the user as it is and as it will be.
    """
    government = government_of(session=session, org=org)
    if not may_assign(actor, role, org.path, government.path):
        raise Forbidden(
            f"you may not give the role {role.value} at {org.name}: "
            "only inside your own subtree, and never a reach wider than yours"
        )


def _audit_login(
    session: Session, username: str, user: User | None, action: str, client_ip: str, why: str
) -> None:
    """Logins, failed and throttled ones included, are audit events of the user's org (of no
    org when the username is unknown; the typed name is kept, cut to the column's size)."""
    record(
        session=session,
        actor_id=user.id if user is not None else None,
        actor_name=(user.username if user is not None else username.strip())[:80],
        action=action,
        object_type="user",
        object_id=user.id if user is not None else "",
        org_id=user.org_id if user is not None else None,
        summary=why,
        client_ip=client_ip,
    )


def authenticate(
    *,
    session: Session,
    username: str,
    password: str,
    client_ip: str,
    now: datetime,
    max_failures: int,
    lockout_seconds: int,
) -> User:
    """The user, or an error. Failures are counted per (username, IP) across processes."""
    key = f"{username.strip().lower()}|{client_ip}"
    failure = session.get(LoginFailure, key)
    window = timedelta(seconds=lockout_seconds)
    if failure is not None and now - failure.first_at > window:
        session.delete(failure)
        session.flush()
        failure = None
    user = session.exec(select(User).where(User.username == username.strip())).first()
    if failure is not None and failure.count >= max_failures:
        wait = int((failure.first_at + window - now).total_seconds()) + 1
        _audit_login(session, username, user, "auth.login_locked", client_ip, "throttled")
        session.commit()
        raise TooManyAttempts(f"too many failed logins; try again in {wait} seconds")
    ok = verify_password(user.password_hash if user else DUMMY_HASH, password)
    if user is None or not ok or not user.is_active:
        if failure is None:
            failure = LoginFailure(key=key, count=0, first_at=now)
        failure.count += 1
        session.add(failure)
        why = "unknown user" if user is None else ("inactive" if ok else "wrong password")
        _audit_login(session, username, user, "auth.login_failed", client_ip, why)
        session.commit()
        raise Invalid("wrong username or password")
    if failure is not None:
        session.delete(failure)
    user.last_login_at = now
    session.add(user)
    _audit_login(session, username, user, "auth.login", client_ip, "")
    session.commit()
    return user
