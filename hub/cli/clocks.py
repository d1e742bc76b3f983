"""Compliance clocks and reminders: ``govhub clocks ...``."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from hub.cli.common import fail
from hub.config import get_settings

clocks_app = typer.Typer(help="Compliance clocks (时限) and reminders.", no_args_is_help=True)


@clocks_app.command("list")
def clocks_list(
    status: Annotated[
        str | None, typer.Option(help="running | overdue | met | met_late | cancelled")
    ] = None,
    org: Annotated[str | None, typer.Option(help="org code (that org and its subtree)")] = None,
) -> None:
    """List clocks, soonest deadline first (times in GOVHUB_TIMEZONE)."""
    from hub.clocks import service
    from hub.clocks.rules import ClockStatus
    from hub.db import session_scope
    from hub.errors import HubError
    from hub.orgs.service import get_by_code
    from hub.sqltypes import utcnow

    settings = get_settings()
    try:
        wanted = ClockStatus(status) if status else None
    except ValueError:
        raise fail(
            f"unknown status {status!r}: use {', '.join(s.value for s in ClockStatus)}"
        ) from None
    try:
        with session_scope() as session:
            path = get_by_code(session=session, code=org).path if org else None
            now = utcnow()
            rows = service.list_clocks(session=session, now=now, org_path=path, status=wanted)
            public = service.to_public(
                session=session,
                rows=rows,
                now=now,
                tz=settings.tz,
                policy=service.policy_in_force(settings),
            )
    except HubError as exc:
        raise fail(exc.message) from exc
    for clock in public:
        flag = "" if clock.calendar_confirmed else "\t(calendar unconfirmed)"
        typer.echo(
            f"{clock.id}\t{clock.status.value}\t{clock.due_at:%Y-%m-%d %H:%M}\t{clock.org_code}\t"
            f"{clock.kind}\t{clock.subject}{flag}"
        )


@clocks_app.command("remind")
def clocks_remind() -> None:
    """Run one reminder pass now (what the beat task does every minute).

    Says how many reminders reached someone and how many failed (those are retried on the next
    pass); exits 1 when any failed.
    """
    from hub.clocks.reminders import remind_now
    from hub.db import session_scope

    with session_scope() as session:
        results = remind_now(session=session)
    sent = failed = silent = 0
    for item in results:
        delivered = item.emails > 0 or item.webhook
        if delivered:
            sent += 1
            outcome = f"{item.emails} e-mail(s){', webhook' if item.webhook else ''}"
            if item.error:
                outcome += f"; partly failed: {item.error}"
        elif item.error:
            failed += 1
            outcome = f"FAILED, will retry: {item.error}"
        else:
            silent += 1
            outcome = "no channel configured (GOVHUB_SMTP_HOST, GOVHUB_REMINDER_WEBHOOK_URL)"
        typer.echo(f"clock {item.clock_id}: {item.threshold} -> {outcome}")
    summary = f"{sent} reminder(s) sent, {failed} failed"
    if silent:
        summary += f", {silent} recorded without a channel"
    typer.echo(summary)
    if failed:
        raise typer.Exit(code=1)


@clocks_app.command("obligations")
def clocks_obligations(
    since: Annotated[str | None, typer.Option(help="YYYY-MM-DD: also open past periods")] = None,
) -> None:
    """Open the current periods' recurring obligations and mark met / missed."""
    from hub.clocks.obligations import refresh_obligations
    from hub.clocks.service import policy_in_force
    from hub.db import session_scope
    from hub.sqltypes import utcnow

    settings = get_settings()
    try:
        first = date.fromisoformat(since) if since else None
    except ValueError:
        raise fail(f"--since must be a date such as 2026-01-01, got {since!r}") from None
    with session_scope() as session:
        report = refresh_obligations(
            session=session,
            policy=policy_in_force(settings),
            today=utcnow().astimezone(settings.tz).date(),
            tz=settings.tz,
            since=first,
        )
    typer.echo(f"{report.created} obligation period(s) opened, {report.changed} changed")
