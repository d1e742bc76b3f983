"""Test data built through the hub's own services (no mocks of our database)."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path

from sqlmodel import Session, select

from hub.config import get_settings
from hub.db import engine_for
from hub.orgs.service import get_by_code, import_rows, parse_csv
from hub.security import hash_password, issue_token
from hub.users.models import Role, User

DATA = Path(__file__).resolve().parents[1] / "hub" / "data"


def load_guizhou(database_url: str) -> None:
    with Session(engine_for(database_url)) as session:
        for name in ("guizhou-divisions.csv", "guizhou-departments.csv"):
            import_rows(
                session=session,
                rows=parse_csv((DATA / name).read_text("utf-8")),
                today=date(2026, 1, 1),
            )
        session.commit()


@lru_cache
def _password_hash(password: str) -> str:
    return hash_password(password)  # Argon2 is slow on purpose: hash each password once per run


def make_user(database_url: str, username: str, role: Role, org_code: str) -> User:
    """Create a user; its password is ``{username}-password``."""
    with Session(engine_for(database_url), expire_on_commit=False) as session:
        org = get_by_code(session=session, code=org_code)
        user = User(
            username=username,
            display_name=username,
            password_hash=_password_hash(f"{username}-password"),
            role=role,
            org_id=org.id,  # type: ignore[arg-type]
        )
        session.add(user)
        session.commit()
    return user


def token_for(username: str, database_url: str) -> dict[str, str]:
    """A bearer token as POST /api/v1/auth/token issues it (the login route has its own tests)."""
    with Session(engine_for(database_url)) as session:
        user = session.exec(select(User).where(User.username == username)).one()
    token = issue_token(get_settings().secret_key, user.id, user.token_version)  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {token}"}


def credentials_key() -> str:
    return get_settings().credentials_key
