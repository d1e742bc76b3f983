"""A local demonstration: ``govhub sandbox`` and ``govhub demo``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hub.cli.orgs import import_org_file
from hub.config import get_settings

if TYPE_CHECKING:
    from sqlmodel import Session

# Every demo user's password (it passes the password rule: hub/users/passwords.py).
DEMO_PASSWORD = "Govhub-Demo-2026"


def _demo_data() -> list[str]:
    """Migrate, import Guizhou and its departments, create users and accounts. Idempotent."""
    from sqlmodel import select

    from hub.accounts.models import Account, AccountCreate
    from hub.accounts.service import create as create_account
    from hub.db import session_scope
    from hub.migrate import upgrade
    from hub.orgs.service import get_by_code
    from hub.platforms import builtin_channel
    from hub.users.models import Role, User
    from hub.users.service import create as create_user
    from scheduler.app import prepare_broker

    settings = get_settings()
    upgrade(settings.database_url)
    prepare_broker(settings)  # before web, worker and beat start together
    data = resources.files("hub") / "data"
    lines = [
        "orgs: " + import_org_file(None, (data / "guizhou-divisions.csv").read_text("utf-8")),
        "departments: "
        + import_org_file(None, (data / "guizhou-departments.csv").read_text("utf-8")),
    ]
    demo_users = [
        ("admin", Role.admin, "520000", "系统管理员"),
        ("supervisor", Role.supervisor, "520000-bgt", "省政府办公厅督查"),
        ("editor", Role.editor, "520000-xwb", "省新闻办编辑"),
        ("reviewer", Role.reviewer, "520000-xwb", "省新闻办审核"),
        ("qdn-editor", Role.editor, "522600", "黔东南州编辑"),
        ("kaili-editor", Role.editor, "522601", "凯里市编辑"),
        ("kaili-reviewer", Role.reviewer, "522601", "凯里市审核"),
    ]
    with session_scope() as session:
        for username, role, org_code, display in demo_users:
            if session.exec(select(User).where(User.username == username)).first() is None:
                create_user(
                    session=session,
                    username=username,
                    password=DEMO_PASSWORD,
                    role=role,
                    org_code=org_code,
                    display_name=display,
                )
            lines.append(
                f"user {username:<15} password {DEMO_PASSWORD}   ({role.value} @ {org_code})"
            )
        if session.exec(select(Account)).first() is None:
            for code in ("520000-xwb", "522600", "522601", "520100", "520102"):
                org = get_by_code(session=session, code=code)
                create_account(
                    session=session,
                    data=AccountCreate(
                        org_code=code,
                        platform=builtin_channel(),
                        name=f"{org.name}发布厅",
                        opened_on=date(2014, 1, 1),
                        interaction_channel=True,
                    ),
                    credentials_key=settings.credentials_key,
                    org=org,
                )
        _demo_leaders(session)
    return lines


def _demo_leaders(session: Session) -> None:
    """Two made-up leaders of the province, so proofreading's leader checks show in the demo
    (演示数据: not real officeholders; a province registers its own on the 校对词库 page)."""
    from sqlmodel import select

    from hub.orgs.service import get_by_code
    from hub.proofread.models import LeaderRow

    if session.exec(select(LeaderRow)).first() is not None:
        return
    province = get_by_code(session=session, code="520000")
    for name, title, rank in (("甄立新", "省委书记", 1), ("贾明远", "省长", 2)):
        session.add(
            LeaderRow(
                org_id=province.id,  # type: ignore[arg-type]
                name=name,
                title=title,
                rank=rank,
                note="演示数据（虚构人名）",
            )
        )


def _demo_sandbox_accounts(sandbox_url: str, public_base_url: str) -> list[str]:
    """Bind the demo's Weibo and WeChat accounts to the simulators (tokens re-minted each start)."""
    import httpx

    from hub.accounts.demo import bind_sandbox_accounts
    from hub.db import session_scope
    from hub.sqltypes import utcnow

    with httpx.Client(timeout=10) as client, session_scope() as session:
        return bind_sandbox_accounts(
            session=session,
            client=client,
            sandbox_url=sandbox_url,
            public_base_url=public_base_url,
            credentials_key=get_settings().credentials_key,
            now=utcnow(),
        )


def _demo_live_session() -> str:
    """One scheduled live session with an approver (after the accounts: it targets them)."""
    from hub.db import session_scope
    from hub.live.demo import seed_session
    from hub.sqltypes import utcnow

    with session_scope() as session:
        return seed_session(session=session, now=utcnow())


def _demo_inbox_and_clocks() -> list[str]:
    """One open inbox case (a Weibo comment, assigned) and two clocks, one running and one
    overdue (after the accounts: the case arrives on 凯里市's Weibo account). Idempotent."""
    from hub.clocks.demo import seed_clocks
    from hub.db import session_scope
    from hub.inbox.demo import seed_case
    from hub.sqltypes import utcnow

    with session_scope() as session:
        now = utcnow()
        return [seed_case(session=session, now=now), seed_clocks(session=session, now=now)]


def sandbox(
    host: str = "127.0.0.1",
    port: int = 9100,
    public_base_url: Annotated[
        str | None, typer.Option(help="the hub's URL: Weibo's safe domain (default: settings)")
    ] = None,
) -> None:
    """Run the platform simulators (Weibo, WeChat, partner webhooks) in the foreground."""
    import uvicorn

    from connectors.sandbox.app import build_sandboxes

    sandboxes = build_sandboxes(public_base_url=public_base_url or get_settings().public_base_url)
    base = f"http://{host}:{port}"
    typer.echo(f"GOVHUB_WEIBO_API_BASE={base}/weibo")
    typer.echo(f"GOVHUB_WECHAT_API_BASE={base}/wechat")
    typer.echo(f"partner webhooks: {base}/partner/hooks/<name>  (Ctrl+C stops)")
    try:
        uvicorn.run(sandboxes.app, host=host, port=port, log_level="info")
    finally:
        sandboxes.close()


def _ready(readyz: str) -> bool:
    import httpx

    try:
        return httpx.get(readyz, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _print_ready(url: str, logins: list[str]) -> None:
    """The last thing on the demo's console: where to go and how to log in."""
    typer.secho(f"\ngovhub is ready: open {url}  (API docs {url}docs)", fg="green", bold=True)
    for line in logins:
        typer.echo(f"  {line}")
    typer.secho("Ctrl+C stops it.", fg="green")


def demo(host: str = "127.0.0.1", port: int = 8000, sandbox_port: int = 0) -> None:
    """Set up demo data and run web server + worker + beat together; Ctrl+C stops all of it.

    The Weibo and WeChat simulators run inside this process (``--sandbox-port``, default: a free
    port); the demo's Weibo and WeChat accounts are bound to them on every start.
    """
    from connectors.sandbox.app import start_sandboxes

    Path("var").mkdir(exist_ok=True)
    setup = _demo_data()
    for line in setup:
        typer.echo(line)
    logins = [line for line in setup if line.startswith("user ")]
    env = dict(os.environ)
    env.setdefault("GOVHUB_PUBLIC_BASE_URL", f"http://{host}:{port}")
    # Weibo's rip for sends with no person's IP (a documentation address: simulators only)
    env.setdefault("GOVHUB_WEIBO_FALLBACK_RIP", "192.0.2.1")
    sandboxes, sandbox_server = start_sandboxes(
        port=sandbox_port, public_base_url=env["GOVHUB_PUBLIC_BASE_URL"]
    )
    env["GOVHUB_WEIBO_API_BASE"] = f"{sandbox_server.base_url}/weibo"
    env["GOVHUB_WECHAT_API_BASE"] = f"{sandbox_server.base_url}/wechat"
    for line in _demo_sandbox_accounts(sandbox_server.base_url, env["GOVHUB_PUBLIC_BASE_URL"]):
        typer.echo(line)
    typer.echo(f"sandboxes at {sandbox_server.base_url}: /weibo /wechat /partner")
    typer.echo(_demo_live_session())
    for line in _demo_inbox_and_clocks():
        typer.echo(line)
    python = sys.executable
    quiet = ["--log-level", "warning"]  # warnings, errors and delivery outcomes (hub/logs.py)
    parts = {
        "web": [
            python,
            "-m",
            "hub",
            "serve",
            "--host",
            host,
            "--port",
            str(port),
            "--no-access-log",
            *quiet,
        ],
        "worker": [python, "-m", "hub", "worker", "--concurrency", "8", *quiet],
        "beat": [python, "-m", "hub", "beat", *quiet],
    }
    procs = {name: subprocess.Popen(cmd, env=env) for name, cmd in parts.items()}
    url = f"http://{host}:{port}/"
    typer.secho(f"\ngovhub is starting at {url} ...", fg="green")
    ready_by: float | None = time.monotonic() + 120
    stopping = False

    def stop(*_args: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    try:
        while not stopping:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    typer.secho(f"{name} exited with {proc.returncode}; stopping", fg="red")
                    exit_code = 1
                    stopping = True
            if ready_by is not None and not stopping:
                if _ready(f"{url}readyz"):
                    ready_by = None
                    _print_ready(url, logins)
                elif time.monotonic() > ready_by:
                    ready_by = None
                    typer.secho(f"not ready after 2 minutes: see {url}readyz", fg="red")
            time.sleep(0.3)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 15
        for proc in procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        sandboxes.close()
        sandbox_server.stop()
    raise typer.Exit(exit_code)
