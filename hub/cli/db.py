"""Database migrations: ``govhub db ...``."""

from __future__ import annotations

from typing import Annotated

import typer

from hub.config import get_settings

db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(revision: str = "heads") -> None:
    """Migrate the database up (to the newest schema by default)."""
    from hub.migrate import upgrade
    from scheduler.app import prepare_broker

    upgrade(get_settings().database_url, revision)
    typer.echo(f"database at {revision}")
    if prepare_broker(get_settings()):
        typer.echo("embedded broker ready")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument()] = "-1") -> None:
    """Migrate the database down (one step by default; 'base' removes every table)."""
    from alembic.util.exc import CommandError

    from hub.migrate import current, downgrade

    url = get_settings().database_url
    try:
        downgrade(url, revision)
    except CommandError as exc:
        heads = current(url) or ""
        raise typer.BadParameter(
            f"{exc}. The database is at {heads}: name the revision to go down to "
            "(for example `govhub db downgrade "
            f"{heads.split(',')[0] if heads else 'base'}`)"
        ) from None
    typer.echo(f"database at {current(url) or '(empty)'}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's migration revision."""
    from hub.migrate import current

    typer.echo(current(get_settings().database_url) or "(empty)")
