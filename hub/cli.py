"""The operator's command line: ``govhub ...``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from hub.config import get_settings

app = typer.Typer(
    help="govhub — publishing hub for government press offices.", no_args_is_help=True
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
orgs_app = typer.Typer(help="Organisations.", no_args_is_help=True)
accounts_app = typer.Typer(help="Platform accounts.", no_args_is_help=True)
users_app = typer.Typer(help="Users and roles.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(orgs_app, name="orgs")
app.add_typer(accounts_app, name="accounts")
app.add_typer(users_app, name="users")


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=1)


def checked_settings() -> None:
    """Refuse to start with invalid or insecure settings, saying why in one line."""
    from pydantic import ValidationError

    try:
        get_settings()
    except ValidationError as exc:
        raise _fail(
            "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        ) from None


# -- database -----------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(revision: str = "heads") -> None:
    """Migrate the database up (to the newest schema by default)."""
    from hub.migrate import upgrade

    upgrade(get_settings().database_url, revision)
    typer.echo(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument()] = "-1") -> None:
    """Migrate the database down (one step by default; 'base' removes every table)."""
    from hub.migrate import downgrade

    downgrade(get_settings().database_url, revision)
    typer.echo(f"database at {revision}")


@db_app.command("current")
def db_current() -> None:
    """Print the database's migration revision."""
    from hub.migrate import current

    typer.echo(current(get_settings().database_url) or "(empty)")


# -- organisations ------------------------------------------------------------------------------


def import_org_file(path: Path | None, text: str | None = None) -> str:
    from hub.db import session_scope
    from hub.orgs.service import import_rows, parse_csv

    content = text if text is not None else path.read_text(encoding="utf-8")  # type: ignore[union-attr]
    rows = parse_csv(content)
    with session_scope() as session:
        report = import_rows(session=session, rows=rows, today=date.today())
    return (
        f"{len(rows)} rows: {report.created} created, {report.renamed} renamed, "
        f"{report.updated} updated, {report.unchanged} unchanged"
    )


@orgs_app.command("import")
def orgs_import(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Import a divisions CSV (code,name,level,parent_code[,livelihood][,press_office]).

    Idempotent: re-importing updates names (keeping the old ones as history) and never changes ids.
    """
    from hub.errors import HubError

    try:
        typer.echo(import_org_file(file))
    except HubError as exc:
        raise _fail(exc.message) from exc


@orgs_app.command("list")
def orgs_list(level: str | None = None, under: str | None = None, as_json: bool = False) -> None:
    """List organisations."""
    from hub.db import session_scope
    from hub.orgs.models import OrgLevel
    from hub.orgs.service import list_orgs, to_public

    with session_scope() as session:
        orgs = list_orgs(
            session=session, level=OrgLevel(level) if level else None, under_code=under
        )
        public = to_public(session=session, orgs=orgs)
    if as_json:
        typer.echo(json.dumps([o.model_dump(mode="json") for o in public], ensure_ascii=False))
        return
    for org in public:
        typer.echo(f"{org.code}\t{org.level.value}\t{org.name}")


# -- accounts -----------------------------------------------------------------------------------


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
    from hub.auditlog.service import record
    from hub.db import session_scope
    from hub.errors import HubError

    raw = credentials
    if raw and raw.startswith("@"):
        raw = Path(raw[1:]).read_text(encoding="utf-8")
    try:
        data = AccountCreate(
            org_code=org,
            platform=platform,
            name=name,
            handle=handle,
            opened_on=date.fromisoformat(opened_on) if opened_on else None,
            interaction_channel=interaction_channel,
            credentials=json.loads(raw) if raw else None,
        )
        with session_scope() as session:
            account = create(
                session=session, data=data, credentials_key=get_settings().credentials_key
            )
            record(
                session=session,
                actor_id=None,
                actor_name="cli",
                action="account.create",
                object_type="account",
                object_id=account.id,
                org_id=account.org_id,
                summary=f"{platform} 账号「{name}」",
            )
            account_id = account.id
    except (HubError, ValidationError, ValueError) as exc:
        raise _fail(getattr(exc, "message", None) or str(exc)) from exc
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


# -- users --------------------------------------------------------------------------------------


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Option()],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    role: Annotated[str, typer.Option(help="admin | supervisor | editor | reviewer")],
    org: Annotated[str, typer.Option(help="org code the user's scope starts at")],
    display_name: str = "",
) -> None:
    """Create a user (password hashed with Argon2)."""
    from hub.auditlog.service import record
    from hub.db import session_scope
    from hub.errors import HubError
    from hub.users.models import Role
    from hub.users.service import create

    try:
        role_value = Role(role)
    except ValueError:
        raise _fail(f"unknown role {role!r}: use admin, supervisor, editor or reviewer") from None
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
            record(
                session=session,
                actor_id=None,
                actor_name="cli",
                action="user.create",
                object_type="user",
                object_id=user.id,
                org_id=user.org_id,
                summary=f"{username} ({role})",
            )
    except HubError as exc:
        raise _fail(exc.message) from exc
    typer.echo(f"user {username} created")


# -- processes ----------------------------------------------------------------------------------


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Run the web server (API, pages, release hall)."""
    import uvicorn

    checked_settings()
    uvicorn.run(
        "hub.web.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        proxy_headers=True,
    )


@app.command()
def worker(concurrency: int = 8, pool: str = "threads", queues: str = "celery") -> None:
    """Run a Celery worker (publishing, polling, ingestion)."""
    from scheduler.app import get_celery

    checked_settings()
    get_celery().worker_main(
        [
            "worker",
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            f"--queues={queues}",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
        ]
    )


@app.command()
def beat() -> None:
    """Run Celery beat (scheduled posts, sweeps, ingestion, reminders)."""
    from scheduler.app import get_celery

    checked_settings()
    schedule = Path("var") / "celerybeat-schedule"
    schedule.parent.mkdir(parents=True, exist_ok=True)
    get_celery().start(["beat", f"--schedule={schedule}", "--loglevel=INFO"])


def _demo_data() -> list[str]:
    """Migrate, import Guizhou and its departments, create users and accounts. Idempotent."""
    from sqlmodel import select

    from hub.accounts.models import Account, AccountCreate, Platform
    from hub.accounts.service import create as create_account
    from hub.db import session_scope
    from hub.migrate import upgrade
    from hub.orgs.service import get_by_code
    from hub.users.models import Role, User
    from hub.users.service import create as create_user

    settings = get_settings()
    upgrade(settings.database_url)
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
                    password=f"{username}-demo",
                    role=role,
                    org_code=org_code,
                    display_name=display,
                )
            lines.append(
                f"user {username:<15} password {username}-demo   ({role.value} @ {org_code})"
            )
        if session.exec(select(Account)).first() is None:
            for code in ("520000-xwb", "522600", "522601", "520100", "520102"):
                org = get_by_code(session=session, code=code)
                create_account(
                    session=session,
                    data=AccountCreate(
                        org_code=code,
                        platform=Platform.hall,
                        name=f"{org.name}发布厅",
                        opened_on=date(2014, 1, 1),
                        interaction_channel=True,
                    ),
                    credentials_key=settings.credentials_key,
                    org=org,
                )
    return lines


@app.command()
def demo(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Set up demo data and run web server + worker + beat together; Ctrl+C stops all of it."""
    Path("var").mkdir(exist_ok=True)
    for line in _demo_data():
        typer.echo(line)
    env = dict(os.environ)
    env.setdefault("GOVHUB_PUBLIC_BASE_URL", f"http://{host}:{port}")
    python = sys.executable
    parts = {
        "web": [python, "-m", "hub", "serve", "--host", host, "--port", str(port)],
        "worker": [python, "-m", "hub", "worker", "--concurrency", "8"],
        "beat": [python, "-m", "hub", "beat"],
    }
    procs = {name: subprocess.Popen(cmd, env=env) for name, cmd in parts.items()}
    typer.secho(f"\ngovhub is starting at http://{host}:{port}/ (Ctrl+C stops it)", fg="green")
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
    raise typer.Exit(exit_code)
