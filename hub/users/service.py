"""Users: creation, authentication with throttling of repeated failures."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, select

from hub.errors import Conflict, Invalid, NotFound, TooManyAttempts
from hub.orgs import service as orgs
from hub.orgs.models import Org
from hub.security import DUMMY_HASH, hash_password, verify_password
from hub.users.models import LoginFailure, Role, User
from hub.users.rules import Actor

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


def actor_of(*, session: Session, user: User) -> Actor:
    org = session.get(Org, user.org_id)
    if org is None:
        raise NotFound("the user's organisation no longer exists")
    return Actor(user_id=user.id, role=user.role, org_path=org.path)  # type: ignore[arg-type]


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
    if failure is not None and failure.count >= max_failures:
        wait = int((failure.first_at + window - now).total_seconds()) + 1
        raise TooManyAttempts(f"too many failed logins; try again in {wait} seconds")
    user = session.exec(select(User).where(User.username == username.strip())).first()
    ok = verify_password(user.password_hash if user else DUMMY_HASH, password)
    if user is None or not ok or not user.is_active:
        if failure is None:
            failure = LoginFailure(key=key, count=0, first_at=now)
        failure.count += 1
        session.add(failure)
        session.commit()
        raise Invalid("wrong username or password")
    if failure is not None:
        session.delete(failure)
    user.last_login_at = now
    session.add(user)
    session.commit()
    return user
