"""``govhub archive --year YYYY [-o FILE]``: the year's published posts for the archives office."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def archive_command(
    year: Annotated[int, typer.Option("--year", help="calendar year in GOVHUB_TIMEZONE")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", dir_okay=False, help="default: govhub-archive-YYYY.zip"),
    ] = None,
) -> None:
    """Export every post first published in YEAR (versions, approvals, where each copy landed,
    corrections, withdrawals) as a ZIP of JSON and self-contained Chinese HTML (档案移交)."""
    from hub.backup.service import hub_version
    from hub.config import get_settings
    from hub.db import session_scope
    from hub.records import rules
    from hub.records.service import archive_year
    from hub.sqltypes import utcnow

    settings, now = get_settings(), utcnow()
    refusal = rules.year_refusal(year, now.astimezone(settings.tz).year)
    if refusal:
        typer.secho(f"error: {refusal}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2)
    target = output or Path(f"govhub-archive-{year}.zip")
    if not target.parent.is_dir():
        typer.secho(f"error: {target.parent}: no such directory", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2)
    with session_scope() as session:
        done = archive_year(
            session=session,
            year=year,
            tz=settings.tz,
            timezone=settings.timezone,
            now=now,
            target=target,
            hub_version=hub_version(),
        )
    typer.echo(f"{done.posts} posts of {year} ({done.deliveries} deliveries) written to {target}")
