"""The public interaction inbox: ``govhub inbox ...``."""

from __future__ import annotations

from typing import Annotated

import typer

from hub.cli.common import fail
from hub.config import get_settings

inbox_app = typer.Typer(help="The public interaction inbox (留言与评论).", no_args_is_help=True)


@inbox_app.command("list")
def inbox_list(
    status: Annotated[
        str | None, typer.Option(help="new | assigned | in_progress | replied | closed")
    ] = None,
    org: Annotated[str | None, typer.Option(help="org code (that org and its subtree)")] = None,
    overdue: Annotated[bool, typer.Option(help="only cases past their answer deadline")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """List inbox cases, newest first: id, status, channel, org, answer due (GOVHUB_TIMEZONE)."""
    from hub.db import session_scope
    from hub.errors import HubError
    from hub.inbox import service
    from hub.inbox.models import CaseStatus
    from hub.orgs.service import get_by_code
    from hub.sqltypes import utcnow

    settings = get_settings()
    try:
        wanted = CaseStatus(status) if status else None
    except ValueError:
        raise fail(
            f"unknown status {status!r}: use {', '.join(s.value for s in CaseStatus)}"
        ) from None
    try:
        with session_scope() as session:
            path = get_by_code(session=session, code=org).path if org else "/"
            now = utcnow()
            cases = service.list_cases(
                session=session,
                scope_path=path,
                status=wanted,
                overdue_at=now if overdue else None,
                limit=limit,
            )
            public = service.to_public(session=session, cases=cases, now=now)
    except HubError as exc:
        raise fail(exc.message) from exc
    for case in public:
        due = "-"
        if case.answer_due_at:
            due = case.answer_due_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M")
        text = " ".join(case.text.split())
        typer.echo(
            f"{case.id}\t{case.status.value}{' (overdue)' if case.overdue else ''}\t"
            f"{case.channel.value}\t{case.org_code}\t{due}\t{text[:60]}"
        )
    typer.echo(f"{len(public)} case(s)")


@inbox_app.command("ingest")
def inbox_ingest() -> None:
    """Fetch new comments from every active Weibo account now (what beat does every 5 minutes)."""
    from hub.inbox.ingestion import ingest_all

    report = ingest_all(settings=get_settings())
    for error in report.errors:
        typer.echo(f"  {error}", err=True)
    typer.echo(report.line())
    if report.accounts_failed:
        raise typer.Exit(code=1)
