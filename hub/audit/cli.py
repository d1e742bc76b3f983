"""``govhub audit`` and ``govhub activity ingest`` (mounted by ``hub/cli/__init__.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

activity_app = typer.Typer(help="Activity ingestion (活跃度采集).", no_args_is_help=True)

FORMATS = ("xlsx", "csv", "json")


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=1)


def audit_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="file to write")],
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="audit date YYYY-MM-DD (default: today)")
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option(help="policy presets, comma-separated (default: GOVHUB_POLICY)"),
    ] = None,
    output_format: Annotated[
        str | None,
        typer.Option("--format", help="xlsx | csv | json (default: from the file name)"),
    ] = None,
) -> None:
    """Run the matrix coverage audit and write it as XLSX, CSV or JSON."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from hub.audit import export, service
    from hub.config import get_settings
    from hub.db import session_scope
    from hub.errors import HubError
    from hub.sqltypes import utcnow

    kind = (output_format or output.suffix.lstrip(".")).lower()
    if kind not in FORMATS:
        raise _fail(f"unknown format {kind!r}: use --format xlsx, csv or json")
    settings = get_settings()
    now = utcnow()
    steps = ["机构", "账号与最近更新", "新闻发言人", "评估", "传播数据", "写出文件"]
    try:
        day = service.parse_as_of(as_of, today=now.astimezone(settings.tz).date())
        chosen = service.resolve_policy(policy, settings)
        with (
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                transient=True,
            ) as bar,
            session_scope() as session,
        ):
            task = bar.add_task("矩阵检查", total=len(steps))

            def advance(label: str) -> None:
                done = steps.index(label)
                bar.update(task, completed=done, description=f"矩阵检查：{label}")

            audit = service.run_audit(
                session=session,
                policy=chosen,
                as_of=day,
                tz=settings.tz,
                now=now,
                progress=advance,
                reach_days=settings.reach_days,
            )
            advance("写出文件")
            if kind == "xlsx":
                data = export.to_xlsx(audit, tuple(chosen.audit.platforms))
            elif kind == "csv":
                data = export.to_csv(audit)
            else:
                data = json.dumps(
                    service.audit_to_dict(audit), ensure_ascii=False, indent=2
                ).encode("utf-8")
            output.write_bytes(data)
            bar.update(task, completed=len(steps))
    except HubError as exc:
        raise _fail(exc.message) from exc
    province = audit.result.province
    typer.echo(
        f"{output}: as of {day.isoformat()}, coverage {province.coverage_pct}%, "
        f"{province.orgs_passed}/{province.orgs_audited} orgs pass, "
        f"{len(audit.result.findings)} findings"
    )


@activity_app.command("ingest")
def activity_ingest(
    max_accounts: Annotated[int, typer.Option(help="accounts read in this pass")] = 500,
) -> None:
    """Read every active Weibo/WeChat account's new posts once (what beat does every 10 min)."""
    from rich.progress import Progress

    from hub.audit.ingest import AccountOutcome, ingest_all
    from hub.config import get_settings

    with Progress(transient=True) as bar:
        task = bar.add_task("采集账号动态", total=None)

        def step(outcome: AccountOutcome) -> None:
            bar.advance(task)

        report = ingest_all(settings=get_settings(), max_accounts=max_accounts, progress=step)
    for failure in report.failures:
        flag = " (needs re-authorisation)" if failure.needs_reauth else ""
        typer.echo(f"account {failure.account_id} {failure.name}: {failure.error}{flag}", err=True)
    typer.echo(report.line())
