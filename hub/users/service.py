"""Users: creation, authentication with throttling of repeated failures, the account lifecycle
(disable/enable, password reset and change) and server-side web sessions."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, col, select

from hub.auditlog.service import record
from hub.errors import Conflict, Forbidden, Invalid, NotFound, TooManyAttempts
from hub.orgs import service as orgs
from hub.orgs.models import Org, OrgLevel
from hub.security import DUMMY_HASH, hash_password, verify_password
from hub.users.models import LoginFailure, Role, User, UserSession
from hub.users.passwords import password_problem
from hub.users.rules import Actor, may_assign, reach_root

# A session's last_seen_at is written at most this often (not on every request).
SEEN_RESOLUTION = timedelta(seconds=30)


def check_password(password: str, username: str) -> None:
    """Raise 422 with the reason in Chinese unless ``password`` passes the password rule."""
    problem = password_problem(password, username)
    if problem:
        raise Invalid(problem, field="password")


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
        raise Invalid("用户名不能为空", field="username")
    check_password(password, username)
    if session.exec(select(User).where(User.username == username)).first():
        raise Conflict("用户名 %(username)r 已被占用", field="username", username=username)
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
        raise NotFound("该用户所属机构已不存在")
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
            "您不能在%(org)s授予%(role)s角色：只能在您自己的管理范围内授予，且范围不能大于您自己的",
            role=role.value,
            org=org.name,
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


def _failure(session: Session, key: str, now: datetime, window: timedelta) -> LoginFailure | None:
    failure = session.get(LoginFailure, key)
    if failure is not None and now - failure.first_at > window:
        session.delete(failure)
        session.flush()
        return None
    return failure


def authenticate(
    *,
    session: Session,
    username: str,
    password: str,
    client_ip: str,
    now: datetime,
    max_failures: int,
    lockout_seconds: int,
    max_failures_per_ip: int | None = None,
) -> User:
    """The user, or an error. Failures are counted per username (from every address) and per
    client address (for every username), across processes; while either is over its limit even
    the right password is refused."""
    window = timedelta(seconds=lockout_seconds)
    limits = {
        f"user:{username.strip().lower()}"[:200]: max_failures,
        f"ip:{client_ip}"[:200]: max_failures_per_ip or max_failures * 4,
    }
    failures = {key: _failure(session, key, now, window) for key in limits}
    user = session.exec(select(User).where(User.username == username.strip())).first()
    for key, failure in failures.items():
        if failure is not None and failure.count >= limits[key]:
            wait = int((failure.first_at + window - now).total_seconds()) + 1
            _audit_login(session, username, user, "auth.login_locked", client_ip, "throttled")
            session.commit()
            raise TooManyAttempts("登录失败次数过多，请%(wait)s秒后再试", wait=wait)
    ok = verify_password(user.password_hash if user else DUMMY_HASH, password)
    if user is None or not ok or not user.is_active:
        for key, failure in failures.items():
            row = failure or LoginFailure(key=key, count=0, first_at=now)
            row.count += 1
            session.add(row)
        why = "unknown user" if user is None else ("inactive" if ok else "wrong password")
        _audit_login(session, username, user, "auth.login_failed", client_ip, why)
        session.commit()
        raise Invalid("用户名或密码错误")
    user_failure = failures[next(iter(limits))]
    if user_failure is not None:
        session.delete(user_failure)
    user.last_login_at = now
    session.add(user)
    _audit_login(session, username, user, "auth.login", client_ip, "")
    session.commit()
    return user


# -- web sessions -------------------------------------------------------------------------------


def open_session(*, session: Session, user: User, now: datetime, client_ip: str = "") -> str:
    """A new signed-in browser for ``user``: its random id goes into the (signed) cookie."""
    sid = secrets.token_urlsafe(32)
    session.add(
        UserSession(
            id=sid,
            user_id=user.id,  # type: ignore[arg-type]
            created_at=now,
            last_seen_at=now,
            client_ip=client_ip[:64],
        )
    )
    session.commit()
    return sid


def session_user(
    *, session: Session, sid: str, now: datetime, idle: timedelta, max_age: timedelta
) -> User | None:
    """The active user of web session ``sid``, or None when it was signed out, revoked, idle
    longer than ``idle`` or older than ``max_age`` (such a row is removed)."""
    row = session.get(UserSession, sid)
    if row is None:
        return None
    if now - row.last_seen_at > idle or now - row.created_at > max_age:
        session.delete(row)
        session.commit()
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    if now - row.last_seen_at > SEEN_RESOLUTION:
        row.last_seen_at = now
        session.add(row)
        session.commit()
    return user


def close_session(*, session: Session, sid: str) -> None:
    """Sign one browser out (logout): its cookie, wherever copied, no longer works."""
    session.execute(delete(UserSession).where(col(UserSession.id) == sid))
    session.commit()


def revoke_everywhere(*, session: Session, user: User) -> int:
    """End every web session and invalidate every bearer token of ``user`` (the token version
    moves on). Returns how many web sessions ended. The caller commits."""
    result = session.execute(delete(UserSession).where(col(UserSession.user_id) == user.id))
    user.token_version += 1
    session.add(user)
    session.flush()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def open_sessions(*, session: Session, user_id: int) -> int:
    return len(session.exec(select(UserSession).where(UserSession.user_id == user_id)).all())


# -- the account lifecycle ----------------------------------------------------------------------


def get(*, session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("用户 %(user_id)s 不存在", user_id=user_id)
    return user


def get_by_username(*, session: Session, username: str) -> User:
    user = session.exec(select(User).where(User.username == username.strip())).first()
    if user is None:
        raise NotFound("用户 %(username)s 不存在", username=username)
    return user


def set_active(*, session: Session, user: User, active: bool, by: User | None = None) -> bool:
    """Disable (every session and token ends at once) or enable ``user``. False if unchanged."""
    if by is not None and by.id == user.id and not active:
        raise Invalid("不能停用自己的账户", field="is_active")
    if user.is_active == active:
        return False
    user.is_active = active
    if not active:
        revoke_everywhere(session=session, user=user)
    session.add(user)
    session.flush()
    return True


def reset_password(*, session: Session, user: User, password: str) -> None:
    """An administrator sets a new password; the user is signed out everywhere."""
    check_password(password, user.username)
    user.password_hash = hash_password(password)
    revoke_everywhere(session=session, user=user)
    session.flush()


def change_password(*, session: Session, user: User, current: str, new: str) -> None:
    """The user changes their own password (the current one is required); every session and
    token of theirs ends."""
    if not verify_password(user.password_hash, current):
        raise Invalid("当前密码不正确", field="current_password")
    if new == current:
        raise Invalid("新密码不能与当前密码相同", field="new_password")
    problem = password_problem(new, user.username)
    if problem:
        raise Invalid(problem, field="new_password")
    user.password_hash = hash_password(new)
    revoke_everywhere(session=session, user=user)
    session.flush()
