"""Platform accounts: ``govhub accounts ...``."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from hub.cli.common import CLI, fail, read_input_file, usage_error
from hub.config import get_settings

accounts_app = typer.Typer(help="Platform accounts.", no_args_is_help=True)


@accounts_app.command("add")
def accounts_add(
    org: Annotated[str, typer.Option(help="org code")],
    platform: Annotated[str, typer.Option(help="weibo | wechat | hall | webhook")],
    name: Annotated[str, typer.Option(help="display name")],
    handle: str = "",
    opened_on: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    interaction_channel: bool = False,
    credentials: Annotated[
        str | None,
        typer.Option(help="JSON, or @FILE to read it from a file (keeps it out of history)"),
    ] = None,
) -> None:
    """Register an account. Credentials are encrypted at rest and never printed."""
    from pydantic import ValidationError

    from hub.accounts.models import AccountCreate
    from hub.accounts.service import create
    from hub.auditlog.service import audit
    from hub.db import session_scope
    from hub.errors import HubError

    raw = credentials
    if raw and raw.startswith("@"):
        try:
            raw = read_input_file(Path(raw[1:])).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise usage_error(f"{raw[1:]}: is not UTF-8 text") from None
    try:
        parsed = json.loads(raw) if raw else None
    except json.JSONDecodeError as exc:
        where = credentials[1:] if credentials and credentials.startswith("@") else "--credentials"
        raise usage_error(
            f"{where}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    if parsed is not None and not isinstance(parsed, dict):
        raise usage_error('credentials must be a JSON object, e.g. {"app_id": "..."}')
    try:
        data = AccountCreate(
            org_code=org,
            platform=platform,
            name=name,
            handle=handle,
            opened_on=date.fromisoformat(opened_on) if opened_on else None,
            interaction_channel=interaction_channel,
            credentials=parsed,
        )
        with session_scope() as session:
            account = create(
                session=session, data=data, credentials_key=get_settings().credentials_key
            )
            audit(
                session,
                CLI,
                "account.create",
                "account",
                account.id,
                org_id=account.org_id,
                summary=f"{platform} 账号「{name}」",
            )
            account_id = account.id
    except (HubError, ValidationError, ValueError) as exc:
        raise fail(getattr(exc, "message", None) or str(exc)) from exc
    typer.echo(f"account {account_id} created")


@accounts_app.command("list")
def accounts_list(org: str | None = None, platform: str | None = None) -> None:
    """List accounts (never their credentials)."""
    from hub.accounts.models import Platform
    from hub.accounts.service import list_accounts
    from hub.db import session_scope

    with session_scope() as session:
        rows = list_accounts(
            session=session, org_code=org, platform=Platform(platform) if platform else None
        )
        for account, owner in rows:
            typer.echo(
                f"{account.id}\t{owner.code}\t{account.platform.value}\t{account.status.value}\t"
                f"{account.name}"
            )


@accounts_app.command("keep-tokens")
def accounts_keep_tokens() -> None:
    """Fetch now the access tokens (WeChat) that are missing or near their end, as beat does every
    five minutes: run it after importing accounts, before a big fan-out."""
    from hub.accounts.tokens import keep_tokens
    from hub.db import session_scope
    from hub.sqltypes import utcnow

    with session_scope() as session:
        result = keep_tokens(session=session, settings=get_settings(), now=utcnow())
    for account_id, reason in result.failed.items():
        typer.echo(f"account {account_id}: {reason}", err=True)
    typer.echo(result.summary())
    if result.failed:
        raise typer.Exit(1)
