"""`govhub doctor`: print what the deployment and each account need before going live."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from hub.config import get_settings
from hub.doctor.rules import Finding, Level, worst

MARKS = {
    Level.ok: ("✓", typer.colors.GREEN),
    Level.warn: ("!", typer.colors.YELLOW),
    Level.error: ("✗", typer.colors.RED),
}
AREAS = {"deployment": "部署", "account": "账号"}


def _print(findings: list[Finding], *, quiet: bool) -> None:
    area = ""
    for finding in findings:
        if quiet and finding.level == Level.ok:
            continue
        if finding.area != area:
            area = finding.area
            typer.secho(f"\n== {AREAS.get(area, area)}", bold=True)
        mark, colour = MARKS[finding.level]
        typer.secho(f"{mark} {finding.subject}：{finding.message}", fg=colour)
        if finding.fix:
            typer.echo(f"    → {finding.fix}")


def doctor_command(
    account: Annotated[
        list[int] | None, typer.Option("--account", help="only this account id (repeatable)")
    ] = None,
    skip_accounts: Annotated[
        bool, typer.Option("--skip-accounts", help="check the deployment only")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print problems only")] = False,
    as_json: Annotated[bool, typer.Option("--as-json", help="findings as JSON")] = False,
) -> None:
    """Check the deployment and every account; say in Chinese what to fix. Exit 1 on an error."""
    from hub.doctor.service import run

    findings = run(settings=get_settings(), accounts=not skip_accounts, account_ids=account)
    level = worst(findings)
    if as_json:
        typer.echo(
            json.dumps(
                {"status": level.value, "findings": [asdict(f) for f in findings]},
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        _print(findings, quiet=quiet)
        errors = sum(f.level == Level.error for f in findings)
        warnings = sum(f.level == Level.warn for f in findings)
        typer.echo(f"\n{errors} 个错误，{warnings} 个提醒")
    if level == Level.error:
        raise typer.Exit(code=1)


STATUS_LABELS = {
    "database": "数据库",
    "migrations": "数据库结构（迁移）",
    "broker": "消息队列",
    "worker": "发布进程（govhub worker）心跳",
    "beat": "定时进程（govhub beat）心跳",
}


def _worker_processes() -> None:
    """Each worker process's own heartbeat (informational: readiness is the task heartbeat)."""
    from hub.system import worker_states

    states = worker_states(dead_seconds=get_settings().worker_dead_seconds)
    alive = sum(1 for _worker, state in states if state == "ok")
    typer.echo(f"发布进程（各进程自身心跳）：{alive} 个在线")
    for worker, state in states:
        words = (
            "在线" if state == "ok" else f"已无心跳（{state}），其发送中的稿件由清扫任务接管核对"
        )
        typer.echo(f"  · {worker.node}（{worker.host}，pid {worker.pid}）：{words}")


def status_command() -> None:
    """What /readyz reports, in words: exit 1 when publishing or the schedule is stalled."""
    from hub.system import readiness

    checks = readiness(get_settings())
    for name, value in checks.items():
        good = value == "ok"
        typer.secho(
            f"{'✓' if good else '✗'} {STATUS_LABELS.get(name, name)}：{'正常' if good else value}",
            fg=typer.colors.GREEN if good else typer.colors.RED,
        )
    if checks.get("database") == "ok":
        _worker_processes()
    if any(value != "ok" for value in checks.values()):
        typer.echo("未就绪：稿件可能不会按时发出（govhub doctor 给出修复建议）")
        raise typer.Exit(code=1)
    typer.echo("就绪")
