"""Users and roles: ``govhub users ...``."""

from __future__ import annotations

from typing import Annotated

import typer

from hub.cli.common import CLI, fail

users_app = typer.Typer(help="Users and roles.", no_args_is_help=True)


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Option()],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    role: Annotated[str, typer.Option(help="admin | supervisor | editor | reviewer")],
    org: Annotated[str, typer.Option(help="org code the user's scope starts at")],
    display_name: str = "",
) -> None:
    """Create a user (password hashed with Argon2)."""
    from hub.auditlog.service import audit
    from hub.db import session_scope
    from hub.errors import HubError
    from hub.users.models import Role
    from hub.users.service import create

    try:
        role_value = Role(role)
    except ValueError:
        raise fail(f"unknown role {role!r}: use admin, supervisor, editor or reviewer") from None
    try:
        with session_scope() as session:
            user = create(
                session=session,
                username=username,
                password=password,
                role=role_value,
                org_code=org,
                display_name=display_name,
            )
            audit(
                session,
                CLI,
                "user.create",
                "user",
                user.id,
                org_id=user.org_id,
                summary=f"{username} ({role})",
            )
    except HubError as exc:
        raise fail(exc.message) from exc
    typer.echo(f"user {username} created")


def _set_active(username: str, active: bool) -> None:
    from hub.auditlog.service import audit
    from hub.db import session_scope
    from hub.errors import HubError
    from hub.users import service

    try:
        with session_scope() as session:
            user = service.get_by_username(session=session, username=username)
            changed = service.set_active(session=session, user=user, active=active)
            if changed:
                audit(
                    session,
                    CLI,
                    "user.enable" if active else "user.disable",
                    "user",
                    user.id,
                    org_id=user.org_id,
                    summary=f"{user.username}："
                    + ("启用" if active else "停用（已签退所有会话和令牌）"),
                )
    except HubError as exc:
        raise fail(exc.message) from exc
    state = "enabled" if active else "disabled (every session and token ended)"
    typer.echo(
        f"user {username} {state}"
        if changed
        else f"user {username} was already {'enabled' if active else 'disabled'}"
    )


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Disable a user: they cannot log in, and every session and token of theirs ends now."""
    _set_active(username, False)


@users_app.command("enable")
def users_enable(username: str) -> None:
    """Enable a disabled user again (they log in with their password)."""
    _set_active(username, True)


@users_app.command("reset-password")
def users_reset_password(
    username: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
) -> None:
    """Set a new password for a user (password rule applies); they are signed out everywhere."""
    from hub.auditlog.service import audit
    from hub.db import session_scope
    from hub.errors import HubError
    from hub.users import service

    try:
        with session_scope() as session:
            user = service.get_by_username(session=session, username=username)
            service.reset_password(session=session, user=user, password=password)
            audit(
                session,
                CLI,
                "user.password_reset",
                "user",
                user.id,
                org_id=user.org_id,
                summary=f"重置 {user.username} 的密码，并签退其所有会话",
            )
    except HubError as exc:
        raise fail(exc.message) from exc
    typer.echo(f"password of {username} reset; every session and token of theirs ended")
