"""``govhub reach ...``: pull readers' counts by hand."""

from __future__ import annotations

from typing import Annotated

import typer

reach_app = typer.Typer(
    help="Reach (传播数据): readers' counts of published copies.", no_args_is_help=True
)


@reach_app.command("pull")
def reach_pull(
    account: Annotated[
        list[int] | None, typer.Option("--account", help="only this account id (repeatable)")
    ] = None,
    all_accounts: Annotated[
        bool, typer.Option("--all", help="every account, also those not due yet")
    ] = False,
) -> None:
    """Pull readers' counts of the accounts that are due (what beat does every 10 minutes)."""
    from hub.config import get_settings
    from hub.reach.service import pull_all

    force = all_accounts or bool(account)
    report = pull_all(settings=get_settings(), force=force, account_ids=account or ())
    for outcome in report.outcomes:
        where = f"account {outcome.account_id} {outcome.name}"
        if outcome.error:
            typer.echo(f"{where}: {outcome.error}", err=True)
        else:
            typer.echo(f"{where}: {outcome.stored}/{outcome.copies} copies for {outcome.day}")
    typer.echo(report.line())
    if report.failures:
        raise typer.Exit(code=1)
